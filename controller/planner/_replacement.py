"""Pool replacement as a rollout: a new pool beside the old one, simulators move, old goes.

Batch cannot change a live pool's vmSize, node image, registries or slots per node, and
a job cannot move: its ``poolInfo`` changes only while it is disabled (``Job_Update`` /
``Job_Patch``: "the Job must be disabled"), and disabling requeues, terminates or waits
for the running tasks — simulators never finish, so every way through one job is an
outage. So a replacement is a move between *generations*, each a pool and, per
simulation, a job on it; the rolling-update machinery that already moves simulators from
one template to the next moves them from one generation to the next.

**Generations of a pool.** The spec's pool name is the first generation's id. A changed
fixed field asks for a pool of a new generation, whose id is derived from the spec name
and a hash of the fixed fields (:func:`pool_id`, ``sims-g1f3a09c2b7``: deterministic, at
most 64 characters). Every pool simfleet creates is marked with the spec's pool name
(``ObservedPool.spec_pool``, Batch metadata ``simfleet-pool``), so observation tells which
pools are generations of which spec pool, and a restarted controller computes the same
id, finds what it created and goes on. The *current* generation is the one whose fixed
fields match the spec (the spec-named one first); when none does, the derived one is
created. The others are *leaving*: never resized (a shrink could take away a node that
runs a simulator still serving), and deleted once no job of this fleet is left on them.

**Jobs of a simulation.** A simulation's job on the first generation is named as the
simulation (what every earlier version made, and what ``simfleet status`` shows); on a
derived generation it is ``<simulation>-p<hash of the pool id>`` (:func:`job_id`), marked
with the simulation's name (``ObservedJob.simulation``, metadata
``simfleet-simulation``). Task ids keep naming their own job (``<job>-s<slot>-r…-a…``),
so ids stay deterministic per job and a pass repeated after ``kill -9`` finds the tasks
it added. The planner merges a simulation's jobs into one view: a task in a job other
than the current one is *old* whatever its template (``ObservedTask.job`` names its job),
exactly like a task of an older template revision, so :mod:`._rolling` pairs its slot
with a new simulator in the current job within ``maxSurge`` and retires it within
``maxUnavailable``; stops and deletions address the task's own job. A leaving job with no
live simulator left is deleted; then its pool holds nothing of this fleet and goes too.

**Sizing.** The current generation is sized as any pool (demand counts the simulations
on the spec pool); a leaving one keeps its nodes until it is deleted, so the moving
simulators have nodes on both sides.

**Opting out.** ``replacement: Hold`` on a pool keeps the old behaviour: no pool of a
new generation is created, the one that exists stays current, status and ``plan`` say
"needs replacement", nothing moves. (A generation that already matches the spec is
current either way: turning Hold on in the middle of a move does not move back.)

**A simulation whose spec names another pool** moves the same way, for the same reason
(its job cannot follow it): its job on the new pool is the one it has there, else the
id :func:`job_id` gives, unless one of its jobs elsewhere already holds that id (the
job it has always had, named as the simulation), in which case it gets the derived id
(:func:`current_job`). Its simulators then move slot by slot as above, the emptied job
is deleted, and the old pool is sized for what still runs on it (then pruned, if no
spec names it any more).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.planner._ids import MAX_ID, shortened
from controller.planner._observed import JobState, Observed, ObservedJob, ObservedPool, PoolConfig
from controller.spec import PoolSpec, Replacement

_HASH = 10


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:_HASH]


def config_digest(config: PoolConfig) -> str:
    """A short hash of a pool's fixed fields: the same fields, the same generation."""
    canonical = json.dumps(
        {
            "vmSize": config.vm_size.lower(),
            "slots": config.task_slots_per_node,
            "image": config.node_image.model_dump(),
            "registries": [r.model_dump(exclude_none=True) for r in config.registries],
        },
        sort_keys=True,
    )
    return _digest(canonical)


def pool_id(spec_pool: str, config: PoolConfig) -> str:
    """The id of the derived generation of ``spec_pool`` with these fixed fields."""
    suffix = f"-g{config_digest(config)}"
    return shortened(spec_pool, MAX_ID - len(suffix)) + suffix


def job_id(simulation: str, pool: str, spec_pool: str) -> str:
    """The id of a simulation's job on pool ``pool`` (a generation of ``spec_pool``)."""
    if pool.lower() == spec_pool.lower():
        return simulation
    return _derived_job_id(simulation, pool)


def _derived_job_id(simulation: str, pool: str) -> str:
    suffix = f"-p{_digest(pool.lower())}"
    return shortened(simulation, MAX_ID - len(suffix)) + suffix


def current_job(simulation: str, pool: str, spec_pool: str, jobs: Sequence[ObservedJob]) -> str:
    """The id of the job the simulation's simulators run in on ``pool``, the current
    generation of its spec pool ``spec_pool``; ``jobs``: all of the simulation's jobs.

    The job of this fleet already there (not being deleted) whatever its id, so a
    simulation that moved keeps the job it moved to; else :func:`job_id`, unless a job of
    this fleet on another pool holds that id (the simulation's spec moved from that
    pool: a job cannot follow it), which makes it the derived id. (One being deleted on
    this pool is waited for; one of another fleet is left to the ownership guards, which
    hold the simulation.)
    """
    folded = pool.lower()
    for job in jobs:
        if job.owned and job.state is not JobState.DELETING and job.pool.lower() == folded:
            return job.name
    wanted = job_id(simulation, pool, spec_pool).lower()
    if any(j.owned and j.name.lower() == wanted and j.pool.lower() != folded for j in jobs):
        return _derived_job_id(simulation, pool)
    return job_id(simulation, pool, spec_pool)


@dataclass(frozen=True)
class Generations:
    """The pools of one spec pool: which is current, which are leaving.

    Attributes:
        current: the id of the pool simulators run on (it may not exist yet).
        leaving: the observed generations that do not match the spec, by id.
        reasons: what differs between the spec and the pool it replaces (or, held, the
            pool that stays), in words; () when nothing does.
    """

    current: str
    leaving: tuple[str, ...]
    reasons: tuple[str, ...]


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


def belongs_to(pool: ObservedPool) -> str:
    """The spec pool an observed pool is a generation of."""
    return pool.spec_pool or pool.name


def generations(name: str, spec: PoolSpec, observed: Observed) -> Generations:
    """Sort the observed generations of spec pool ``name`` into current and leaving."""
    wanted = PoolConfig.of(spec)
    folded = name.lower()
    mine = sorted(
        (p for p in observed.pools.values() if p.owned and belongs_to(p).lower() == folded),
        key=lambda p: (p.name.lower() != folded, p.name),
    )
    matching = [p for p in mine if p.config == wanted]
    if matching:
        current = matching[0]
        leaving = tuple(p.name for p in mine if p is not current)
        old = next((p for p in mine if p is not current), None)
        reasons = replacement_reasons(wanted, old.config) if old and leaving else ()
        return Generations(current.name, leaving, reasons)
    if not mine:
        return Generations(name, (), ())
    reasons = replacement_reasons(wanted, mine[0].config)
    if spec.replacement is Replacement.HOLD:
        return Generations(mine[0].name, (), reasons)
    return Generations(pool_id(name, wanted), tuple(p.name for p in mine), reasons)


def simulation_of(job: ObservedJob) -> str:
    """The simulation a job belongs to: its mark, else (first generation, or not this
    fleet's) its own id."""
    return (job.simulation or job.name) if job.owned else job.name


def simulation_jobs(observed: Observed, simulation: str) -> tuple[ObservedJob, ...]:
    """The jobs of one simulation (its name compared without case), by job id: one, or
    two while a pool replacement moves it (``simfleet logs`` looks in each)."""
    return jobs_by_simulation(observed).get(simulation.lower(), ())


def jobs_by_simulation(observed: Observed) -> Mapping[str, tuple[ObservedJob, ...]]:
    """Every observed job under the (case-folded) name of its simulation, by job id."""
    grouped: dict[str, list[ObservedJob]] = {}
    for job_name in sorted(observed.jobs):
        job = observed.jobs[job_name]
        grouped.setdefault(simulation_of(job).lower(), []).append(job)
    return {name: tuple(jobs) for name, jobs in grouped.items()}
