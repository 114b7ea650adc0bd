"""Whether the specs directory differs from its commit: git's index, read directly.

``revision`` says ``<commit>-dirty`` (as ``git describe --dirty`` does) when what the
controller applies is not what the commit holds, so nobody mistakes a hand-edited
checkout for the reviewed one. Like :mod:`._revision` this reads files only (the daemon
starts no processes), and only what is under the specs directory counts:

- a tracked file that was changed or removed: its size and modification time differ from
  the index's record (or the index was written in the same second, which git calls racy),
  and its content no longer hashes to the recorded blob;
- an untracked spec file (``*.yaml``/``*.yml``, not hidden): the controller reads it,
  the commit does not hold it;
- a staged change: ``git add`` invalidates the index's cached tree of every directory
  above the file, and a commit writes it again; a specs directory whose cached tree is
  invalid has staged edits. An index without a cached tree for it says nothing here.

Index versions 2 to 4 with SHA-1 object ids are read; anything else (a SHA-256
repository, a damaged index) counts as clean, as a missing checkout does.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_HEADER = struct.Struct(">4sII")
#: ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size, object id, flags.
_ENTRY = struct.Struct(">10I20sH")
_SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class _Entry:
    path: str
    mode: int
    mtime: tuple[int, int]
    size: int
    blob: bytes


@dataclass(frozen=True)
class _Index:
    entries: dict[str, _Entry]
    invalid_trees: frozenset[str]  # directories whose cached tree ``git add`` invalidated
    written: float  # the index file's modification time


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """The offset-encoded integer of index version 4 at ``at``: (value, next offset)."""
    byte = data[at]
    value = byte & 0x7F
    at += 1
    while byte & 0x80:
        byte = data[at]
        value = ((value + 1) << 7) | (byte & 0x7F)
        at += 1
    return value, at


def _entries(data: bytes, version: int, count: int) -> tuple[dict[str, _Entry], int]:
    entries: dict[str, _Entry] = {}
    at, previous = _HEADER.size, b""
    for _ in range(count):
        fields = _ENTRY.unpack_from(data, at)
        flags = fields[11]
        start = at
        at += _ENTRY.size + (2 if version >= 3 and flags & 0x4000 else 0)
        if version == 4:
            strip, at = _varint(data, at)
            end = data.index(b"\0", at)
            name = previous[: len(previous) - strip] + data[at:end]
            at = end + 1
        else:
            end = data.index(b"\0", at)
            name = data[at:end]
            at = start + ((end - start) // 8 + 1) * 8  # NUL-padded to a multiple of 8
        previous = name
        path = name.decode("utf-8", "surrogateescape")
        entries[path] = _Entry(path, fields[6], (fields[2], fields[3]), fields[9], fields[10])
    return entries, at


def _invalid_trees(data: bytes) -> frozenset[str]:
    """Directories whose cached tree is invalid, from a ``TREE`` extension's body."""
    invalid: set[str] = set()
    at = 0

    def node(parent: str) -> None:
        nonlocal at
        end = data.index(b"\0", at)
        name = data[at:end].decode("utf-8", "surrogateescape")
        at = end + 1
        end = data.index(b"\n", at)
        count, subtrees = (int(x) for x in data[at:end].split(b" "))
        at = end + 1
        path = f"{parent}/{name}" if parent and name else parent or name
        if count < 0:
            invalid.add(path)
        else:
            at += 20
        for _ in range(subtrees):
            node(path)

    node("")
    return frozenset(invalid)


def _read_index(path: Path) -> _Index | None:
    try:
        data = path.read_bytes()
        written = path.stat().st_mtime
        signature, version, count = _HEADER.unpack_from(data, 0)
        if signature != b"DIRC" or version not in (2, 3, 4):
            return None
        entries, at = _entries(data, version, count)
        invalid: frozenset[str] = frozenset()
        while at + 8 <= len(data) - 20:  # extensions, then the index's own checksum
            kind, size = struct.unpack_from(">4sI", data, at)
            if kind == b"TREE":
                invalid = _invalid_trees(data[at + 8 : at + 8 + size])
            at += 8 + size
    except (OSError, ValueError, IndexError, struct.error):
        return None
    return _Index(entries, invalid, written)


def _blob(content: bytes) -> bytes:
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).digest()


def _changed(top: Path, entry: _Entry, written: float) -> bool:
    """Whether a tracked file's content differs from its blob in the index."""
    path = top / entry.path
    try:
        info = path.lstat()
        if stat.S_ISLNK(entry.mode):
            return _blob(os.fsencode(os.readlink(path))) != entry.blob
        if not stat.S_ISREG(entry.mode):
            return False  # a submodule: its own checkout's business
        same = (
            info.st_size == entry.size
            and (
                int(info.st_mtime),
                info.st_mtime_ns % 1_000_000_000,
            )
            == entry.mtime
        )
        if same and info.st_mtime < int(written):  # not racy: the stat record is enough
            return False
        return _blob(path.read_bytes()) != entry.blob
    except OSError:
        return True  # removed, or no longer readable


def _spec_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.endswith(_SPEC_SUFFIXES) and not name.startswith("."):
                yield Path(root, name)


def dirty(top: Path, git_dir: Path, specs: Path) -> bool:
    """Whether ``specs`` (inside the checkout at ``top``) differs from its commit.

    Args:
        top: the checkout's top folder (where ``.git`` is).
        git_dir: its git directory (the worktree's own, for a linked worktree).
        specs: the specs directory, resolved.
    """
    index = _read_index(git_dir / "index")
    if index is None:
        return False
    prefix = specs.relative_to(top).as_posix()
    prefix = "" if prefix == "." else prefix
    under = f"{prefix}/" if prefix else ""
    if prefix in index.invalid_trees:  # git add invalidates every directory above a file
        return True
    tracked = [e for p, e in index.entries.items() if p.startswith(under)]
    if any(_changed(top, entry, index.written) for entry in tracked):
        return True
    return any(path.relative_to(top).as_posix() not in index.entries for path in _spec_files(specs))
