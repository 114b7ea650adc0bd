"""What one step saw, decided and did — the one value the daemon, ``apply`` and ``plan``
read (status, metrics, the lines ``apply`` prints)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.planner import Action, Desired, Observed, Plan, Status, subject
from controller.spec import SpecError


@dataclass(frozen=True)
class ActionFailure:
    """An action the backend refused or could not complete."""

    action: Action
    message: str
    code: str | None
    transient: bool


@dataclass(frozen=True)
class PassResult:
    """What one step saw, decided and did.

    Attributes:
        plan: the planner's decision; ``plan.status`` describes the fleet as observed,
            before the actions ran.
        observed: the snapshot the plan was made from.
        executed: actions the backend carried out, in the plan's order.
        failures: actions that failed.
        retry_after: when a throttled backend may be called again, if it asked.
        started_at / duration: for logs and metrics.
        after: the status of the fleet with the executed actions' known effects applied
            (new simulators pending, stopped ones stopping, deleted objects gone); None
            when nothing was executed and ``plan.status`` already says it all.
        errors: spec errors of the catalog the step ran on.
        desired: the desired state the step planned for.
        scope: the simulations the step observed and planned (None: all of them).
        touched: the simulations an executed action changed.
        due: when a timer (a back-off, a deadline, a prune delay) next asks for a step,
            over the whole fleet (a scoped plan's ``requeue_after`` covers its scope).
        left: the fleet as the step left it: ``observed`` with the executed actions'
            known effects (a pool just created is there, with no node yet).
    """

    plan: Plan
    observed: Observed
    executed: tuple[Action, ...]
    failures: tuple[ActionFailure, ...]
    retry_after: datetime | None
    started_at: datetime
    duration: timedelta
    after: Status | None = None
    errors: tuple[SpecError, ...] = ()
    desired: Desired = field(default_factory=Desired)
    scope: frozenset[str] | None = None
    touched: frozenset[str] = frozenset()
    due: datetime | None = None
    left: Observed | None = None

    @functools.cached_property
    def status(self) -> Status:
        """The status after the step, failed actions added to their objects' messages
        (computed once; metrics, ``/status`` and ``apply`` all read it)."""
        return with_failures(self.after or self.plan.status, self.failures)


def with_failures(status: Status, failures: tuple[ActionFailure, ...]) -> Status:
    """Append "… failed: reason" to the message of each object an action failed on."""
    if not failures:
        return status
    notes: dict[tuple[str, str], list[str]] = {}
    for failure in failures:
        notes.setdefault(subject(failure.action), []).append(
            f"{failure.action.describe()} failed: {failure.message}"
        )

    def extend(message: str, extra: list[str] | None) -> str:
        return "; ".join([message, *extra] if message else extra) if extra else message

    return Status(
        simulations=tuple(
            dataclasses.replace(s, message=extend(s.message, notes.get(("simulation", s.name))))
            for s in status.simulations
        ),
        pools=tuple(
            dataclasses.replace(p, message=extend(p.message, notes.get(("pool", p.name))))
            for p in status.pools
        ),
    )
