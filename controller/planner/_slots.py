"""Group a job's tasks into slots: what holds each slot now, and what came before.

Each slot ``0 … simulators-1`` should hold exactly one live simulator. During a rollout a
slot may hold one old-template and one new-template simulator at once (the surge); any
further live task in a slot is a duplicate and is stopped. Everything else the planner
decides starts from this view, so it is built once per simulation per pass
(:mod:`._view`) and the common case — one task in a slot — takes the short way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from controller.planner._observed import ObservedTask, SimulatorState

_EXITED = SimulatorState.EXITED
_RUNNING = SimulatorState.RUNNING


def _newest_first(task: ObservedTask) -> tuple[object, ...]:
    return (task.created_at, task.attempt, task.id)


@dataclass(slots=True, eq=False)
class Slot:
    """One slot of a simulation; a pass builds one per simulator and never changes it.

    Not frozen, since a frozen dataclass costs a ``__setattr__`` call per field and a
    pass builds 100,000 of these; compared by identity, as each is unique in its pass.

    Attributes:
        index: the slot number.
        new: the live simulator on the current template, if any.
        old: the live simulator on an older template, if any (rollouts only).
        duplicates: further live simulators in this slot; they must go.
        history: every task of the slot, newest first (live and exited).
        live: the slot's live simulators, ``new`` then ``old``, excluding duplicates.
    """

    index: int
    new: ObservedTask | None
    old: ObservedTask | None
    duplicates: tuple[ObservedTask, ...]
    history: tuple[ObservedTask, ...]
    live: tuple[ObservedTask, ...]

    @property
    def latest(self) -> ObservedTask | None:
        """The most recently created task of the slot."""
        return self.history[0] if self.history else None

    def next_attempt(self, revision: str) -> int:
        """The attempt number a new task at ``revision`` gets: one past the last one seen."""
        attempts = [t.attempt for t in self.history if t.revision == revision]
        return max(attempts) + 1 if attempts else 0


def _not_serving(task: ObservedTask) -> bool:
    return not (task.state is _RUNNING and not task.stopping)


def _crowded(
    index: int, members: list[ObservedTask], revision: str, recycle_from: datetime | None
) -> Slot:
    """A slot with more than one task: sort them out (see :func:`group`)."""
    history = tuple(sorted(members, key=_newest_first, reverse=True))
    new = [
        t
        for t in history
        if t.state is not _EXITED
        and t.revision == revision
        and not t.job
        and not (recycle_from is not None and t.state is _RUNNING and t.created_at <= recycle_from)
    ]
    old = sorted(  # stable: among equals the newest stays first
        (t for t in history if t.state is not _EXITED and t not in new), key=_not_serving
    )
    kept: tuple[ObservedTask, ...] = (new[0],) if new else ()
    kept += (old[0],) if old else ()
    return Slot(
        index,
        new[0] if new else None,
        old[0] if old else None,
        tuple(new[1:] + old[1:]),
        history,
        kept,
    )


def group(
    tasks: Iterable[ObservedTask], revision: str, recycle_from: datetime | None = None
) -> Mapping[int, Slot]:
    """Sort tasks into slots against the current template ``revision``, by slot number.

    A running simulator on the current template created at or before ``recycle_from``
    ran its ``maxLifetime`` (see :mod:`._lifetime`) and counts as old, so the rollout
    machinery recycles it. In a slot, the newest live current simulator is kept as
    ``new``; of the old ones the one still serving (running, not stopping) is kept, else
    the newest — an edit during a rollout leaves a slot with two old templates, and the
    one that serves must be the one that stays. The remaining live ones are duplicates.
    A task in another job of its simulation (``ObservedTask.job``: its pool is being
    replaced) is old whatever its revision, so the rollout moves it.
    """
    first: dict[int, ObservedTask] = {}  # the common case: one task per slot
    crowds: dict[int, list[ObservedTask]] = {}
    for task in tasks:
        index = task.slot
        if index in first:
            crowds.setdefault(index, [first[index]]).append(task)
        else:
            first[index] = task
    slots = {}
    for index in sorted(first):
        if index in crowds:
            slots[index] = _crowded(index, crowds[index], revision, recycle_from)
            continue
        task = first[index]
        single = (task,)
        if task.state is _EXITED:
            slots[index] = Slot(index, None, None, (), single, ())
        elif (
            task.revision == revision
            and not task.job
            and not (
                recycle_from is not None
                and task.state is _RUNNING
                and task.created_at <= recycle_from
            )
        ):
            slots[index] = Slot(index, task, None, (), single, single)
        else:
            slots[index] = Slot(index, None, task, (), single, single)
    return slots


def empty(index: int) -> Slot:
    """A slot nothing has ever run in."""
    return Slot(index, None, None, (), (), ())
