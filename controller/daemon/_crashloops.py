"""Warnings about simulations that keep failing or have stalled, said once, not per pass.

Status shows a crash loop, but an operator tailing the log used to see only info lines
("start 1 simulator"), hundreds a second with no back-off. After every pass the loop hands
its status here; a simulation whose simulators exit with failures (some wait out a
back-off, gave up, or were restarted since the last pass) or whose Stalled condition
holds gets one WARNING with the exit code and reason, then again only when the reason
changes or a minute has passed. Once it has gone a minute without trouble, one info line
says it recovered (sooner would call every crash loop "recovered" between two crashes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from controller.planner import ConditionType, ExitInfo, SimulationStatus, Status

log = structlog.get_logger("simfleet.daemon")


@dataclass(frozen=True)
class _Trouble:
    """What is wrong with one simulation, as one warning says it. ``fields`` are what
    makes it the same trouble (exit code, reason); ``counts`` only describe it."""

    event: str
    fields: tuple[tuple[str, object], ...]
    counts: tuple[tuple[str, object], ...] = field(default=(), compare=False)


def _exit_fields(info: ExitInfo) -> tuple[tuple[str, object], ...]:
    return (
        ("exit_code", info.exit_code),
        ("reason", str(info.reason)),
        ("failure_code", info.failure_code),
        ("message", info.message),
    )


def _trouble(sim: SimulationStatus, restarted: bool) -> _Trouble | None:
    stalled = next(
        (c for c in sim.conditions if c.type is ConditionType.STALLED and c.status), None
    )
    if stalled is not None:
        # the message counts ready simulators and minutes: it describes, it does not identify
        return _Trouble("simulation_stalled", (), (("message", stalled.message),))
    failing = [
        row
        for row in sim.simulators
        if row.last_exit is not None
        and row.last_exit.is_failure
        and (row.state in ("waiting", "failed") or (restarted and row.restarts > 0))
    ]
    if not failing:
        return None
    info = failing[0].last_exit
    assert info is not None
    return _Trouble(
        "simulation_failing",
        _exit_fields(info),
        (("failing", f"{len(failing)}/{sim.desired}"), ("restarts", sim.restarts)),
    )


@dataclass
class _Said:
    trouble: _Trouble
    said_at: float
    seen_at: float


class CrashLoops:
    """Remembers what was said about each simulation, so each thing is said once a minute.

    Args:
        every: seconds before the same trouble of the same simulation is repeated, and
            without trouble before it counts as recovered.
        clock: monotonic seconds.
    """

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._said: dict[str, _Said] = {}
        self._restarts: dict[str, int] = {}

    def observe(self, status: Status) -> None:
        """Look at one pass's status; warn about what is newly (or still) wrong."""
        now = self._clock()
        names = {sim.name for sim in status.simulations}
        for sim in status.simulations:
            restarted = sim.restarts > self._restarts.get(sim.name, sim.restarts)
            self._restarts[sim.name] = sim.restarts
            trouble = _trouble(sim, restarted)
            said = self._said.get(sim.name)
            if trouble is None:
                if said is not None and now - said.seen_at >= self.every:
                    del self._said[sim.name]
                    log.info("simulation_recovered", simulation=sim.name)
                continue
            if said is not None and said.trouble == trouble and now - said.said_at < self.every:
                said.seen_at = now
                continue
            self._said[sim.name] = _Said(trouble, said_at=now, seen_at=now)
            log.warning(trouble.event, simulation=sim.name, **dict(trouble.fields + trouble.counts))
        for gone in set(self._said) - names:
            del self._said[gone]
        for gone in set(self._restarts) - names:
            del self._restarts[gone]
