"""Turn file changes under the specs directory into wake-ups of the control loop.

The watcher only says "something changed"; the loop then reloads and diffs the whole
directory (level-triggered), so a missed or coalesced event never loses a change. Extra
wake-ups are harmless but not free: each costs a pass.

The path is followed, not the inode. inotify watches the directory it was given, so after
``mv specs specs.old && mv specs.new specs`` (or git-sync re-pointing a ``specs`` link)
it would go on watching the old one and edits would wait for the resync. So the watcher
watches what ``specs`` resolves to now and checks every ``poll`` seconds (a ``stat``)
whether that is still what it is watching; when the path now names another directory, or
appears or vanishes, it wakes the loop and watches the new one.

Events in hidden directories and files (``.git``, editors' ``.swp`` files and temporary
files; the loader ignores them too) and under ``ignore`` (the state directory, when it
lies inside the specs directory, whose simulators' output changes all the time) do not
wake anything. An atomic write of a hidden temporary file renamed over a spec file still
wakes: the rename names the spec file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
import watchfiles

log = structlog.get_logger("simfleet.daemon")

#: Seconds before watching again after the watcher itself failed (no inotify watches left).
RETRY = 5.0


@dataclass(frozen=True)
class _Identity:
    """Which directory the specs path names: its real path and inode."""

    root: Path
    device: int
    inode: int


def _identity(specs: Path) -> _Identity | None:
    """What ``specs`` names now, or None when it is missing or not a directory."""
    try:
        real = Path(os.path.realpath(specs))
        stat = real.stat()
    except (OSError, RuntimeError):
        return None
    if not real.is_dir():
        return None
    return _Identity(real, stat.st_dev, stat.st_ino)


def _absolute(specs: Path, ignore: Sequence[Path]) -> tuple[Path, list[Path]]:
    """The specs path made absolute (links kept: the path is what is followed) and the
    ignored directories' real paths (as watchfiles reports them)."""
    return specs.absolute(), [Path(os.path.realpath(folder)) for folder in ignore]


def relevant(root: Path, ignore: Sequence[Path]) -> Callable[[watchfiles.Change, str], bool]:
    """A watchfiles filter: changes under ``root`` that may change the specs.

    Args:
        root: the real path of the watched specs directory.
        ignore: real paths of directories whose changes never matter (the state dir).
    """

    def keep(_change: watchfiles.Change, path: str) -> bool:
        changed = Path(path)
        if any(changed.is_relative_to(folder) for folder in ignore):
            return False
        try:
            parts = changed.relative_to(root).parts
        except ValueError:
            return True  # not under the root as reported: better one pass too many
        return not any(part.startswith(".") for part in parts)

    return keep


async def watch(
    specs: Path,
    wake: Callable[[], None],
    stop: asyncio.Event,
    *,
    ignore: Sequence[Path] = (),
    poll: float = 0.5,
) -> None:
    """Call ``wake`` within a fraction of a second of any relevant change under ``specs``.

    Args:
        specs: the specs directory (it may be missing, a symlink, or swapped later).
        wake: called for every batch of changes (from the event loop).
        stop: set to end the watch.
        ignore: directories whose changes never wake (the state directory).
        poll: seconds between checks that ``specs`` still names the watched directory.
    """
    specs, ignored = _absolute(specs, ignore)
    current = _identity(specs)
    while not stop.is_set():
        if current is None:
            await _until_changed(specs, current, stop, poll)
        else:
            try:
                await _watch_one(current, wake, stop, ignored, specs, poll)
            except (OSError, RuntimeError) as exc:  # gone under the watcher, or no watches left
                if _identity(specs) == current:
                    log.warning("watch_failed", specs=str(specs), error=str(exc), retry_in=RETRY)
                    await _until_changed(specs, current, stop, poll, limit=RETRY)
        now = _identity(specs)
        if now != current and not stop.is_set():
            wake()  # the directory appeared, vanished or was swapped: look again
        current = now


async def _watch_one(
    current: _Identity,
    wake: Callable[[], None],
    stop: asyncio.Event,
    ignore: Sequence[Path],
    specs: Path,
    poll: float,
) -> None:
    """Watch one directory until ``specs`` names another one (or ``stop``)."""
    moved = asyncio.Event()
    guard = asyncio.create_task(_until_changed(specs, current, stop, poll, changed=moved))
    try:
        async for _changes in watchfiles.awatch(
            current.root,
            stop_event=moved,
            # An edit wakes the loop ~5 ms after its last write (``step``), not 20: the
            # watcher was most of an edit's latency (bench). Idle cost measured at 5 ms
            # CPU per second; a write in several parts still coalesces, and one that
            # does not costs a pass that keeps the last good version of a half file.
            debounce=50,
            step=5,
            recursive=True,
            watch_filter=relevant(current.root, ignore),
        ):
            wake()
    finally:
        guard.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await guard


async def _until_changed(
    specs: Path,
    current: _Identity | None,
    stop: asyncio.Event,
    poll: float,
    *,
    changed: asyncio.Event | None = None,
    limit: float | None = None,
) -> None:
    """Return (and set ``changed``) once ``specs`` names something other than ``current``,
    ``stop`` is set, or ``limit`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    while not stop.is_set() and _identity(specs) == current:
        if deadline is not None and loop.time() >= deadline:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll)
    if changed is not None:
        changed.set()
