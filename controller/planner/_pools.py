"""Pools: create them, size ``auto`` counts to their simulators, never change fixed fields.

Batch cannot change a live pool's vmSize, image, registries or slots per node; a spec
that changes them gets a new pool beside the old one and the simulators move (see
:mod:`._replacement`), or, with ``replacement: Hold``, is reported as "needs
replacement" and nothing is done silently. Node
counts are the one thing a pass changes, and only while the pool is steady (Batch refuses
a resize during a resize).

``auto`` sizing: a pool needs ``ceil(demand / taskSlotsPerNode)`` nodes, where demand sums,
per simulation on the pool, the larger of its desired count plus its rollout surge and
its live simulators (:func:`._sizing.demand`; when and how a live pool grows, shrinks or
retries a failed resize is :mod:`._sizing`'s). ``nodes.max`` bounds dedicated + spot.
With 6 simulators (``maxSurge: 25%``, so 6 + 2 = 8 slots), 4 slots per node,
``dedicated: auto, spot: 1, max: 20``: 2 nodes needed, 1 is spot, so dedicated = 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.planner import (
    _changes,
    _conflicts,
    _identities,
    _logins,
    _nodes,
    _replacement,
    _sizing,
)
from controller.planner._actions import Action, CreatePool, DeletePool
from controller.planner._desired import Desired
from controller.planner._observed import (
    Observed,
    ObservedPool,
    ObservedTask,
    PoolState,
    SimulatorState,
)
from controller.planner._reports import Change, PoolPhase, PoolStatus
from controller.spec import Auto, PoolSpec


@dataclass(frozen=True)
class PoolPlan:
    """The actions and status of one pool, what sizing remembers of it for the next pass
    (None: nothing) and when to look at it again."""

    actions: tuple[Action, ...]
    status: PoolStatus
    changes: tuple[Change, ...] = ()
    memory: _sizing.PoolMemory | None = None
    requeue_after: datetime | None = None


def _live_count(tasks: Sequence[ObservedTask]) -> int:
    """How many tasks hold a slot (``ObservedTask.live``, spelled out: 100,000 calls)."""
    exited = SimulatorState.EXITED
    return sum(1 for task in tasks if task.state is not exited)


def targets(spec: PoolSpec, slots_needed: int, slots_per_node: int) -> tuple[int, int]:
    """Dedicated and spot node targets for a pool that must offer ``slots_needed`` slots.

    ``slots_per_node`` is what the pool really has: a live pool awaiting replacement keeps
    its old value, and sizing must fit the simulators onto the nodes that exist.
    """
    needed = math.ceil(slots_needed / slots_per_node)
    dedicated, spot = spec.nodes.dedicated, spec.nodes.spot
    if isinstance(dedicated, Auto) and isinstance(spot, Auto):
        return min(needed, spec.nodes.max), 0
    if isinstance(dedicated, Auto):
        assert isinstance(spot, int)
        return max(0, min(needed, spec.nodes.max) - spot), spot
    if isinstance(spot, Auto):
        return dedicated, max(0, min(needed, spec.nodes.max) - dedicated)
    return dedicated, spot


def prefetched(name: str, spec: PoolSpec, desired: Desired) -> tuple[str, ...]:
    """The images a new pool pulls onto every node as it starts: its simulations' images
    when the spec asks for it (``prefetchImages``), else none.

    Batch fixes the list at creation and cannot change it, and an image that cannot be
    pulled makes every node unusable; so prefetching is opt-in, and the list is never a
    reason to replace a pool (it is stale after the first rollout anyway).
    """
    if not spec.prefetch_images:
        return ()
    return tuple(
        sorted({s.spec.image for s in desired.simulations.values() if s.spec.pool == name})
    )


def pool_status(pool: ObservedPool, message: str) -> PoolStatus:
    """A pool's status row as observed, with a message; what its nodes say (broken or
    preempted ones, see :mod:`._nodes`) is added to the message and its condition."""
    health = _nodes.health(pool)
    condition = _nodes.condition(pool)
    return PoolStatus(
        name=pool.name,
        dedicated=pool.current_dedicated,
        spot=pool.current_spot,
        target_dedicated=pool.target_dedicated,
        target_spot=pool.target_spot,
        state=PoolPhase(pool.state),
        message="; ".join(m for m in (message, health) if m),
        nodes=pool.nodes,
        node_errors=pool.node_errors,
        conditions=(condition,) if condition is not None else (),
    )


def plan_pool(
    name: str,
    spec: PoolSpec,
    desired: Desired,
    observed: Observed,
    *,
    now: datetime,
    scale_down_delay: timedelta = _sizing.SCALE_DOWN_DELAY,
    memory: _sizing.PoolMemory | None = None,
    explain: bool = False,
) -> PoolPlan:
    """Decide what one desired pool needs this pass (and, with ``explain``, say so); a live
    pool is sized by :func:`._sizing.size`."""
    generations = _replacement.generations(name, spec, observed)
    pool = observed.pools.get(generations.current)
    slots = pool.config.task_slots_per_node if pool is not None else spec.task_slots_per_node
    needed = _sizing.demand(name, desired, observed, generations.current)
    dedicated, spot = targets(spec, needed, slots)
    replaced = _replaced(generations, observed) if explain else ()
    if pool is None:
        refused = _identities.refusal(spec, observed)
        if refused:
            held = PoolStatus(generations.current, 0, 0, dedicated, spot, PoolPhase.HELD, refused)
            return PoolPlan((), held)
        servers = {r.server for r in spec.registries}
        create = CreatePool(
            name=generations.current,
            spec=spec,
            dedicated=dedicated,
            spot=spot,
            passwords={s: p for s, p in desired.registry_passwords.items() if s in servers},
            images=prefetched(name, spec, desired),
            login_digest=desired.login_digests.get(name, ""),
            spec_pool=name,
        )
        message = _replacing(generations)
        status = PoolStatus(generations.current, 0, 0, dedicated, spot, PoolPhase.CREATING, message)
        created = (_changes.pool_created(create),) if explain else ()
        return PoolPlan((create,), status, replaced + created)
    if not pool.owned:
        return PoolPlan((), pool_status(pool, _conflicts.taken("pool", name, pool.owner)))
    reasons = () if generations.leaving else generations.reasons
    changes = (_changes.pool_replacement(name, reasons),) if explain and reasons else replaced
    if pool.state is PoolState.DELETING:
        message = "being deleted; it is created again once gone"
        return PoolPlan((), pool_status(pool, message), changes)
    messages = [_replacing(generations)] if generations.leaving else []
    if reasons:
        messages.append("needs replacement: " + ", ".join(reasons))
    sized = _sizing.size(
        pool, spec, (dedicated, spot), memory or _sizing.PoolMemory(), now, scale_down_delay
    )
    messages += sized.messages
    digest = desired.login_digests.get(name, "")
    logins, rotated = _logins.record(pool.name, spec, pool, digest, spec_pool=name)
    if rotated:
        messages.append(rotated)
    if explain:
        resized = tuple(_changes.pool_resized(a) for a in sized.actions)
        changes = (*resized, *changes)
        if logins:
            changes = (*changes, _changes.login_recorded(name, rotated))
    status = pool_status(pool, "; ".join(messages))
    actions = (*sized.actions, *logins)
    return PoolPlan(actions, status, changes, sized.memory, sized.requeue_after)


def _replaced(generations: _replacement.Generations, observed: Observed) -> tuple[Change, ...]:
    """``plan``'s words for a replacement under way: the whole move, () when none is."""
    if not generations.leaving:
        return ()
    moving = sum(
        _live_count(job.tasks)
        for job in observed.jobs.values()
        if job.owned and job.pool in generations.leaving
    )
    return (
        _changes.pool_replaced(
            generations.current, generations.leaving, generations.reasons, moving
        ),
    )


def _replacing(generations: _replacement.Generations) -> str:
    """The status words of a pool that replaces others, "" when it replaces none."""
    if not generations.leaving:
        return ""
    why = f" ({', '.join(generations.reasons)})" if generations.reasons else ""
    return f"replaces pool {', '.join(generations.leaving)}{why}"


def plan_leaving(
    name: str,
    current: str,
    desired: Desired,
    observed: Observed,
    *,
    full: bool,
    explain: bool = False,
) -> PoolPlan:
    """See :func:`_leaving`; with ``explain``, its status in words for ``plan``."""
    plan = _leaving(name, current, desired, observed, full=full)
    if not explain:
        return plan
    change = _changes.pool_leaving(name, plan.status.message)
    return PoolPlan(plan.actions, plan.status, (change,))


def _leaving(
    name: str, current: str, desired: Desired, observed: Observed, *, full: bool
) -> PoolPlan:
    """A generation being replaced by ``current``: never resized, deleted once no job of
    this fleet is left on it (and none of anyone else's runs on it). Only a ``full``
    pass deletes (a scoped one has not looked at every job), and nothing is deleted
    while pruning is held."""
    pool = observed.pools[name]
    on_it = [j for j in observed.jobs.values() if j.pool == name]
    if pool.state is PoolState.DELETING:
        return PoolPlan((), pool_status(pool, f"replaced by pool {current}: being deleted"))
    if any(not j.owned for j in on_it):
        message = f"replaced by pool {current}; a job simfleet does not own runs on it"
        return PoolPlan((), pool_status(pool, message))
    if on_it:
        left = sum(_live_count(j.tasks) for j in on_it)
        message = f"replaced by pool {current}: {left} simulator(s) still on it"
        return PoolPlan((), pool_status(pool, message))
    if not desired.prune_allowed:  # the same words from a full or a scoped pass
        message = f"replaced by pool {current}: empty; not deleted because"
        return PoolPlan((), pool_status(pool, f"{message} {desired.prune_held_because}"))
    if not full:
        return PoolPlan((), pool_status(pool, f"replaced by pool {current}: empty"))
    message = f"replaced by pool {current}: empty, deleting"
    return PoolPlan((DeletePool(name),), pool_status(pool, message))


def plan_pools(
    desired: Desired,
    observed: Observed,
    now: datetime,
    scale_down_delay: timedelta,
    memory: Mapping[str, _sizing.PoolMemory],
    *,
    explain: bool = False,
    full: bool = True,
) -> Mapping[str, PoolPlan]:
    """Plans for every desired pool and each generation it replaces, by pool id
    (``memory``: the previous pass's, by spec pool name).

    ``full``: this pass observed every job (a scoped pass deletes no pool).
    """
    plans = {}
    for name, spec in desired.pools.items():
        generations = _replacement.generations(name, spec, observed)
        plans[generations.current] = plan_pool(
            name,
            spec,
            desired,
            observed,
            now=now,
            scale_down_delay=scale_down_delay,
            memory=memory.get(name),
            explain=explain,
        )
        for leaving in generations.leaving:
            plans[leaving] = plan_leaving(
                leaving, generations.current, desired, observed, full=full, explain=explain
            )
    return plans
