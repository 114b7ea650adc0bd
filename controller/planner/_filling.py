"""Fill vacant slots: first start, scale-up, and restart per ``restartPolicy`` with back-off.

A slot with no simulator on the current template gets a decision here, whether it never
had one (a new simulation, or a scale-up), its simulator exited, or a rollout pairs it.

The back-off doubles per consecutive failure from ``initial`` up to ``max``, and a
simulator that ran for ``resetAfter`` starts the count afresh. The count is data that
travels with each task (``ObservedTask.failures``: consecutive failures before it
started), so a restarted controller continues it instead of starting over.

Worked numbers with ``initial: 10s, max: 5m, resetAfter: 10m``: a simulator that crashes
after 3 s for the 1st, 2nd, 3rd time waits 10 s, 20 s, 40 s; the 6th consecutive crash
waits 5 m (320 s capped); one that crashes after running 15 minutes waits 10 s again.

A simulator simfleet stopped itself (scale-down, rollout, shutdown) is replaced at once,
without counting a failure or a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.planner._actions import NewTask
from controller.planner._ids import task_id
from controller.planner._observed import ExitReason, ObservedTask
from controller.planner._slots import Slot
from controller.spec import RestartBackoff, RestartPolicy


@dataclass(frozen=True)
class Start:
    """Start a simulator in the slot now."""

    task: NewTask


@dataclass(frozen=True)
class Wait:
    """Back-off: start one once ``until`` has passed."""

    until: datetime


@dataclass(frozen=True)
class Done:
    """The restart policy says the slot stays empty (``Never``, or ``OnFailure`` after success)."""

    succeeded: bool


Decision = Start | Wait | Done


def backoff_delay(backoff: RestartBackoff, failures: int) -> timedelta:
    """The wait before the restart that follows ``failures`` consecutive failures (>= 1)."""
    exponent = max(0, failures - 1)
    if exponent >= 32:  # 2**32 × any initial is far past any sane max
        return backoff.max
    return min(backoff.max, backoff.initial * (1 << exponent))


def consecutive_failures(task: ObservedTask, backoff: RestartBackoff) -> int:
    """Failures in a row, counting ``task``'s exit; a long enough run resets the count."""
    ran = (
        task.exited_at - task.started_at
        if task.exited_at is not None and task.started_at is not None
        else timedelta(0)
    )
    return 1 if ran >= backoff.reset_after else task.failures + 1


def fill(
    simulation: str,
    slot: Slot,
    revision: str,
    policy: RestartPolicy,
    backoff: RestartBackoff,
    now: datetime,
) -> Decision:
    """What a slot without a current-template simulator needs now: start, wait or nothing.

    Args:
        simulation: the id of the job the task goes into, for task ids (the simulation's
            name, except on a replacement pool: see ``_replacement``).
        slot: the slot, with its history.
        revision: the current template revision.
        policy: the simulation's restart policy.
        backoff: the simulation's back-off settings.
        now: the planner's "now".
    """

    def start(restarts: int, failures: int) -> Start:
        attempt = slot.next_attempt(revision)
        new = NewTask(
            id=task_id(simulation, slot.index, revision, attempt),
            slot=slot.index,
            revision=revision,
            attempt=attempt,
            restarts=restarts,
            failures=failures,
        )
        return Start(new)

    latest = slot.latest
    if latest is None or latest.revision != revision:
        return start(restarts=0, failures=0)
    if latest.exit is None or latest.exit.reason is ExitReason.STOPPED:
        return start(restarts=latest.restarts, failures=latest.failures)
    if policy is RestartPolicy.NEVER:
        return Done(succeeded=latest.exit.reason is ExitReason.SUCCEEDED)
    if policy is RestartPolicy.ON_FAILURE and not latest.exit.is_failure:
        return Done(succeeded=True)
    failures = consecutive_failures(latest, backoff)
    until = (latest.exited_at or now) + backoff_delay(backoff, failures)
    if until > now:
        return Wait(until=until)
    return start(restarts=latest.restarts + 1, failures=failures)
