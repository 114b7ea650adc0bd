"""Where a step is planned: the plan it executes, and the status it publishes afterwards.

Both are the planner's work on the step's scope (None: every simulation; a set: those
simulations, every pool, no pruning — the planner's own ``scope``). The status is planned
again after execution, on the snapshot with the executed actions' known effects
(:func:`controller.reconcile._snapshot.with_effects`), for the simulations the actions
touched only: so a step's status already shows what it did, and the rest of the fleet's
rows are the ones the step (or, outside its scope, an earlier step) computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import structlog

from controller.planner import (
    Desired,
    Observed,
    Plan,
    PlannerConfig,
    PoolMemory,
    Progress,
    SimulationStatus,
    Status,
    plan,
)

log = structlog.get_logger("simfleet.reconcile")


def plan_step(
    desired: Desired,
    observed: Observed,
    now: datetime,
    config: PlannerConfig,
    progress: Mapping[str, Progress],
    absent: Mapping[tuple[str, str], datetime],
    sizing: Mapping[str, PoolMemory],
    *,
    scope: frozenset[str] | None,
    explain: bool,
) -> Plan:
    """The plan of one step; a simulation whose planning failed is logged once here."""
    decided = plan(
        desired,
        observed,
        now,
        config,
        progress,
        absent,
        sizing=sizing,
        scope=scope,
        explain=explain,
    )
    for (kind, name), reason in sorted(decided.failures.items()):
        log.warning("planning_failed", kind=kind, name=name, error=reason)
    return decided


def status_after(
    desired: Desired,
    after: Observed,
    now: datetime,
    config: PlannerConfig,
    decided: Plan,
    touched: frozenset[str],
) -> Status:
    """The status rows of the ``touched`` simulations and of every pool, planned on the
    snapshot as it stands after execution (its actions are not executed)."""
    return plan(
        desired,
        after,
        now,
        config,
        decided.progress,
        decided.absent,
        sizing=decided.sizing,
        scope=touched,
        explain=False,
    ).status


def merged_status(base: Status, update: Status, scope: frozenset[str] | None) -> Status:
    """``update`` when it covers everything (``scope`` None); otherwise ``base`` with the
    rows of the simulations in ``scope`` taken from ``update`` (one in scope without a row
    there is gone), and ``update``'s pools (a scoped plan still plans every pool the specs
    name) followed by ``base``'s others: the pools only pruning reports (in no spec,
    kept or waiting out the prune delay), which a scoped plan never looks at."""
    if scope is None:
        return update
    rows: dict[str, SimulationStatus] = {s.name: s for s in base.simulations if s.name not in scope}
    rows.update((s.name, s) for s in update.simulations if s.name in scope)
    planned = {p.name for p in update.pools}
    pools = update.pools + tuple(p for p in base.pools if p.name not in planned)
    return Status(simulations=tuple(rows[n] for n in sorted(rows)), pools=pools)
