"""Turn file changes under the specs directory into wake-ups of the control loop.

The watcher only says "something changed"; the loop then reloads and diffs the whole
directory (level-triggered), so a missed or coalesced event never loses a change. A
directory that does not exist yet is waited for from its parent, and a specs path that
is a symlink (git-sync's atomic swap) is watched through its parent, so the swap itself
is seen. Extra wake-ups are harmless: they cost one pass that finds nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import watchfiles


def _absolute(path: Path) -> Path:
    """``path`` made absolute without resolving links (the link itself is watched)."""
    return path.absolute()


def _shape(specs: Path) -> tuple[bool, bool]:
    return specs.is_symlink(), specs.is_dir()


async def watch(specs: Path, wake: Callable[[], None], stop: asyncio.Event) -> None:
    """Call ``wake`` within a fraction of a second of any change under ``specs``.

    Args:
        specs: the specs directory (it may be missing, or a symlink).
        wake: called for every batch of changes (from the event loop).
        stop: set to end the watch.
    """
    specs = _absolute(specs)  # watchfiles reports absolute paths
    while not stop.is_set():
        shape = _shape(specs)
        target = specs if shape == (False, True) else specs.parent
        if not target.is_dir():
            await _sleep_or_stop(stop, 1.0)
            continue
        try:
            async for _changes in watchfiles.awatch(
                target,
                stop_event=stop,
                debounce=50,
                step=20,
                recursive=True,
                watch_filter=None if target == specs else _about(specs),
            ):
                wake()
                if _shape(specs) != shape:
                    break  # appeared, vanished or became a link: watch the new shape
        except (FileNotFoundError, RuntimeError):
            await _sleep_or_stop(stop, 0.2)
        wake()


def _about(specs: Path) -> Callable[[watchfiles.Change, str], bool]:
    """Keep only events about the specs link, its swap, or what it points at now.

    The parent of a linked specs directory also holds the state directory, whose output
    files change all the time; those must not wake the loop.
    """
    specs = specs.absolute()  # watchfiles reports absolute paths

    def keep(_change: watchfiles.Change, path: str) -> bool:
        changed = Path(path)
        if changed.parent == specs.parent and changed.name.startswith(specs.name):
            return True  # the link itself, or the temporary link of an atomic swap
        if changed.is_relative_to(specs):  # reported through the link
            return True
        try:
            return changed.is_relative_to(specs.resolve())
        except OSError:
            return False

    return keep


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
