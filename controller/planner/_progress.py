"""Conditions and the progress deadline: Available, Progressing, Stalled.

Like the Deployment controller's ``progress.go`` this only computes. Progress is judged
on two marks, both "higher is better": simulators on the current template that are
available, and (negated) live simulators on older templates. A simulation that is not
converged keeps a :class:`Progress` value — the best marks seen and when they last
improved — which each pass hands to the next (retries and time are data). Only beating
the best counts, so a crash-looping simulator that runs for a moment and dies again is
no progress. With no improvement for ``rollout.progressDeadline`` the simulation is
Stalled, and the message says why ("3/8 simulators failing: ContainerInvalidImage").

The daemon keeps progress in memory: after a controller restart the deadline counts
afresh from the first pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.planner import _filling
from controller.planner._reports import Condition, ConditionType, Progress, Reason
from controller.planner._rolling import available
from controller.planner._view import SimulationView
from controller.spec import format_duration


@dataclass(frozen=True)
class Facts:
    """What the conditions are computed from (counts over slots ``0 … desired-1``)."""

    desired: int
    min_available: int
    available: int
    updated_available: int
    old_live: int
    converged: bool
    rolling: bool
    health: str  # the most telling status phrase, e.g. "1/3 simulators failing: …"


def facts_of(
    view: SimulationView,
    decisions: Mapping[int, _filling.Decision],
    unavailable: int,
    now: datetime,
    settle: timedelta,
    health: str,
) -> Facts:
    """Count what the conditions need, over the slots of one simulation."""
    desired = view.desired
    surplus = sum(len(s.live) + len(s.duplicates) for s in view.beyond) + sum(
        len(s.duplicates) for s in view.crowded if s.index < desired
    )
    old_live = len(view.olds) + surplus
    serving = 0
    updated = set()
    for slot in view.active:
        for task in slot.live:
            if available(task, now, settle):
                serving += 1
                if task is slot.new:
                    updated.add(slot.index)
    done = {i for i, d in decisions.items() if isinstance(d, _filling.Done)}
    succeeded = {i for i in done if isinstance(d := decisions[i], _filling.Done) and d.succeeded}
    return Facts(
        desired=desired,
        # a slot that finished successfully for good needs no server
        min_available=max(0, desired - len(succeeded) - unavailable),
        available=serving,
        updated_available=len(updated),
        old_live=old_live,
        converged=old_live == 0 and len(updated | done) == desired,
        rolling=bool(view.olds),
        health=health,
    )


def track(previous: Progress | None, facts: Facts, now: datetime) -> Progress | None:
    """The progress value after this pass; None once converged."""
    if facts.converged:
        return None
    marks = (facts.updated_available, -facts.old_live)
    if previous is None:
        return Progress(marks, now)
    if any(mark > best for mark, best in zip(marks, previous.best, strict=True)):
        best = (max(marks[0], previous.best[0]), max(marks[1], previous.best[1]))
        return Progress(best, now)
    return previous


def stalled(progress: Progress | None, deadline: timedelta, now: datetime) -> bool:
    """No improvement for longer than the deadline."""
    return progress is not None and now - progress.since > deadline


def _available(facts: Facts) -> Condition:
    """Available: at least the minimum of simulators serve."""
    enough = facts.available >= facts.min_available
    return Condition(
        ConditionType.AVAILABLE,
        enough,
        Reason.MINIMUM_AVAILABLE if enough else Reason.MINIMUM_UNAVAILABLE,
        f"{facts.available}/{facts.desired} available, at least {facts.min_available} needed",
    )


def conditions(
    facts: Facts, progress: Progress | None, deadline: timedelta, now: datetime
) -> tuple[Condition, ...]:
    """Available, Progressing and Stalled for one simulation."""
    available = _available(facts)
    updated = f"{facts.updated_available}/{facts.desired} available on the current template"
    if facts.converged:
        done = f"all {facts.desired} simulators available on the current template"
        return (
            available,
            Condition(ConditionType.PROGRESSING, True, Reason.COMPLETE, done),
            Condition(ConditionType.STALLED, False, Reason.COMPLETE, done),
        )
    if stalled(progress, deadline, now):
        why = f"no progress for {format_duration(deadline)}: {facts.health or updated}"
        return (
            available,
            Condition(ConditionType.PROGRESSING, False, Reason.DEADLINE_EXCEEDED, why),
            Condition(ConditionType.STALLED, True, Reason.DEADLINE_EXCEEDED, why),
        )
    reason = (
        Reason.ROLLING_OUT
        if facts.rolling
        else Reason.SCALING
        if facts.health == ""
        else Reason.RECOVERING
    )
    message = f"{updated}; {facts.health}" if facts.health else updated
    return (
        available,
        Condition(ConditionType.PROGRESSING, True, reason, message),
        Condition(ConditionType.STALLED, False, reason, message),
    )


def waiting(facts: Facts, why: str) -> tuple[Condition, ...]:
    """Simulators wait for nodes that are still coming (see :mod:`._allocation`):
    Progressing, never Stalled, with the wait as the reason."""
    available = _available(facts)
    return (
        available,
        Condition(ConditionType.PROGRESSING, True, Reason.WAITING_FOR_NODES, why),
        Condition(ConditionType.STALLED, False, Reason.WAITING_FOR_NODES, why),
    )


def suspended() -> tuple[Condition, ...]:
    """A suspended simulation makes no progress on purpose; it is never Stalled."""
    why = "suspended: left exactly as it is"
    return (
        Condition(ConditionType.PROGRESSING, False, Reason.SUSPENDED, why),
        Condition(ConditionType.STALLED, False, Reason.SUSPENDED, why),
    )
