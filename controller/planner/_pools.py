"""Pools: create them, size ``auto`` counts to their simulators, never change fixed fields.

Batch cannot change a live pool's vmSize, image, registries or slots per node; a spec
that changes them is reported as "needs replacement" and nothing is done silently. Node
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.planner import _changes, _conflicts, _identities, _logins, _nodes, _sizing
from controller.planner._actions import Action, CreatePool
from controller.planner._desired import Desired
from controller.planner._observed import (
    Observed,
    ObservedPool,
    PoolConfig,
    PoolState,
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


def replacement_reasons(wanted: PoolConfig, actual: PoolConfig) -> tuple[str, ...]:
    """Human descriptions of the fixed fields that differ, e.g. ``vmSize a → b``."""
    reasons = []
    if wanted.vm_size != actual.vm_size:
        reasons.append(f"vmSize {actual.vm_size} → {wanted.vm_size}")
    if wanted.task_slots_per_node != actual.task_slots_per_node:
        reasons.append(
            f"taskSlotsPerNode {actual.task_slots_per_node} → {wanted.task_slots_per_node}"
        )
    if wanted.node_image != actual.node_image:
        reasons.append("nodeImage changed")
    if wanted.registries != actual.registries:
        reasons.append("registries changed")
    return tuple(reasons)


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
    pool = observed.pools.get(name)
    slots = pool.config.task_slots_per_node if pool is not None else spec.task_slots_per_node
    dedicated, spot = targets(spec, _sizing.demand(name, desired, observed), slots)
    if pool is None:
        refused = _identities.refusal(spec, observed)
        if refused:
            return PoolPlan((), PoolStatus(name, 0, 0, dedicated, spot, PoolPhase.HELD, refused))
        servers = {r.server for r in spec.registries}
        create = CreatePool(
            name=name,
            spec=spec,
            dedicated=dedicated,
            spot=spot,
            passwords={s: p for s, p in desired.registry_passwords.items() if s in servers},
            images=prefetched(name, spec, desired),
            login_digest=desired.login_digests.get(name, ""),
        )
        status = PoolStatus(name, 0, 0, dedicated, spot, PoolPhase.CREATING, "")
        return PoolPlan((create,), status, (_changes.pool_created(create),) if explain else ())
    if not pool.owned:
        return PoolPlan((), pool_status(pool, _conflicts.taken("pool", name, pool.owner)))
    reasons = replacement_reasons(PoolConfig.of(spec), pool.config)
    changes = (_changes.pool_replacement(name, reasons),) if explain and reasons else ()
    if pool.state is PoolState.DELETING:
        message = "being deleted; it is created again once gone"
        return PoolPlan((), pool_status(pool, message), changes)
    messages = ["needs replacement: " + ", ".join(reasons)] if reasons else []
    sized = _sizing.size(
        pool, spec, (dedicated, spot), memory or _sizing.PoolMemory(), now, scale_down_delay
    )
    messages += sized.messages
    logins, rotated = _logins.record(name, spec, pool, desired.login_digests.get(name, ""))
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


def plan_pools(
    desired: Desired,
    observed: Observed,
    now: datetime,
    scale_down_delay: timedelta,
    memory: Mapping[str, _sizing.PoolMemory],
    *,
    explain: bool = False,
) -> Mapping[str, PoolPlan]:
    """Plans for every desired pool, by name (``memory``: the previous pass's)."""
    return {
        name: plan_pool(
            name,
            spec,
            desired,
            observed,
            now=now,
            scale_down_delay=scale_down_delay,
            memory=memory.get(name),
            explain=explain,
        )
        for name, spec in desired.pools.items()
    }
