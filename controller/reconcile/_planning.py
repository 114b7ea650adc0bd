"""Where a step is planned: the one call into the planner, with its scope.

``scope`` names the simulations a step planned (None: all). Planning is asked of the
planner for the whole snapshot it is handed; a scoped step then keeps only what concerns
its scope, with the semantics the planner's own ``scope`` parameter has: the named
simulations' actions and status rows, every pool's actions and rows but no pool pruning,
and out-of-scope progress and prune-delay clocks carried over unchanged. ``explain=False``
drops the human change summary (the daemon never shows it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from controller.planner import (
    Action,
    DeletePool,
    Desired,
    Observed,
    Plan,
    PlannerConfig,
    Progress,
    Status,
    plan,
    subject,
)


def plan_step(
    desired: Desired,
    observed: Observed,
    now: datetime,
    config: PlannerConfig,
    progress: Mapping[str, Progress],
    absent: Mapping[tuple[str, str], datetime],
    *,
    scope: frozenset[str] | None,
    explain: bool,
) -> Plan:
    """The plan of one step (see the module's docstring for ``scope`` and ``explain``)."""
    decided = plan(desired, observed, now, config, progress, absent)
    if scope is None:
        return decided if explain else dataclasses.replace(decided, changes=())

    def kept(kind: str, name: str) -> bool:
        return kind == "pool" or name in scope

    def planned(action: Action) -> bool:
        return not isinstance(action, DeletePool) and kept(*subject(action))

    return Plan(
        actions=tuple(a for a in decided.actions if planned(a)),
        status=Status(
            simulations=tuple(s for s in decided.status.simulations if s.name in scope),
            pools=decided.status.pools,
        ),
        requeue_after=decided.requeue_after,
        progress={
            **{n: p for n, p in progress.items() if n not in scope},
            **{n: p for n, p in decided.progress.items() if n in scope},
        },
        changes=tuple(
            c
            for c in decided.changes
            if explain and kept(c.kind, c.name) and not (c.kind == "pool" and c.verb == "prune")
        ),
        absent={
            **{k: v for k, v in absent.items() if not (k[0] == "simulation" and k[1] in scope)},
            **{k: v for k, v in decided.absent.items() if k[0] == "simulation" and k[1] in scope},
        },
        failures={k: v for k, v in decided.failures.items() if kept(*k)},
    )
