"""One simulation's pass: a short dispatcher over its phases, in a fixed order.

As the Deployment controller's ``syncDeployment``: first **hold** (not ours, suspended,
no pool, job not active → status only, see :mod:`._holding`); then, on the one
:class:`~._view.SimulationView` derived for this pass, **scale** (stop what is above the
desired count, and duplicates; :mod:`._scaling`), **roll out** (one step of surge and
retire; :mod:`._rolling`), **fill** (start vacant slots: first start, scale-up, restart
with back-off; :mod:`._filling`) and **trim history** (forget old exited tasks;
:mod:`._history`). Each phase hands back its actions and, when the caller wants words,
its own :class:`~._reports.Change`. All new simulators go into one bulk
:class:`~._actions.AddTasks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.planner import (
    _allocation,
    _changes,
    _fenceposts,
    _filling,
    _history,
    _holding,
    _progress,
    _rolling,
    _scaling,
    _status,
)
from controller.planner._actions import Action, AddTasks, CreateJob
from controller.planner._observed import ObservedPool
from controller.planner._reports import Change, Condition, Progress, SimulationStatus
from controller.planner._slots import empty
from controller.planner._view import SimulationView
from controller.spec import format_duration


@dataclass(frozen=True)
class SimulationPlan:
    """The actions, status, next wake-up and (if asked for) change words of one simulation."""

    actions: tuple[Action, ...]
    status: SimulationStatus
    requeue_after: datetime | None
    progress: Progress | None = None
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class Tuning:
    """What a simulation's pass takes beyond its view (see ``PlannerConfig``)."""

    now: datetime
    history: int
    settle: timedelta
    explain: bool


#: Wake just after a deadline, so it has passed when the pass runs.
TICK = timedelta(milliseconds=1)


def _verdict(
    view: SimulationView,
    facts: _progress.Facts,
    previous: Progress | None,
    now: datetime,
    waiting: str = "",
) -> tuple[Progress | None, tuple[Condition, ...], bool]:
    """Progress so far, the conditions, and whether the simulation is Stalled.

    ``waiting``: why its simulators wait for nodes still coming (:mod:`._allocation`);
    the progress clock then starts afresh, so the deadline counts from the wait's end.
    """
    deadline = view.sim.spec.rollout.progress_deadline
    progress = _progress.track(previous, facts, now)
    if waiting and progress is not None:
        progress = dataclasses.replace(progress, since=now)
        return progress, _progress.waiting(facts, waiting), False
    stalled = _progress.stalled(progress, deadline, now)
    return progress, _progress.conditions(facts, progress, deadline, now), stalled


def _wakeups(
    view: SimulationView,
    decisions: Mapping[int, _filling.Decision],
    progress: Progress | None,
    stalled: bool,
    tuning: Tuning,
) -> list[datetime]:
    """When this simulation needs a pass even if nothing else happens."""
    waits = [d.until for d in decisions.values() if isinstance(d, _filling.Wait)]
    if progress is None:
        return waits
    if not stalled:  # report Stalled on time
        waits.append(progress.since + view.sim.spec.rollout.progress_deadline + TICK)
    now, settle = tuning.now, tuning.settle
    return waits + [  # a simulator that settles may be progress
        t.started_at + settle
        for s in view.slots.values()
        for t in s.live
        if t.started_at is not None and t.started_at + settle > now
    ]


def _plan_held(
    view: SimulationView, held: _holding.Held, previous: Progress | None, tuning: Tuning
) -> SimulationPlan:
    """Hold: a status row, the unblocking action if any, and the progress clock."""
    spec, now = view.sim.spec, tuning.now
    messages = [m for m in held.messages if m]
    status = _status.simulation_status(view, {}, messages, now, suspended=spec.suspend)
    changes: list[Change] = []
    if tuning.explain:
        if view.job is not None and view.job.owned and not spec.suspend and not held.conflict:
            changes += _changes.reshaped(view)
        changes += [_changes.pruned_job(view.name, view.job) for _ in held.actions]
    plan = SimulationPlan(
        held.actions,
        dataclasses.replace(status, conditions=held.conditions),
        None,
        changes=tuple(changes),
    )
    if held.settled or spec.simulators == 0:
        return plan
    # Held back (no pool, job disabled or being replaced) while simulators are owed:
    # not converged, and Stalled once nothing moves for the progress deadline.
    facts = _progress.facts_of(
        view,
        {},
        _fenceposts.resolve(spec.rollout, spec.simulators).unavailable,
        now,
        tuning.settle,
        health=held.messages[-1],
    )
    progress, conditions, stalled = _verdict(
        view, dataclasses.replace(facts, converged=False), previous, now
    )
    assert progress is not None
    wake = None if stalled else progress.since + spec.rollout.progress_deadline + TICK
    return dataclasses.replace(
        plan,
        status=dataclasses.replace(plan.status, conditions=conditions),
        progress=progress,
        requeue_after=wake,
    )


def plan_simulation(
    view: SimulationView,
    tuning: Tuning,
    *,
    pool_defined: bool,
    note: str = "",
    progress: Progress | None = None,
    pool: ObservedPool | None = None,
    pool_refused: str = "",
) -> SimulationPlan:
    """Decide what one desired simulation needs this pass.

    Args:
        view: the simulation and its job, derived once for this pass.
        tuning: now, kept history, settle time, and whether to put changes in words.
        pool_defined: whether a spec defines the pool it names.
        note: why the spec is not fully in force (a failing file), for status.
        progress: this simulation's progress from the previous pass, if not converged.
        pool: the observed pool it names, if that exists.
        pool_refused: why that pool cannot be created, if it cannot (:mod:`._identities`).
    """
    held = _holding.hold(
        view.sim,
        view.job,
        pool_defined=pool_defined,
        note=note,
        pool=pool,
        pool_refused=pool_refused,
    )
    if held is not None:
        return _plan_held(view, held, progress, tuning)

    spec, now, job, explain = view.sim.spec, tuning.now, view.job, tuning.explain
    actions: list[Action] = []
    changes: list[Change] = []
    if job is None:
        actions.append(CreateJob(view.name, spec.pool))
        if explain:
            changes.append(_changes.created(view))
    elif explain and job.owned:
        changes += _changes.reshaped(view)

    # scale
    actions += _scaling.scale_down(view)
    actions += _scaling.stop_duplicates(view)

    # Every vacant slot gets its fill decision before the rollout step: a slot whose new
    # simulator finished for good (restartPolicy) must not keep its old one for longer
    # than the others' availability needs it.
    decisions: dict[int, _filling.Decision] = {
        index: _filling.fill(
            view.name,
            view.slots.get(index) or empty(index),
            view.revision,
            spec.restart_policy,
            spec.restart_backoff,
            now,
        )
        for index in view.vacant
    }
    # Only a slot whose new simulator *succeeded* for good is finished; a new template
    # that failed under restartPolicy Never must not cost the slot its old simulator.
    finished = frozenset(
        i for i, d in decisions.items() if isinstance(d, _filling.Done) and d.succeeded
    )

    # roll out
    limits = _fenceposts.resolve(spec.rollout, view.desired)
    rollout = _rolling.step(view, limits, now, tuning.settle, finished=finished)
    actions += rollout.retire
    if explain:
        changes += _changes.recycled(rollout.retire, view.name)

    # fill: vacant slots with nothing live start now; so do the slots the rollout pairs
    pairs = frozenset(rollout.pair_slots)
    new_tasks = tuple(
        d.task
        for i, d in decisions.items()
        if isinstance(d, _filling.Start)
        and (i in pairs or (s := view.slots.get(i)) is None or not s.live)
    )
    if new_tasks:
        actions.append(
            AddTasks(view.name, view.template, new_tasks, view.sim.workdir, view.sim.login)
        )
        if explain:
            changes += _changes.restarted(view, new_tasks)

    # trim history
    actions += _history.trim(view.name, view.slots, tuning.history)

    waiting = _allocation.waiting_for_nodes(view, pool, now)
    status, progress, waits = _report(
        view, decisions, limits.unavailable, progress, tuning, note, waiting, pool
    )
    return SimulationPlan(
        tuple(actions), status, min(waits, default=None), progress, tuple(changes)
    )


def _report(
    view: SimulationView,
    decisions: Mapping[int, _filling.Decision],
    unavailable: int,
    previous: Progress | None,
    tuning: Tuning,
    note: str,
    waiting: str,
    pool: ObservedPool | None,
) -> tuple[SimulationStatus, Progress | None, list[datetime]]:
    """The status row, the progress clock and the wake-ups of a simulation that ran."""
    now = tuning.now
    trouble = _status.problems(view, decisions, now, pool)
    rolling = _status.rollout_message(view)
    messages = [*trouble, rolling] if rolling else list(trouble)
    if waiting:
        messages.append(waiting)
    facts = _progress.facts_of(
        view, decisions, unavailable, now, tuning.settle, health=trouble[0] if trouble else ""
    )
    progress, conditions, stalled = _verdict(view, facts, previous, now, waiting)
    spec = view.sim.spec
    if stalled:
        deadline = spec.rollout.progress_deadline
        messages.insert(0, f"stalled: no progress for {format_duration(deadline)}")
    waits = _wakeups(view, decisions, progress, stalled, tuning)
    if note:
        messages.insert(0, note)
    if view.job is not None and view.job.pool != spec.pool:
        messages.insert(0, f"needs replacement: pool {view.job.pool} → {spec.pool}")
    status = _status.simulation_status(view, decisions, messages, now)
    return dataclasses.replace(status, conditions=conditions), progress, waits
