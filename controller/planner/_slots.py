"""Group a job's tasks into slots: what holds each slot now, and what came before.

Each slot ``0 … simulators-1`` should hold exactly one live simulator. During a rollout a
slot may hold one old-template and one new-template simulator at once (the surge); any
further live task in a slot is a duplicate and is stopped. Everything else the planner
decides starts from this view.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from controller.planner._types import ObservedTask, SimulatorState


def _newest_first(task: ObservedTask) -> tuple[object, ...]:
    return (task.created_at, task.attempt, task.id)


@dataclass(frozen=True)
class Slot:
    """One slot of a simulation.

    Attributes:
        index: the slot number.
        new: the live simulator on the current template, if any.
        old: the live simulator on an older template, if any (rollouts only).
        duplicates: further live simulators in this slot; they must go.
        history: every task of the slot, newest first (live and exited).
    """

    index: int
    new: ObservedTask | None
    old: ObservedTask | None
    duplicates: tuple[ObservedTask, ...]
    history: tuple[ObservedTask, ...]

    @property
    def latest(self) -> ObservedTask | None:
        """The most recently created task of the slot."""
        return self.history[0] if self.history else None

    @property
    def live(self) -> tuple[ObservedTask, ...]:
        """The slot's live simulators, excluding duplicates."""
        return tuple(t for t in (self.new, self.old) if t is not None)

    def next_attempt(self, revision: str) -> int:
        """The attempt number a new task at ``revision`` gets: one past the last one seen."""
        attempts = [t.attempt for t in self.history if t.revision == revision]
        return max(attempts) + 1 if attempts else 0


def _never(_: ObservedTask) -> bool:
    return False


def group(
    tasks: Iterable[ObservedTask],
    revision: str,
    expired: Callable[[ObservedTask], bool] = _never,
) -> Mapping[int, Slot]:
    """Sort tasks into slots against the current template ``revision``.

    A simulator on the current template that ``expired`` (ran its ``maxLifetime``) counts
    as old, so the rollout machinery recycles it. In a slot, the newest live current
    simulator is kept as ``new``; of the old ones the one still serving (running, not
    stopping) is kept, else the newest — an edit during a rollout leaves a slot with two
    old templates, and the one that serves must be the one that stays. The remaining
    live ones are duplicates.
    """
    by_slot: dict[int, list[ObservedTask]] = defaultdict(list)
    for task in tasks:
        by_slot[task.slot].append(task)
    slots = {}
    for index, members in sorted(by_slot.items()):
        history = tuple(sorted(members, key=_newest_first, reverse=True))
        new = [t for t in history if t.live and t.revision == revision and not expired(t)]
        old = sorted(  # stable: among equals the newest stays first
            (t for t in history if t.live and t not in new),
            key=lambda t: not (t.state is SimulatorState.RUNNING and not t.stopping),
        )
        slots[index] = Slot(
            index=index,
            new=new[0] if new else None,
            old=old[0] if old else None,
            duplicates=tuple(new[1:] + old[1:]),
            history=history,
        )
    return slots


def empty(index: int) -> Slot:
    """A slot nothing has ever run in."""
    return Slot(index=index, new=None, old=None, duplicates=(), history=())
