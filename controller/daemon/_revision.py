"""Which git commit the specs directory stands at, read from ``.git`` files directly.

Reading ``HEAD`` and the ref it names costs two small file reads and needs no ``git``
binary. Worktrees (``.git`` as a file with ``gitdir:``) and packed refs are followed.
Returns None when the directory is not inside a git checkout.
"""

from __future__ import annotations

from pathlib import Path


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        marker = folder / ".git"
        if marker.is_dir():
            return marker
        if marker.is_file():
            text = marker.read_text().strip()
            if text.startswith("gitdir:"):
                path = Path(text.removeprefix("gitdir:").strip())
                return path if path.is_absolute() else (folder / path).resolve()
    return None


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    if common.is_file():
        return (git_dir / common.read_text().strip()).resolve()
    return git_dir


def git_revision(specs: Path) -> str | None:
    """The commit id checked out at ``specs`` (or an ancestor folder), or None."""
    try:
        git_dir = _git_dir(specs.resolve())
        if git_dir is None:
            return None
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
    except OSError:
        return None
    return None
