"""One simulation's pass, in the Deployment controller's fixed order.

Order: not ours → status only; suspended → status only; no pool → status only; job
deleting → wait; then scale down and stop duplicates, take one rollout step, fill empty
slots (first start or restart with back-off), and forget old exited tasks. All actions for
new simulators go into one bulk :class:`AddTasks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.planner import (
    _cleanup,
    _fenceposts,
    _progress,
    _recycling,
    _restarts,
    _rolling,
    _scaling,
    _status,
)
from controller.planner._ids import revision, secret_digest
from controller.planner._slots import Slot, empty, group
from controller.planner._types import (
    Action,
    AddTasks,
    Condition,
    CreateJob,
    DeleteJob,
    DesiredSimulation,
    JobState,
    ObservedJob,
    Progress,
    SecretEnv,
    SimulationStatus,
    TaskTemplate,
)
from controller.spec import SimulationSpec, format_duration


@dataclass(frozen=True)
class SimulationPlan:
    """The actions, status and next wake-up of one simulation."""

    actions: tuple[Action, ...]
    status: SimulationStatus
    requeue_after: datetime | None
    progress: Progress | None = None


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
class _Held:
    """A simulation that gets no ordinary pass this time, and what it gets instead."""

    messages: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    actions: tuple[Action, ...] = ()
    settled: bool = False  # True: nothing is owed (suspended, or not simfleet's to run)


def _held(
    sim: DesiredSimulation, job: ObservedJob | None, *, pool_defined: bool, note: str
) -> _Held | None:
    """Why a simulation is left as it is (not ours, suspended, no pool, job not active)."""
    if job is not None and not job.owned:
        return _Held(
            (f"a job named {sim.name} exists and was not created by simfleet; leaving it alone",),
            settled=True,
        )
    if sim.spec.suspend:
        return _Held(("suspended: left exactly as it is",), _progress.suspended(), settled=True)
    if not pool_defined:
        return _Held((note, f"pool {sim.spec.pool} is not defined in any spec"))
    if job is None or job.state is JobState.ACTIVE:
        return None
    if job.state is JobState.COMPLETED:
        # Terminated behind simfleet's back (az batch job terminate): no task can be added
        # to it again, so it is replaced.
        return _Held(("job was terminated; replacing it",), actions=(DeleteJob(sim.name),))
    if job.state is JobState.DISABLED:
        return _Held(("job is disabled; enable it (az batch job enable) to resume",))
    return _Held((f"job is {job.state}; it is created again once gone",))


#: Wake just after a deadline, so it has passed when the pass runs.
TICK = timedelta(milliseconds=1)


def _verdict(
    facts: _progress.Facts, previous: Progress | None, spec: SimulationSpec, now: datetime
) -> tuple[Progress | None, tuple[Condition, ...], bool]:
    """Progress so far, the conditions, and whether the simulation is Stalled."""
    deadline = spec.rollout.progress_deadline
    progress = _progress.track(previous, facts, now)
    stalled = _progress.stalled(progress, deadline, now)
    return progress, _progress.conditions(facts, progress, deadline, now), stalled


def _wakeups(
    decisions: Mapping[int, _restarts.Decision],
    slots: Mapping[int, Slot],
    progress: Progress | None,
    deadline: timedelta,
    stalled: bool,
    now: datetime,
    settle: timedelta,
) -> list[datetime]:
    """When this simulation needs a pass even if nothing else happens."""
    waits = [d.until for d in decisions.values() if isinstance(d, _restarts.Wait)]
    if progress is None:
        return waits
    if not stalled:  # report Stalled on time
        waits.append(progress.since + deadline + TICK)
    return waits + [  # a simulator that settles may be progress
        t.started_at + settle
        for s in slots.values()
        for t in s.live
        if t.started_at is not None and t.started_at + settle > now
    ]


def plan_simulation(
    sim: DesiredSimulation,
    job: ObservedJob | None,
    *,
    pool_defined: bool,
    now: datetime,
    history: int,
    settle: timedelta,
    note: str = "",
    progress: Progress | None = None,
) -> SimulationPlan:
    """Decide what one desired simulation needs this pass.

    Args:
        sim: the desired simulation.
        job: its job as observed, or None when it has none yet.
        pool_defined: whether a spec defines the pool it names.
        now: the planner's "now".
        history: exited tasks kept per slot.
        settle: how long a simulator must run before it counts as available.
        note: why the spec is not fully in force (a failing file), for status.
        progress: this simulation's progress from the previous pass, if not converged.
    """
    spec = sim.spec
    template = template_of(sim)
    rev = revision(template)
    slots: Mapping[int, Slot] = group(
        job.tasks if job is not None else (),
        rev,
        expired=lambda t: _recycling.expired(t, spec.max_lifetime, now),
    )

    def status_only(
        *messages: str,
        conditions: tuple[Condition, ...] = (),
        actions: tuple[Action, ...] = (),
    ) -> SimulationPlan:
        status = _status.simulation_status(
            sim.name,
            spec.pool,
            spec.image,
            rev,
            spec.simulators,
            job,
            slots,
            {},
            [m for m in messages if m],
            now,
            suspended=spec.suspend,
        )
        return SimulationPlan(actions, dataclasses.replace(status, conditions=conditions), None)

    held = _held(sim, job, pool_defined=pool_defined, note=note)
    if held is not None:
        plan = status_only(*held.messages, conditions=held.conditions, actions=held.actions)
        if held.settled or spec.simulators == 0:
            return plan
        # Held back (no pool, job disabled or being replaced) while simulators are owed:
        # not converged, and Stalled once nothing moves for the progress deadline.
        facts = _progress.facts_of(
            slots,
            {},
            spec.simulators,
            _fenceposts.resolve(spec.rollout, spec.simulators).unavailable,
            now,
            settle,
            health=held.messages[-1],
        )
        progress, conditions, stalled = _verdict(
            dataclasses.replace(facts, converged=False), progress, spec, now
        )
        assert progress is not None
        wake = None if stalled else progress.since + spec.rollout.progress_deadline + TICK
        status = dataclasses.replace(plan.status, conditions=conditions)
        return dataclasses.replace(plan, status=status, progress=progress, requeue_after=wake)

    desired = spec.simulators
    actions: list[Action] = []
    if job is None:
        actions.append(CreateJob(sim.name, spec.pool))
    actions += _scaling.scale_down(sim.name, slots, desired)
    actions += _scaling.stop_duplicates(sim.name, slots, desired)
    # Every slot without a current-template simulator gets a restart decision first: a
    # slot whose new simulator finished for good (restartPolicy) must not keep its old one.
    decisions: dict[int, _restarts.Decision] = {}
    for index in range(desired):
        slot = slots.get(index) or empty(index)
        if slot.new is None:
            decisions[index] = _restarts.decide(
                sim.name, slot, rev, spec.restart_policy, spec.restart_backoff, now
            )
    # Only a slot whose new simulator *succeeded* for good is finished; a new template
    # that failed under restartPolicy Never must not cost the slot its old simulator.
    finished = frozenset(
        i for i, d in decisions.items() if isinstance(d, _restarts.Done) and d.succeeded
    )
    limits = _fenceposts.resolve(spec.rollout, desired)
    rollout = _rolling.step(
        sim.name,
        slots,
        rev,
        desired,
        limits,
        now,
        settle,
        finished=finished,
    )
    actions += rollout.retire
    starting = {
        i for i in decisions if not (slots.get(i) or empty(i)).live or i in rollout.pair_slots
    }
    new_tasks = tuple(
        d.task
        for i, d in sorted(decisions.items())
        if i in starting and isinstance(d, _restarts.Start)
    )
    if new_tasks:
        actions.append(AddTasks(sim.name, template, new_tasks, sim.workdir))
    actions += _cleanup.collect(sim.name, slots, history)

    trouble = _status.problems(slots, desired, decisions, now)
    rolling = _status.rollout_message(slots, desired)
    messages = [*trouble, rolling] if rolling else list(trouble)
    facts = _progress.facts_of(
        slots,
        decisions,
        desired,
        limits.unavailable,
        now,
        settle,
        health=trouble[0] if trouble else "",
    )
    deadline = spec.rollout.progress_deadline
    progress, conditions, stalled = _verdict(facts, progress, spec, now)
    if stalled:
        messages.insert(0, f"stalled: no progress for {format_duration(deadline)}")
    waits = _wakeups(decisions, slots, progress, deadline, stalled, now, settle)
    if note:
        messages.insert(0, note)
    if job is not None and job.pool != spec.pool:
        messages.insert(0, f"needs replacement: pool {job.pool} → {spec.pool}")
    status = _status.simulation_status(
        sim.name,
        spec.pool,
        spec.image,
        rev,
        desired,
        job,
        slots,
        decisions,
        messages,
        now,
    )
    status = dataclasses.replace(status, conditions=conditions)
    return SimulationPlan(tuple(actions), status, min(waits, default=None), progress)
