"""Whether this controller still owns its state directory, and what happens when not.

The state directory is locked by one controller (:meth:`~._store.Store.lock`). If the
lock file is removed or replaced (``rm -rf``, or another controller locked the directory
anew), this controller must stop acting for good: it neither starts nor signals a
simulator again and writes nothing, since another one may now be doing both. The check
is one ``stat`` of the lock file: every ``observe`` and ``execute`` looks (``fresh``),
the signals and starts of a burst share one look within :data:`RECHECK`, and an idle
controller looks every :data:`CHECK_EVERY` seconds so that it says so soon.

This module only watches the lock; what losing it means for the rest of the backend is
the ``on_lost`` callback's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from controller.backends import PermanentBackendError
from controller.backends.local._store import Store

#: Seconds between looks at the lock file while nothing else looks.
CHECK_EVERY = 2.0
#: Signals and starts within this many seconds of a look at the lock file share it.
RECHECK = 0.01

log = structlog.get_logger("simfleet.local")


class Ownership:
    """Looks at the lock file and remembers, once and for all, when it was lost."""

    def __init__(self, store: Store, *, read_only: bool, on_lost: Callable[[], None]) -> None:
        """Args:
        store: holds the lock.
        read_only: holds no lock, so is never lost.
        on_lost: called once, the first time the lock is found gone.
        """
        self._store = store
        self._read_only = read_only
        self._on_lost = on_lost
        self._checked = -RECHECK
        self._timer: asyncio.TimerHandle | None = None
        #: True once the state directory was taken away; never False again.
        self.lost = False

    def check(self, *, fresh: bool = False) -> bool:
        """Whether the state directory is still ours (see the module docstring for when
        a look is shared); the first time it is not, logs it and calls ``on_lost``."""
        if self.lost:
            return False
        if self._read_only:
            return True
        now = time.monotonic()
        if not fresh and now - self._checked < RECHECK:
            return True
        self._checked = now
        if self._store.lock_intact():
            return True
        self.lost = True
        self.stop_watching()
        log.error(
            "state_dir_lost",
            path=str(self._store.root),
            action="this controller no longer starts, stops or records anything",
        )
        self._on_lost()
        return False

    def require(self, *, fresh: bool = True) -> None:
        """Still the owner of the state directory.

        Raises:
            PermanentBackendError: ``StateDirLost``.
        """
        if not self.check(fresh=fresh):
            raise PermanentBackendError(
                f"state directory lost: {self._store.root} was removed or replaced (its "
                "lock file is not the one this controller holds); this controller stopped "
                "acting and must be restarted",
                code="StateDirLost",
            )

    def watch(self, active: Callable[[], bool]) -> None:
        """Look now and then for as long as ``active()`` holds, so that even an idle
        controller stops acting (and says so) soon after the directory is taken away."""
        self._timer = None
        if active() and self.check(fresh=True):
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(CHECK_EVERY, self.watch, active)

    def stop_watching(self) -> None:
        """No more periodic looks (closing, or lost)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
