"""Sizing a live pool: auto sizing without churn, and resize errors tried again.

**Demand.** A pool must offer, per simulation on it, the larger of its live simulators and
``simulators + maxSurge`` (the surge resolved as :mod:`._fenceposts` does): room for a
rollout's surge is kept all the time, so a rollout neither waits for nodes nor changes the
pool at any step. Worked numbers: 8 simulators with the default ``maxSurge: 25%`` need
8 + ceil(2) = 10 slots, on 4 slots per node 3 nodes; with ``maxSurge: 0`` only 8 slots, 2
nodes. A simulation with no simulators, a suspended one and one whose job is someone
else's (held, see :mod:`._conflicts`) ask for nothing beyond what still runs.

**Hysteresis.** A pool grows at once: a target below what demand needs is raised (the
other kind's target is kept as it is). It shrinks only once demand has stayed below its
target for the scale-down delay (``PlannerConfig.scale_down_delay``, the daemon's
``--scale-down-delay``, 10 minutes like the cluster autoscaler's), counted from the first
pass that saw it lower; a pass that sees demand back at the target forgets the clock. So
100 → 50 → 100 simulators within the delay sends nothing to the pool, and a rollout,
whose demand never moves, neither. The shrink is a :class:`ShrinkPool`, never a resize
down: backends remove idle nodes only, so no running simulator is sent back to the queue.
A pool whose counts are all fixed shrinks as soon as its spec says so (still idle nodes
only): nobody but its author changes its demand.

**Resize errors.** Batch ends a failed allocation (``AllocationTimedOut``, a core quota,
no Spot capacity) ``steady``, with the target unchanged and ``resizeErrors`` set, and never
tries again by itself. A steady pool with resize errors and fewer nodes than its target
is resized again to the same target after a back-off of 1 minute, doubling with every
retry up to 30 minutes. The errors stay in the pool's status, with when the next retry is,
until the pool has its nodes — also while a retry resizes it, though Batch clears
``resizeErrors`` as a resize starts.

**Memory.** The delay's clock and the retry state span passes in :class:`PoolMemory`, one
per pool, which the plan hands back (``Plan.sizing``) for the next pass, as ``Plan.absent``
carries the prune delay. Batch's own ``allocationStateTransitionTime`` would say when a
failed resize ended, but not how often it was tried, which the back-off needs, and it says
nothing about demand. A controller that restarts starts afresh: a shrink waits one more
delay, a retry comes after the first back-off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from controller.planner import _fenceposts, _replacement
from controller.planner._actions import ResizePool, ShrinkPool
from controller.planner._desired import Desired
from controller.planner._observed import Observed, ObservedPool, PoolState, SimulatorState
from controller.spec import Auto, PoolSpec, SimulationSpec

#: The scale-down delay when none is given (the cluster autoscaler's
#: ``--scale-down-unneeded-time``).
SCALE_DOWN_DELAY = timedelta(minutes=10)
#: The wait before the first retry of a failed resize; it doubles with each retry.
RETRY_FIRST = timedelta(minutes=1)
#: The longest wait between retries of a failed resize.
RETRY_MAX = timedelta(minutes=30)


@dataclass(frozen=True)
class PoolMemory:
    """What sizing remembers of one pool from one pass to the next.

    Attributes:
        lower_since: when demand was first seen below the pool's target (None: it is not).
        errors: the resize errors last reported, kept until the pool has its nodes.
        retries: how often the failed resize was sent again.
        retry_at: when the next retry is due (None: none is waiting).
    """

    lower_since: datetime | None = None
    errors: tuple[str, ...] = ()
    retries: int = 0
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Sizing:
    """What sizing decided for one live pool this pass."""

    actions: tuple[ResizePool | ShrinkPool, ...] = ()
    memory: PoolMemory = PoolMemory()
    messages: tuple[str, ...] = ()
    requeue_after: datetime | None = None


def headroom(spec: SimulationSpec) -> int:
    """The slots a simulation keeps free for its rollout's surge (0 without simulators)."""
    if spec.simulators == 0:
        return 0
    return _fenceposts.resolve(spec.rollout, spec.simulators).surge


def demand(pool: str, desired: Desired, observed: Observed, physical: str = "") -> int:
    """Simulator slots the pool must offer: per simulation on it, its simulators plus its
    surge, or its live simulators, whichever is larger.

    ``physical``: the id of the generation being sized when it is not ``pool`` (a
    replacement, see :mod:`._replacement`): live simulators count where they run.
    """
    total = 0
    physical = physical or pool
    on_pool = {
        _replacement.simulation_of(job): job
        for job in observed.jobs.values()
        if job.pool == physical
    }
    names = {name for name, sim in desired.simulations.items() if sim.spec.pool == pool} | set(
        on_pool
    )
    exited = SimulatorState.EXITED
    for name in sorted(names):
        sim = desired.simulations.get(name)
        job = observed.jobs.get(name)
        here = on_pool.get(name)
        live = sum(1 for t in here.tasks if t.state is not exited) if here is not None else 0
        # a simulation held because its job is someone else's runs nothing here, and
        # one whose spec names another pool only keeps what still runs here
        ours = sim is not None and not sim.spec.suspend and (job is None or job.owned)
        here_by_spec = sim is not None and sim.spec.pool.lower() == pool.lower()
        wanted = sim.spec.simulators + headroom(sim.spec) if sim and ours and here_by_spec else 0
        total += max(wanted, live)
    return total


def retry_wait(retries: int) -> timedelta:
    """The back-off before retry number ``retries + 1``: 1, 2, 4 … minutes, at most 30."""
    doubled: timedelta = RETRY_FIRST * (1 << min(retries, 16))
    return min(doubled, RETRY_MAX)


def size(
    pool: ObservedPool,
    spec: PoolSpec,
    wanted: tuple[int, int],
    memory: PoolMemory,
    now: datetime,
    delay: timedelta,
) -> Sizing:
    """Grow, shrink or retry one owned live pool toward ``wanted`` (dedicated, spot).

    Args:
        pool: the pool as observed.
        spec: its spec (a pool with only fixed counts shrinks without delay).
        wanted: the node targets demand asks for now.
        memory: what the previous pass remembered of this pool (``PoolMemory()`` if none).
        now: the time of this pass.
        delay: the scale-down delay.

    Returns:
        The actions, the memory for the next pass, status messages and when to look again.
    """
    target = (pool.target_dedicated, pool.target_spot)
    raised = (max(wanted[0], target[0]), max(wanted[1], target[1]))
    lower = wanted[0] < target[0] or wanted[1] < target[1]
    memory = replace(memory, lower_since=(memory.lower_since or now) if lower else None)
    if not _is_auto(spec):
        delay = timedelta(0)
    if pool.state is not PoolState.STEADY:
        waiting = (
            (f"waiting for the current resize before sizing to {wanted[0]}+{wanted[1]}",)
            if wanted != target
            else ()
        )
        return Sizing((), memory, (*_errors_shown(memory, resizing=True), *waiting))
    memory = _errors_seen(pool, memory)
    if raised != target:
        resize = ResizePool(pool.name, *raised, *target)
        return Sizing((resize,), memory, _errors_shown(memory, resizing=True))
    if lower:
        due = (memory.lower_since or now) + delay
        if now >= due:
            shrink = ShrinkPool(
                pool.name, *wanted, *target, pool.current_dedicated, pool.current_spot
            )
            busy = f"shrinking to {wanted[0]}+{wanted[1]} nodes as nodes become idle"
            return Sizing((shrink,), memory, (*_errors_shown(memory, resizing=False), busy))
        held = (
            f"shrinks to {wanted[0]}+{wanted[1]} nodes after {due.isoformat(timespec='seconds')}"
            " if demand stays lower"
        )
        return Sizing((), memory, (*_errors_shown(memory, resizing=False), held), due)
    return _retried(pool, memory, now)


def _is_auto(spec: PoolSpec) -> bool:
    return isinstance(spec.nodes.dedicated, Auto) or isinstance(spec.nodes.spot, Auto)


def _short(pool: ObservedPool) -> bool:
    return pool.current_dedicated < pool.target_dedicated or pool.current_spot < pool.target_spot


def _errors_seen(pool: ObservedPool, memory: PoolMemory) -> PoolMemory:
    """A steady pool's errors remembered; all of it forgotten once the pool has its nodes."""
    if not _short(pool):
        return replace(memory, errors=(), retries=0, retry_at=None)
    if pool.resize_errors:
        return replace(memory, errors=pool.resize_errors)
    return memory


def _retried(pool: ObservedPool, memory: PoolMemory, now: datetime) -> Sizing:
    """A steady pool at its target: resized again after a back-off while errors keep it
    short of nodes."""
    if not (pool.resize_errors and _short(pool)):
        moot = (_error_words(pool.resize_errors),) if pool.resize_errors else ()
        return Sizing((), memory, moot)
    retry_at = memory.retry_at or now + retry_wait(memory.retries)
    memory = replace(memory, retry_at=retry_at)
    if now < retry_at:
        return Sizing((), memory, _errors_shown(memory, resizing=False), retry_at)
    target = (pool.target_dedicated, pool.target_spot)
    retry = ResizePool(pool.name, *target, *target)
    memory = replace(memory, retries=memory.retries + 1, retry_at=None)
    return Sizing((retry,), memory, _errors_shown(memory, resizing=True))


def _error_words(errors: tuple[str, ...]) -> str:
    return "resize error: " + "; ".join(errors)


def _errors_shown(memory: PoolMemory, *, resizing: bool) -> tuple[str, ...]:
    """The remembered errors, and what is done about them, for the pool's status."""
    if not memory.errors:
        return ()
    words = _error_words(memory.errors)
    if resizing and memory.retries:
        return (f"{words}; resizing again (retry {memory.retries})",)
    if memory.retry_at is not None:
        when = memory.retry_at.isoformat(timespec="seconds")
        return (f"{words}; resizing again at {when} (retry {memory.retries + 1})",)
    return (words,)
