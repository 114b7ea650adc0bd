"""Reading spec files from disk into validated objects, one whole file at a time.

The specs directory is shared with editors and with git-sync, so the walk is defensive:
hidden files and directories, editor swap and backup files, FIFOs, sockets and devices
are ignored (a FIFO would block the read forever). A spec file that is a link leaving the
directory, a broken link or a loop is not read (a link out of the directory would let a
checkout read arbitrary files), but it is *that file's error*, not an absence: ignoring
it would prune what it defined. The root itself may be a symlink that git-sync swaps
atomically: it is resolved once per load and everything is read through the resolved
path, so one load never mixes two checkouts. Display paths keep the spelling the user
gave (``specs/a.yaml``).

A file loads whole or not at all: if any document of it has an error, the file
contributes no objects, and :mod:`controller.spec._catalog` keeps its last good version.
The same holds for a file that holds no document at all (a truncated or half-written
file looks like that) and for any exception while reading one file: it is that file's
error, never the whole load's. Files over :data:`MAX_BYTES` are refused without being
read whole.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from pydantic import ValidationError

from controller.spec import _catalog, _messages, _models, _yaml
from controller.spec._errors import SpecError

#: The error of a file that holds no document: empty, comments only, ``---`` only.
NO_DOCUMENTS: Final = "the file holds no documents; delete the file to remove what it defined"
_UNLISTABLE: Final = "cannot list this directory; its files were not read"
#: The largest spec file read: 1 MiB.
MAX_BYTES: Final = 1024 * 1024
SUFFIXES: Final = frozenset({".yaml", ".yml"})
#: Editor swap and backup files; most already fail the suffix test, but a rename of
#: ``a.yaml`` to ``a.yaml.bak`` must never count, so the rule is explicit.
BACKUP_SUFFIXES: Final = frozenset({".swp", ".swo", ".bak", ".orig", ".tmp"})


@dataclass(frozen=True)
class FileResult:
    """One spec file: its objects, or its errors (never both).

    Attributes:
        path: the display path (``specs/cartpole.yaml``).
        objects: every document of the file; empty when ``errors`` is not.
        errors: every problem found, sorted.
        digest: sha256 hex of the bytes read; ``""`` if the file could not be read.
    """

    path: str
    objects: tuple[_catalog.SpecObject, ...]
    errors: tuple[SpecError, ...]
    digest: str


@dataclass(frozen=True)
class DirectoryResult:
    """Every spec file under one directory (or the paths given to ``validate``).

    Attributes:
        root: the directory as displayed.
        exists: ``False`` when the directory (or a path given) is missing.
        files: one result per file, sorted by path.
        complete: ``True`` when whole directories were read. ``validate`` given single
            files reads only those, so a Pool that a Simulation names may be defined in a
            file not read; the catalog does not call such a reference dangling.
    """

    root: str
    exists: bool
    files: tuple[FileResult, ...]
    complete: bool = True


class ParsedFiles:
    """What each file's content parsed to, so a reload parses only what changed.

    Parsing YAML is most of a reload (2 ms a file, 44 ms for 50 files), and the daemon
    reloads the whole directory on every edit. Results are keyed by the file's display
    path and the SHA-256 of its bytes — never by times or sizes, so a changed file is
    always parsed again. Only the last load's files are kept.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], FileResult] = {}
        self._seen: dict[tuple[str, str], FileResult] = {}

    def get(self, shown: str, digest: str) -> FileResult | None:
        """The result of an earlier parse of exactly this content, if any."""
        found = self._known.get((shown, digest))
        if found is not None:
            self._seen[shown, digest] = found
        return found

    def keep(self, result: FileResult) -> None:
        """Remember ``result`` for the next load."""
        self._seen[result.path, result.digest] = result

    def loaded(self) -> None:
        """A load ended: forget the files it did not read."""
        self._known, self._seen = self._seen, {}


def load_file(
    path: Path, display: str | None = None, parsed: ParsedFiles | None = None
) -> FileResult:
    """Read and validate one spec file.

    Args:
        path: where to read it.
        display: how to name it in errors; defaults to ``path``, relative to the current
            directory when it lies under it.
        parsed: earlier results to reuse when the content is unchanged.

    Returns:
        The file's objects, or its errors. Never raises: even an unexpected exception
        while reading the file becomes an error on it, so the file's last good version
        stays in force and the other files are unaffected.
    """
    shown = display if display is not None else _display(path)
    try:
        return _load(path, shown, parsed)
    except Exception as exc:  # any failure is this file's error, see above
        message = f"internal error while reading the file: {type(exc).__name__}: {exc}"
        return _failed(shown, message)


def _load(path: Path, shown: str, parsed: ParsedFiles | None) -> FileResult:
    """:func:`load_file`, which may raise where it should not (a bug, say)."""
    content = _read(path)
    if isinstance(content, str):
        return _failed(shown, content)
    digest = hashlib.sha256(content).hexdigest()
    if parsed is None:
        return _parse(content, shown, digest)
    known = parsed.get(shown, digest)
    if known is not None:
        return known
    result = _parse(content, shown, digest)
    parsed.keep(result)
    return result


def _parse(content: bytes, shown: str, digest: str) -> FileResult:
    """A file's bytes to its objects or errors."""
    text = _decode(content, shown)
    if isinstance(text, SpecError):
        return FileResult(shown, (), (text,), digest)
    parsed = _yaml.parse(text, shown)
    errors = list(parsed.errors)
    if not parsed.documents and not errors:
        errors.append(SpecError(shown, 1, 1, "", NO_DOCUMENTS))
    objects: list[_catalog.SpecObject] = []
    invalid: list[SpecError] = []
    for document in parsed.documents:
        obj = _validate(document, shown, invalid)
        if obj is not None:
            objects.append(obj)
    # A value YAML could not read (``010``, ``!!binary``) reaches the model as null; the
    # model's "must be a whole number" at the same place would only repeat the problem.
    unread = {(e.line, e.column) for e in parsed.errors}
    errors += [e for e in invalid if (e.line, e.column) not in unread]
    if errors:
        return FileResult(shown, (), tuple(sorted(set(errors))), digest)
    return FileResult(shown, tuple(objects), (), digest)


def load_directory(root: Path, parsed: ParsedFiles | None = None) -> DirectoryResult:
    """Read every spec file under ``root``, recursively.

    Args:
        root: the specs directory; it may be a symlink, which is resolved once.
        parsed: earlier results to reuse for files whose content is unchanged (the
            daemon's reloads); updated to this load's files.

    Returns:
        The files found, sorted by display path; ``exists=False`` if ``root`` is missing.
        A subdirectory that cannot be listed is reported as an error on its path, so its
        files are not mistaken for deleted ones.
    """
    shown = _display(root)
    try:
        real_root = root.resolve(strict=True)
    except (OSError, RuntimeError):
        return DirectoryResult(shown, exists=False, files=())
    if not real_root.is_dir():
        return DirectoryResult(shown, exists=True, files=(_failed(shown, "not a directory"),))
    found, refused = _walk(real_root)
    files = [load_file(real_root / rel, _display(root / rel), parsed) for rel in found]
    files += [_failed(_display(root / rel), message) for rel, message in refused]
    if parsed is not None:
        parsed.loaded()
    return DirectoryResult(shown, exists=True, files=tuple(sorted(files, key=lambda f: f.path)))


def load_paths(paths: Sequence[Path]) -> DirectoryResult:
    """Read the files and directories named on a command line (``simfleet validate``).

    A named file is read whatever its suffix; a named directory is walked as
    :func:`load_directory` walks it; a missing path is an error on that path.

    Args:
        paths: files and/or directories. The caller supplies the default (``specs``);
            an empty sequence gives ``exists=False`` and no files.

    Returns:
        All files, sorted by display path, each once; ``root`` lists the paths given;
        ``complete`` unless a single file was named.
    """
    by_path: dict[str, FileResult] = {}
    exists = bool(paths)
    complete = True
    for path in paths:
        if path.is_dir():
            directory = load_directory(path)
            exists = exists and directory.exists
            by_path.update((f.path, f) for f in directory.files)
        else:
            result = load_file(path)
            exists = exists and (path.exists() or path.is_symlink())
            complete = False
            by_path[result.path] = result
    root = ", ".join(_display(p) for p in paths)
    files = tuple(by_path[p] for p in sorted(by_path))
    return DirectoryResult(root, exists, files, complete)


def _read(path: Path) -> bytes | str:
    """The file's bytes, at most ``MAX_BYTES + 1`` of them, or why it cannot be read."""
    if not path.exists():
        return "no such file or directory"
    if not path.is_file():
        return "not a regular file"
    try:
        with path.open("rb") as stream:
            return stream.read(MAX_BYTES + 1)
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"


def _decode(content: bytes, shown: str) -> str | SpecError:
    """UTF-8 text (a BOM is dropped), or the error to report: too big, or not UTF-8."""
    if len(content) > MAX_BYTES:
        message = f"the file is larger than 1 MiB ({MAX_BYTES:,} bytes); split it up"
        return SpecError(shown, 1, 1, "", message)
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        column = exc.start - (content.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not valid UTF-8 (byte 0x{content[exc.start]:02x})"
        return SpecError(shown, line, column, "", message)


def _validate(
    document: _yaml.Document, file: str, errors: list[SpecError]
) -> _catalog.SpecObject | None:
    """One document → a SpecObject, or errors appended to ``errors``."""
    data = document.data
    line, column = document.positions.get("", (1, 1))
    if not isinstance(data, dict):
        errors.append(
            SpecError(
                file,
                line,
                column,
                "",
                "a spec document must be a mapping with apiVersion, kind, metadata and spec",
            )
        )
        return None
    kinds = list(_models.KINDS)
    kind = data.get("kind")
    if "kind" not in data:
        errors.append(SpecError(file, line, column, "kind", "is required: " + " or ".join(kinds)))
        return None
    if not isinstance(kind, str) or kind not in _models.KINDS:
        line, column = document.positions.get("kind", (line, column))
        errors.append(SpecError(file, line, column, "kind", _unknown_kind(kind, kinds)))
        return None
    model = _models.KINDS[kind]
    try:
        parsed = model.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        errors.extend(_messages.translate(exc, model, document, file))
        return None
    line, column = document.positions.get("metadata.name", (line, column))
    return _catalog.SpecObject(
        kind=parsed.kind,
        name=parsed.metadata.name,
        spec=parsed.spec,
        file=file,
        line=line,
        column=column,
        positions=MappingProxyType(dict(document.positions)),
    )


def _unknown_kind(kind: object, kinds: list[str]) -> str:
    if not isinstance(kind, str):
        return "must be " + " or ".join(kinds)
    lowered = {k.lower(): k for k in kinds}
    close = difflib.get_close_matches(kind.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        return f'unknown kind "{kind}"; did you mean "{lowered[close[0]]}"?'
    return f'unknown kind "{kind}"; valid kinds are ' + ", ".join(kinds)


def _walk(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Relative paths of the spec files under ``root``, and of paths refused, with why.

    Refused are directories that cannot be listed (their files are not read, and must not
    count as deleted) and spec-named links that cannot or may not be followed.
    """
    found: list[Path] = []
    refused: list[tuple[Path, str]] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = list(folder.iterdir())
        except OSError:
            refused.append((folder.relative_to(root), _UNLISTABLE))
            continue
        for entry in entries:
            if _ignored(entry.name):
                continue
            if entry.is_symlink():
                if _is_spec_name(entry.name):
                    verdict = _follow(entry, root)
                    if verdict is True:
                        found.append(entry.relative_to(root))
                    elif verdict:
                        refused.append((entry.relative_to(root), verdict))
            elif entry.is_dir():
                pending.append(entry)
            elif entry.is_file() and _is_spec_name(entry.name):
                found.append(entry.relative_to(root))
    return found, refused


def _ignored(name: str) -> bool:
    """Hidden files, and editor swap/backup files (``.#a.yaml``, ``#a.yaml#``, ``a.yaml~``)."""
    return (
        name.startswith(".")
        or name.endswith("~")
        or (name.startswith("#") and name.endswith("#"))
        or Path(name).suffix in BACKUP_SUFFIXES
    )


def _is_spec_name(name: str) -> bool:
    return Path(name).suffix in SUFFIXES


def _follow(link: Path, root: Path) -> bool | str:
    """Whether a spec-named link is read: ``True``, ``False`` (ignored) or why it is refused.

    A link to a regular file inside the (resolved) root is read. A link to a FIFO, device
    or directory inside is ignored, as such an entry itself would be. A link leaving the
    root, a broken link and a loop are refused: the file's error.
    """
    try:
        written = str(link.readlink())
    except OSError:
        return False  # gone since the directory was listed: it is simply not there
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        return f"a link to {written}, which does not exist; the link is not read"
    except RuntimeError:  # Python 3.11 and 3.12 report a loop this way
        return f"a link to {written} that loops back on itself; the link is not read"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"a link to {written} that loops back on itself; the link is not read"
        return f"a link to {written} that cannot be followed ({exc.strerror or exc})"
    if not target.is_relative_to(root):
        return f"a link to {written} outside the specs directory is not read"
    return target.is_file()


def _display(path: Path) -> str:
    """``path`` as users should read it: relative to the current directory when under it."""
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except (ValueError, OSError):
            return str(path)
    return str(path)


def _failed(shown: str, message: str) -> FileResult:
    return FileResult(shown, (), (SpecError(shown, 1, 1, "", message),), "")
