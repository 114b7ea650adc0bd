"""``plan``: the one entry point of the planner, and the order of its phases.

The order is written down once, here: pools first (a job's simulators need somewhere to
run), then each simulation (create its job, scale, roll out, restart, clean up), then
prune. Deletions come last so that a pass which both adds and removes never leaves the
fleet smaller than asked in between. Pure: same inputs, same plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.planner import _changes, _pools, _pruning
from controller.planner._simulations import plan_simulation, template_of
from controller.planner._types import (
    Action,
    DeleteJob,
    DeletePool,
    DeleteTask,
    Desired,
    Observed,
    Plan,
    Progress,
    Status,
    StopTask,
)

__all__ = ["PlannerConfig", "plan", "template_of"]


@dataclass(frozen=True)
class PlannerConfig:
    """Tuning that is not part of any spec.

    Attributes:
        history: exited simulators kept per slot for their logs.
        settle: how long a simulator must run before it counts as available.
    """

    history: int = 3
    settle: timedelta = timedelta(0)


_LAST = (StopTask, DeleteTask, DeleteJob, DeletePool)


def plan(
    desired: Desired,
    observed: Observed,
    now: datetime,
    config: PlannerConfig | None = None,
    progress: Mapping[str, Progress] | None = None,
) -> Plan:
    """Compare desired with observed state and return the actions of one pass.

    Args:
        desired: what the spec files ask for, secrets resolved.
        observed: one snapshot of the backend.
        now: the current time (timezone-aware); the planner reads no clock.
        config: tuning; defaults are fine for most uses.
        progress: ``Plan.progress`` of the previous pass (progress deadlines span passes).

    Returns:
        The actions (creations and resizes first, stops and deletions last), the status
        of every object and the earliest moment a timer (a back-off) runs out.
    """
    config = config or PlannerConfig()
    actions: list[Action] = []
    pool_plans = _pools.plan_pools(desired, observed)
    for name in sorted(pool_plans):
        actions += pool_plans[name].actions

    simulations = []
    requeue: list[datetime] = []
    tracked: dict[str, Progress] = {}
    for name in sorted(desired.simulations):
        sim_plan = plan_simulation(
            desired.simulations[name],
            observed.jobs.get(name),
            pool_defined=desired.simulations[name].spec.pool in desired.pools,
            now=now,
            history=config.history,
            settle=config.settle,
            note=desired.notes.get(name, ""),
            progress=(progress or {}).get(name),
        )
        if sim_plan.progress is not None:
            tracked[name] = sim_plan.progress
        actions += sim_plan.actions
        simulations.append(sim_plan.status)
        if sim_plan.requeue_after is not None:
            requeue.append(sim_plan.requeue_after)

    pruned = _pruning.prune(desired, observed)
    actions += pruned.actions
    ordered = [a for a in actions if not isinstance(a, _LAST)] + [
        a for a in actions if isinstance(a, _LAST)
    ]
    status = Status(
        simulations=tuple(simulations) + pruned.simulations,
        pools=tuple(pool_plans[n].status for n in sorted(pool_plans)) + pruned.pools,
    )
    changes = _changes.summarize(desired, observed, ordered)
    return Plan(tuple(ordered), status, min(requeue, default=None), tracked, changes)
