"""A fleet's lease: which controller may write for the fleet, as Kubernetes' ``Lease``.

A fleet has one leader at a time. Candidates take turns at one record kept where the
backend lets it be changed only by a writer who saw its latest version (Batch: a job's
metadata, written with ``If-Match``; locally: a file under ``flock``), so two candidates
can never both win a round. The rules follow client-go's ``leaderelection``:

* the holder renews every ``retry_period``; a candidate takes the lease over only once
  the record has stayed *unchanged on its own clock* for the record's ``duration`` (no
  wall clocks are compared between machines), or at once when the holder released it;
* a holder that has not renewed for ``renew_deadline`` stops writing, judged on its own
  monotonic clock from the moment it *sent* its last successful renewal, before every
  write: a process paused past its lease and resumed cannot write on a lease it lost,
  because ``renew_deadline < duration`` leaves the margin for requests already in flight;
* a lease taken over by force (break-glass) only lets its new holder write after
  ``renew_deadline``, when the old holder has certainly stopped.

This module holds the record and the pure decision; the backends store the record
(``azure/_lease.py``, ``local/_lease.py``) and the daemon runs the rounds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from controller.backends._errors import PermanentBackendError


@dataclass(frozen=True)
class LeaseTimings:
    """client-go's three durations, in seconds (its defaults: 15, 10, 2).

    Attributes:
        duration: how long a candidate waits on an unchanged record before taking over.
        renew_deadline: how long a holder goes on writing without a successful renewal.
        retry_period: how often the holder renews and a candidate looks.
    """

    duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.duration:
            raise ValueError(
                "lease timings must satisfy 0 < retry period < renew deadline < duration "
                f"(got {self.retry_period:g} < {self.renew_deadline:g} < {self.duration:g})"
            )


@dataclass(frozen=True)
class LeaseRecord:
    """What the lease says: who holds it, since when, and how its holder is doing.

    Attributes:
        holder: the holder's identity; "" once released.
        acquired / renewed: when the holder took it and last renewed it (its wall clock;
            shown to people, never used to decide).
        duration: the holder's lease duration, which candidates wait out.
        transitions: how many times the lease changed hands.
        desired: digest of the desired state the holder is working towards.
        converged: digest of the desired state the holder last saw converged.
    """

    holder: str
    acquired: datetime | None = None
    renewed: datetime | None = None
    duration: float = 15.0
    transitions: int = 0
    desired: str = ""
    converged: str = ""

    def as_items(self) -> dict[str, str]:
        """The record as name/value pairs (Batch metadata; a JSON object locally)."""
        return {
            HOLDER: self.holder,
            ACQUIRED: self.acquired.isoformat() if self.acquired else "",
            RENEWED: self.renewed.isoformat() if self.renewed else "",
            DURATION: f"{self.duration:g}",
            TRANSITIONS: str(self.transitions),
            DESIRED: self.desired,
            CONVERGED: self.converged,
        }

    @classmethod
    def from_items(cls, items: Mapping[str, str]) -> LeaseRecord:
        """Read a record back; a damaged field reads as absent (an expired lease)."""
        return cls(
            holder=items.get(HOLDER, ""),
            acquired=_time(items.get(ACQUIRED, "")),
            renewed=_time(items.get(RENEWED, "")),
            duration=_number(items.get(DURATION, ""), 0.0),
            transitions=int(_number(items.get(TRANSITIONS, ""), 0)),
            desired=items.get(DESIRED, ""),
            converged=items.get(CONVERGED, ""),
        )

    def document(self) -> dict[str, object]:
        """The record as ``/status`` shows it."""
        return {
            "holder": self.holder,
            "acquired": self.acquired.isoformat() if self.acquired else None,
            "renewed": self.renewed.isoformat() if self.renewed else None,
            "durationSeconds": self.duration,
            "transitions": self.transitions,
        }


HOLDER = "simfleet-lease-holder"
ACQUIRED = "simfleet-lease-acquired"
RENEWED = "simfleet-lease-renewed"
DURATION = "simfleet-lease-duration"
TRANSITIONS = "simfleet-lease-transitions"
DESIRED = "simfleet-lease-desired"
CONVERGED = "simfleet-lease-converged"


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _number(text: str, default: float) -> float:
    try:
        value = float(text)
    except ValueError:
        return default
    return value if value >= 0 else default


@dataclass(frozen=True)
class Claim:
    """The record a candidate writes this round, and whether it takes the lease by force."""

    record: LeaseRecord
    forced: bool = False


def claim(
    current: LeaseRecord | None,
    *,
    me: str,
    unchanged_for: float,
    now: datetime,
    timings: LeaseTimings,
    report: tuple[str, str] = ("", ""),
    force: bool = False,
) -> Claim | None:
    """What ``me`` writes this round, or None: another holder's lease is still good.

    Args:
        current: the record as read (None: there is none yet).
        me: this controller's identity.
        unchanged_for: seconds the record has stayed unchanged on this controller's clock.
        now: the wall time written into the record (for people).
        timings: this controller's timings (its ``duration`` goes into the record).
        report: the (desired, converged) digests the holder publishes.
        force: take the lease even from a live holder (``apply --take-lease``).
    """
    desired, converged = report
    mine = dataclasses.replace(
        LeaseRecord(me, now, now, timings.duration), desired=desired, converged=converged
    )
    if current is None:
        return Claim(mine)
    if current.holder == me:
        return Claim(
            dataclasses.replace(
                mine, acquired=current.acquired or now, transitions=current.transitions
            )
        )
    free = not current.holder or unchanged_for >= current.duration
    if not free and not force:
        return None
    return Claim(dataclasses.replace(mine, transitions=current.transitions + 1), forced=not free)


@dataclass(frozen=True)
class LeaseState:
    """One round's outcome: whether this controller leads, and the record as it stands."""

    leading: bool
    record: LeaseRecord | None


class LeaseLostError(PermanentBackendError):
    """Raised by a fenced backend instead of sending a write on a lease no longer held."""

    def __init__(self, fleet: str) -> None:
        super().__init__(
            f"not sent: this controller no longer holds the lease of fleet {fleet!r}",
            code="LeaseLost",
        )


class Lease(Protocol):
    """A fleet's lease as one controller takes part in it."""

    fleet: str
    identity: str
    timings: LeaseTimings

    async def round(self, *, report: tuple[str, str] = ("", ""), force: bool = False) -> LeaseState:
        """Acquire or renew once (publishing ``report``); raise ``BackendError`` when the
        record could not be read or written (the round is lost, the lease may still hold)."""
        ...

    def valid(self) -> bool:
        """Whether this controller may write now (the fence, on its monotonic clock)."""
        ...

    def expires_in(self) -> float | None:
        """Seconds until another holder's lease, as last read, runs out on this
        controller's clock (a standby looks again right then, not a retry period later);
        None when there is no such deadline."""
        ...

    async def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so a standby takes over now."""
        ...

    async def close(self) -> None:
        """Free what the lease holds open (connections, files)."""
        ...
