"""A fleet's lease on this machine: an ``flock`` on ``<state-dir>/leader.lock``.

The same model as the lease kept in Batch (:mod:`controller.backends._lease`), where it
applies: the kernel holds the lock exactly as long as the holder's process lives, so a
candidate takes over the moment the holder dies or lets go — no duration to wait out —
and a holder can never lose it while it runs, so it never needs fencing. The record
(holder, times, transitions, the digests ``apply --wait`` reads) is written beside the
lock, in ``leader.json``, replaced atomically so a standby never reads half of it. The
lock file itself is never replaced: a new inode would let a second holder in.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from controller.backends._errors import PermanentBackendError
from controller.backends._lease import LeaseRecord, LeaseState, LeaseTimings, claim

LOCK_FILE = "leader.lock"
RECORD_FILE = "leader.json"


def _published(record: LeaseRecord) -> tuple[str, str, str]:
    return record.holder, record.desired, record.converged


class LocalLease:
    """One controller's part in a state directory's lease; satisfies ``Lease``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        fleet: str,
        identity: str,
        timings: LeaseTimings,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.fleet = fleet
        self.identity = identity
        self.timings = timings
        self._dir = state_dir
        self._wall = wall
        self._held: IO[str] | None = None
        self._record: LeaseRecord | None = None

    def valid(self) -> bool:
        """Held: the kernel keeps the lock for as long as this process lives."""
        return self._held is not None

    def expires_in(self) -> float | None:
        """Never: the kernel frees the lock the moment its holder dies."""
        return None

    async def round(self, *, report: tuple[str, str] = ("", ""), force: bool = False) -> LeaseState:
        """Take the lock if it is free (or renew the record when it is held)."""
        try:
            if self._held is None and not self._lock():
                holder = self._read()
                if force:
                    raise PermanentBackendError(
                        f"the lease of {self._dir} cannot be taken while its holder "
                        f"({holder.holder if holder else 'another controller'}) runs: stop it",
                        code="LeaseHeld",
                    )
                return LeaseState(False, holder)
            current = self._record if self._record is not None else self._read()
            decided = claim(
                current,
                me=self.identity,
                unchanged_for=float("inf"),  # the lock is ours: whoever held it is gone
                now=self._wall(),
                timings=self.timings,
                report=report,
            )
            assert decided is not None, "a free lease is always claimed"
            if self._record is None or _published(decided.record) != _published(self._record):
                self._write(decided.record)  # a renewal alone changes nothing worth writing
        except OSError as error:
            raise PermanentBackendError(
                f"cannot use {self._dir}: {error}", code="StateDirUnusable"
            ) from error
        return LeaseState(True, self._record)

    def _lock(self) -> bool:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = (self._dir / LOCK_FILE).open("a+")  # O_CLOEXEC: simulators never inherit it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._held = handle
        return True

    def _read(self) -> LeaseRecord | None:
        try:
            items = json.loads((self._dir / RECORD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(items, dict):
            return None
        return LeaseRecord.from_items({str(k): str(v) for k, v in items.items()})

    def _write(self, record: LeaseRecord) -> None:
        path = self._dir / RECORD_FILE
        spare = path.with_suffix(".tmp")
        spare.write_text(json.dumps(record.as_items(), indent=1), encoding="utf-8")
        os.replace(spare, path)
        self._record = record

    async def release(self) -> None:
        """Write an empty holder and let go of the lock."""
        if self._held is None:
            return
        record = self._record or LeaseRecord(self.identity)
        with contextlib.suppress(OSError):
            self._write(LeaseRecord("", record.acquired, self._wall(), 0.0, record.transitions))
        await self.close()

    async def close(self) -> None:
        """Close the lock file (the kernel releases the lock)."""
        if self._held is not None:
            self._held.close()
            self._held = None
