"""One simulation as a pass sees it: template, revision and slots, derived once.

Every phase of :mod:`._simulations` (hold, scale, roll out, fill, trim history), the
status row and the change words read this one value, so nothing is derived twice: the
template is hashed once, the tasks are grouped once, and the slots that need attention
(old, crowded, vacant, beyond the desired count) are picked out in one sweep — a
converged simulation of 200 simulators has none, and its phases cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from controller.planner import _lifetime
from controller.planner._actions import SecretEnv, TaskTemplate
from controller.planner._desired import DesiredSimulation
from controller.planner._ids import revision, secret_digest
from controller.planner._observed import ObservedJob, ObservedTask, SimulatorState
from controller.planner._slots import Slot, group


def template_of(sim: DesiredSimulation) -> TaskTemplate:
    """The task template a simulation's spec describes (secrets resolved)."""
    spec = sim.spec
    secrets = tuple(
        SecretEnv(name, ref.from_env, sim.secrets[name])
        for name, ref in sorted(spec.secret_env.items())
    )
    return TaskTemplate(
        image=spec.image,
        command=spec.command,
        env=tuple(sorted(spec.env.items())),
        secret_env=secrets,
        container_run_options=spec.container_run_options,
        max_lifetime=spec.max_lifetime,
        secret_digest=secret_digest(sim.revision_key, secrets),
    )


@dataclass(frozen=True)
class SimulationView:
    """A desired simulation beside its observed job, sorted into slots.

    Attributes:
        sim / job: the inputs (``job`` None: none yet): ``job`` is the simulation's job
            on its current pool.
        job_id / pool_id: that job's id and pool's id (the simulation's name and its
            spec's pool, but for a pool replacement: see ``_replacement``).
        template / revision: what the spec asks every simulator to run.
        desired: the simulator count asked for.
        slots: every slot with a task, by index, in index order.
        active: the slots below ``desired`` that hold a task, in index order.
        beyond: the slots at ``desired`` and above, in index order (scaled away).
        olds: active slots with a simulator on an older template (or past maxLifetime).
        crowded: slots (any index) with duplicates.
        vacant: indices below ``desired`` with no simulator on the current template.
        updated: active slots with a simulator on the current template.
        pending: live simulators in active slots waiting for a node.
        starting: those of them on a node already, getting their container ready.
        ready: live simulators (any slot, duplicates too) running and not being stopped.
    """

    sim: DesiredSimulation
    job: ObservedJob | None
    job_id: str
    pool_id: str
    template: TaskTemplate
    revision: str
    desired: int
    slots: Mapping[int, Slot]
    active: tuple[Slot, ...]
    beyond: tuple[Slot, ...]
    olds: tuple[Slot, ...]
    crowded: tuple[Slot, ...]
    vacant: tuple[int, ...]
    updated: int
    pending: int
    starting: int
    ready: int

    @property
    def name(self) -> str:
        """The simulation's name (and its first job's id)."""
        return self.sim.name

    def mark(self, job: str) -> str:
        """What an action on ``job`` names as its simulation: "" when the job's id is the
        simulation's name (see ``_actions``)."""
        return "" if job == self.sim.name else self.sim.name


def view_of(
    sim: DesiredSimulation,
    job: ObservedJob | None,
    now: datetime,
    *,
    job_id: str = "",
    pool_id: str = "",
    elsewhere: tuple[ObservedTask, ...] = (),
) -> SimulationView:
    """Derive the view of one simulation for the pass at ``now``.

    ``elsewhere``: the live simulators of its other jobs (on pools being replaced), each
    with ``ObservedTask.job`` set; they count as old, so the rollout moves them.
    """
    template = template_of(sim)
    rev = revision(template)
    desired = sim.spec.simulators
    tasks = job.tasks if job is not None else ()
    slots = group(
        tasks + elsewhere if elsewhere else tasks,
        rev,
        recycle_from=_lifetime.recycle_from(sim.spec.max_lifetime, now),
    )
    active: list[Slot] = []
    beyond: list[Slot] = []
    olds: list[Slot] = []
    crowded: list[Slot] = []
    updated = pending = starting = ready = 0
    running, waiting = SimulatorState.RUNNING, SimulatorState.PENDING
    for index, slot in slots.items():
        if slot.duplicates:
            crowded.append(slot)
            ready += sum(1 for t in slot.duplicates if _ready(t, now))
        for task in slot.live:  # _ready, spelled out: this loop sees every simulator
            if task.state is running:
                if not task.stopping and task.started_at is not None and task.started_at <= now:
                    ready += 1
            elif task.state is waiting and index < desired:
                pending += 1
                if task.starting:
                    starting += 1
        if index >= desired:
            beyond.append(slot)
            continue
        active.append(slot)
        if slot.old is not None:
            olds.append(slot)
        if slot.new is not None:
            updated += 1
    vacant = (
        ()
        if updated == desired
        else tuple(i for i in range(desired) if (s := slots.get(i)) is None or s.new is None)
    )
    return SimulationView(
        sim=sim,
        job=job,
        job_id=job_id or sim.name,
        pool_id=pool_id or sim.spec.pool,
        template=template,
        revision=rev,
        desired=desired,
        slots=slots,
        active=tuple(active),
        beyond=tuple(beyond),
        olds=tuple(olds),
        crowded=tuple(crowded),
        vacant=vacant,
        updated=updated,
        pending=pending,
        starting=starting,
        ready=ready,
    )


def _ready(task: ObservedTask, now: datetime) -> bool:
    """Running now and not being stopped: READY counts it at once (no settle time)."""
    return (
        task.state is SimulatorState.RUNNING
        and not task.stopping
        and task.started_at is not None
        and task.started_at <= now
    )
