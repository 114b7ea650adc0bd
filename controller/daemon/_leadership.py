"""Leader election for one controller: lease rounds every retry period, and who leads.

client-go's ``leaderelection`` loop over :class:`controller.backends.Lease`: a round
every ``retry_period`` (renewing when leading, trying to acquire when not), each round
bounded in time so a hung request cannot keep a lost lease looking held. The control loop
asks :meth:`Leadership.may_write` before every pass and the backend's fence asks the
lease itself before every write, so leading is always judged on this process's own
monotonic clock. Every round publishes the digests ``apply --wait`` reads: the desired
state the leader works towards and the one it last saw converged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from controller.backends import BackendError, Lease, LeaseRecord, UnreachableBackendError

log = structlog.get_logger("simfleet.leadership")

#: The shortest pause between rounds: a lease about to run out is looked at right then,
#: but never in a tight loop.
MIN_PAUSE = 0.05


@dataclass
class Leadership:
    """The lease rounds of one controller, and what they found.

    Attributes:
        lease: the fleet's lease as this controller takes part in it.
        report: (desired, converged) digests published with every round.
        record: the lease as the last round saw it.
        changed: set after every round (a standby's loop waits on it).
        term: how many times this controller started leading: a loop that took the fleet
            over for an earlier term must do it again (someone else led in between).
        on_change: called when this controller starts or stops leading (the daemon's
            loop wakes, even from a long sleep).
        error: why the last round failed ("" when it did not).
    """

    lease: Lease
    report: tuple[str, str] = ("", "")
    record: LeaseRecord | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    error: str = ""
    term: int = 0  # how many times this controller started leading
    on_change: Callable[[], None] | None = None  # told when leading starts or ends
    _was_leading: bool | None = None  # None: no round yet

    def may_write(self) -> bool:
        """Whether this controller leads now (and, after a forced takeover, may write)."""
        return self.lease.valid()

    async def round(self, *, force: bool = False, strict: bool = False) -> bool:
        """One round, bounded in time (half the renew deadline, at least a retry period);
        True when this controller leads after it. A failed round is logged (once per
        reason) and, with ``strict``, raised: a one-shot command reports it, a daemon
        just tries again."""
        timings = self.lease.timings
        try:
            state = await asyncio.wait_for(
                self.lease.round(report=self.report, force=force),
                timeout=max(timings.retry_period, timings.renew_deadline / 2),
            )
        except (BackendError, TimeoutError) as exc:
            text = str(exc) or "the lease request timed out"
            if strict and isinstance(exc, BackendError):  # the command says it in one line
                raise
            if strict:
                raise UnreachableBackendError(text, code="Timeout") from exc
            if text != self.error:
                log.warning("lease_round_failed", fleet=self.lease.fleet, error=text)
            self.error = text
            self._notice()
            return self.may_write()
        self.error = ""
        self.record = state.record
        self._notice()
        return self.may_write()

    def _notice(self) -> None:
        """Log and signal a change of leadership."""
        leading = self.may_write()
        if leading != self._was_leading:
            was_leading, self._was_leading = self._was_leading, leading
            holder = self.record.holder if self.record else ""
            other = holder if holder and holder != self.lease.identity else None
            fleet, identity = self.lease.fleet, self.lease.identity
            if leading:
                self.term += 1
                log.info("leading", fleet=fleet, identity=identity)
            elif was_leading:
                log.warning(
                    "leadership_lost",
                    fleet=fleet,
                    identity=identity,
                    leader=other,
                    error=self.error or None,
                )
            else:
                log.info("standing_by", fleet=fleet, identity=identity, leader=other)
            if self.on_change is not None:
                self.on_change()
        self.changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every retry period until ``stop`` — sooner when another holder's lease
        runs out before then, so a standby takes over within the lease duration plus one
        retry period of the last renewal it could have seen. (A renewal overdue past the
        renew deadline shows at the next round; the backend's fence acts on it at once.)"""
        period = self.lease.timings.retry_period
        while not stop.is_set():
            await self.round()
            expires = self.lease.expires_in()
            pause = period if expires is None else min(period, max(MIN_PAUSE, expires))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    async def release(self) -> None:
        """Give the lease up if this controller holds it (a clean shutdown: the standby
        takes over at its next round instead of waiting the lease out)."""
        if not self.lease.valid():
            return
        try:
            await self.lease.release()
        except BackendError as exc:
            log.warning("lease_not_released", fleet=self.lease.fleet, error=str(exc))
        else:
            log.info("lease_released", fleet=self.lease.fleet)
        self._was_leading = False
        self.changed.set()

    def describe(self) -> str:
        """Who leads, in words, for ``/readyz`` and one-line errors."""
        record = self.record
        if record is None or not record.holder:
            return f"fleet {self.lease.fleet!r} has no leader"
        when = f" since {record.acquired:%Y-%m-%d %H:%M:%S %Z}" if record.acquired else ""
        return f"fleet {self.lease.fleet!r} is led by {record.holder}{when}"

    def document(self) -> dict[str, Any]:
        """The ``lease`` part of ``/status``."""
        return {
            "fleet": self.lease.fleet,
            "identity": self.lease.identity,
            "role": "leader" if self.may_write() else "standby",
            "leader": self.record.document() if self.record and self.record.holder else None,
            "error": self.error,
        }
