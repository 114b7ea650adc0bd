"""Which git commit the specs directory stands at, read from ``.git`` files directly.

Reading ``HEAD`` and the ref it names costs two small file reads and needs no ``git``
binary. Worktrees (``.git`` as a file with ``gitdir:``) and packed refs are followed.
Returns None when the directory is not inside a git checkout. When the specs differ from
the commit (edited, added or staged and not committed: :mod:`._worktree`), the revision
ends in ``-dirty``, as ``git describe --dirty`` says it.
"""

from __future__ import annotations

from pathlib import Path

from controller.daemon import _worktree

DIRTY = "-dirty"


def _checkout(start: Path) -> tuple[Path, Path] | None:
    """The checkout ``start`` is in: (its top folder, its git directory)."""
    for folder in (start, *start.parents):
        marker = folder / ".git"
        if marker.is_dir():
            return folder, marker
        if marker.is_file():
            text = marker.read_text().strip()
            if text.startswith("gitdir:"):
                path = Path(text.removeprefix("gitdir:").strip())
                return folder, path if path.is_absolute() else (folder / path).resolve()
    return None


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    if common.is_file():
        return (git_dir / common.read_text().strip()).resolve()
    return git_dir


def git_revision(specs: Path) -> str | None:
    """The commit id checked out at ``specs`` (or an ancestor folder), or None; with
    ``-dirty`` appended when the specs differ from it."""
    try:
        resolved = specs.resolve()
        checkout = _checkout(resolved)
        if checkout is None:
            return None
        commit = _commit(checkout[1])
        if commit is None or not _worktree.dirty(*checkout, resolved):
            return commit
        return commit + DIRTY
    except OSError:
        return None


def _commit(git_dir: Path) -> str | None:
    """The commit ``HEAD`` names (a detached id, or the tip of the branch it names)."""
    head = (git_dir / "HEAD").read_text().strip()
    if not head.startswith("ref:"):
        return head or None
    ref = head.removeprefix("ref:").strip()
    for base in (git_dir, _common_dir(git_dir)):
        loose = base / ref
        if loose.is_file():
            return loose.read_text().strip() or None
    packed = _common_dir(git_dir) / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    return None
