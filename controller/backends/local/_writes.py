"""When the state file is written: once per burst of changes, never once per action.

Every change marks the store (:meth:`~._store.Store.mark`), which calls
:meth:`StateWriter.later`: the first mark of a burst arms one timer, and the write it
starts includes every change made until then, however many actions and callers made
them (``execute`` may be called by many callers at once). The backend also writes at the
start of every ``observe`` and at close, so a pass whose actions all fit in
:data:`FLUSH_DELAY` is written once, by the next pass's observe. A big state is written
less often: the delay is at least twice the last write's duration, because building its
JSON holds the interpreter.

A write that fails is logged once per fault; the caller turns it into the transient
``StateWriteFailed`` error (:meth:`StateWriter.failed`) so each simulation's status says
why nothing happens, and it is tried again on the next flush. A directory that was taken
away is never written (:mod:`._ownership`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from controller.backends import PermanentBackendError
from controller.backends import TransientBackendError as Transient
from controller.backends.local._ownership import Ownership
from controller.backends.local._store import Store

#: Seconds between a change and the state file write that includes it (coalescing).
FLUSH_DELAY = 0.25

log = structlog.get_logger("simfleet.local")


class StateWriter:
    """Coalesces the writes of one store's state file (see the module docstring)."""

    def __init__(self, store: Store, ownership: Ownership, active: Callable[[], bool]) -> None:
        """Args:
        store: the records to write.
        ownership: asked before every write.
        active: whether the backend is open (no write is scheduled otherwise).
        """
        self._store = store
        self._ownership = ownership
        self._active = active
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._failing = False

    async def flush(self) -> None:
        """Write the state now if it changed (checking first that the directory is still
        ours: a lost directory is never written).

        Raises:
            OSError: the write failed (logged once per fault).
            PermanentBackendError: ``StateDirLost``.
        """
        self._ownership.require()
        try:
            await self._store.flush()
        except OSError as error:
            if not self._failing:  # once per fault; execute reports it each time
                log.warning("state_write_failed", path=str(self._store.root), error=str(error))
            self._failing = True
            raise

    def later(self) -> None:
        """Called on every change: one write shortly after a burst of them."""
        if self._timer is not None or self._ownership.lost or not self._active():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # changed outside the event loop: the next flush writes it
            return
        delay = max(FLUSH_DELAY, 2 * self._store.write_seconds)
        self._timer = loop.call_later(delay, self._in_background)

    def cancel(self) -> None:
        """Drop the pending timed write (closing, or the directory was lost)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def note_recovery(self) -> None:
        """Log once that writes work again after a fault."""
        if self._failing and self._store.write_error is None:
            self._failing = False
            log.info("state_write_recovered", path=str(self._store.root))

    def failed(self, error: Exception) -> Transient:
        """The ``StateWriteFailed`` error for a failed write of the state directory."""
        detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        message = (
            f"cannot write the local state in {self._store.root}: {detail}; "
            "running simulators are unaffected, retrying"
        )
        return Transient(message, code="StateWriteFailed")

    def _in_background(self) -> None:
        self._timer = None
        if self._flushing is None and self._active() and not self._ownership.lost:
            self._flushing = asyncio.get_running_loop().create_task(self._background())

    async def _background(self) -> None:
        try:
            await self.flush()
        except OSError:
            pass  # observe raises StateWriteFailed with the error; the timer tries again
        except PermanentBackendError:
            pass  # StateDirLost: logged once by the ownership check
        finally:
            self._flushing = None
        if self._store.dirty and self._store.write_error is None:
            self.later()  # changes made while writing
