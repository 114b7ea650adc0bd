"""Rolling updates: surge new-template simulators up, then retire old ones, within limits.

This is the Deployment controller's ``rolloutRolling`` in slot form. A slot on the old
template gets a new-template simulator *beside* the old one (a pair) while fewer than
``surge`` pairs exist; an old simulator is retired while the simulators still available
after retiring it are at least ``desired - unavailable``. Each pass takes the step the
limits allow now and returns; the next pass continues from what the backend shows, so a
rollout interrupted by an edit or a restart simply goes on.

Worked numbers: 8 desired, ``maxSurge: 25%`` (2), ``maxUnavailable: 0``. Pass 1: slots 0
and 1 get new simulators (10 live). Once both run, 10 are available and 8 are needed, so
the old ones of slots 0 and 1 retire. Next pass: slots 2 and 3 get pairs, and so on. If the
new image keeps crashing, the new simulators never become available, nothing old
retires, and the fleet keeps serving on the old template.

Retiring order (``reconcileOldReplicaSets``): old simulators that do not serve go first,
but only as far as ``live - (desired - unavailable) - new ones not serving yet`` allows;
then serving ones while the rest still cover ``desired - unavailable``, those whose slot's
new simulator serves first (lowest slot first), then the others, highest slot first.

A *finished* slot (its new simulator succeeded for good under ``OnFailure`` or ``Never``)
needs no simulator, so ``desired`` counts it out, and its old simulator is first in both
orders — but under the same limits as every other: it may be the only one serving while
the other slots' new simulators back off. 2 desired, ``maxUnavailable: 0``, slot 0
finished beside its serving old simulator, slot 1's new one crashed: 1 must serve and 1
does, so the old one stays until slot 1 serves again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.planner._actions import StopReason, StopTask
from controller.planner._fenceposts import Fenceposts
from controller.planner._observed import ObservedTask, SimulatorState
from controller.planner._slots import Slot
from controller.planner._view import SimulationView


def available(task: ObservedTask | None, now: datetime, settle: timedelta) -> bool:
    """Running for at least ``settle`` and not being stopped: a simulator that serves."""
    return (
        task is not None
        and not task.stopping
        and task.state is SimulatorState.RUNNING
        and task.started_at is not None
        and task.started_at + settle <= now
    )


def _reason(old: ObservedTask, revision: str) -> StopReason:
    """Why an old simulator retires: its pool is replaced, its template or its lifetime."""
    if old.job:
        return StopReason.REPLACEMENT
    return StopReason.RECYCLE if old.revision == revision else StopReason.ROLLOUT


@dataclass(frozen=True)
class RollingStep:
    """What one pass of a rollout does: the old simulators to retire, the slots to pair."""

    retire: tuple[StopTask, ...]
    pair_slots: tuple[int, ...]


def step(
    view: SimulationView,
    limits: Fenceposts,
    now: datetime,
    settle: timedelta,
    finished: frozenset[int] = frozenset(),
) -> RollingStep:
    """One step of a rolling update over slots ``0 … desired-1`` towards the view's revision.

    Old simulators on the current revision are being recycled (``maxLifetime``).

    ``finished`` slots ran their new-template simulator to a successful end the restart
    policy accepts (``OnFailure`` or ``Never`` after exit 0); their old simulators retire
    first, as far as availability allows, and they are never paired again.
    """
    olds = view.olds
    if not olds:  # the common case: nothing to roll out
        return RollingStep((), ())
    active, desired, revision, job = view.active, view.desired, view.revision, view.job_id
    minimum = desired - len(finished) - limits.unavailable
    live = sum(len(s.live) for s in active)
    new_unavailable = sum(
        1 for s in active if s.new is not None and not available(s.new, now, settle)
    )
    # Kubernetes' reconcileOldReplicaSets: never shrink below what must stay available,
    # counting new simulators that do not serve yet as missing. 4 desired, 0 unavailable,
    # 4 old just started (not settled) and no new: 4 - 4 - 0 = 0, nothing may go.
    scale_down = live - minimum - new_unavailable
    done = [s for s in olds if s.index in finished]  # the slot needs no simulator any more
    retiring: list[Slot] = []
    for slot in done + [s for s in olds if s.index not in finished]:
        if scale_down <= 0:  # unhealthy old simulators first: they cost no availability
            break
        if not available(slot.old, now, settle):
            retiring.append(slot)
            scale_down -= 1
    budget = sum(available(t, now, settle) for s in active for t in s.live) - minimum
    gone = {s.index for s in retiring}
    finishing = [s for s in done if s.index not in gone]
    covered = [s for s in olds if s.index not in gone and available(s.new, now, settle)]
    exposed = [  # a finished slot's new simulator exited, so it is never covered
        s
        for s in reversed(olds)
        if s.index not in gone and s.index not in finished and not available(s.new, now, settle)
    ]
    for slot in finishing + covered + exposed:  # then serving ones, while enough others serve
        if budget <= 0:
            break
        retiring.append(slot)
        budget -= 1
    retire = tuple(
        StopTask(
            (old := s.old.job or job),
            s.old.id,
            s.index,
            _reason(s.old, revision),
            view.mark(old),
        )
        for s in retiring
        if s.old is not None and not s.old.stopping
    )
    # A pair counts until its old simulator has really exited: retiring it and pairing
    # the next slot in the same pass would briefly run desired + maxSurge + 1. So does
    # every other simulator beyond one per slot, such as a duplicate still being stopped
    # (an edit in mid-rollout leaves a slot with two old templates): 8 desired, surge 2,
    # rollouts A → B → C, slots 0 and 1 hold A and a stopping B: no C may surge yet.
    retired = {s.index for s in retiring}
    surplus = sum(max(0, len(s.live) + len(s.duplicates) - 1) for s in active)
    pair_slots = []
    for slot in olds:
        if surplus >= limits.surge:
            break
        if (
            slot.new is None
            and not slot.duplicates
            and slot.index not in retired
            and slot.index not in finished
        ):
            pair_slots.append(slot.index)
            surplus += 1
    return RollingStep(retire, tuple(pair_slots))
