"""Status: what ``simfleet status`` and ``/status`` show, computed from one snapshot.

Like the Deployment controller's ``calculateStatus`` this only computes; the daemon
decides whether it changed. Messages are short, specific and free of secrets: exit codes,
Batch failure codes and stderr tails, never environment values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from controller.planner import _filling, _nodes, _rolling
from controller.planner._observed import ExitInfo, ObservedPool, SimulatorState
from controller.planner._reports import SimulationStatus, SimulatorStatus, SlotState
from controller.planner._slots import Slot, empty
from controller.planner._view import SimulationView

#: READY (:attr:`._view.SimulationView.ready`) counts running simulators at once; the
#: settle time only governs availability in rollouts and conditions (Kubernetes' ready
#: vs. available).


def describe_exit(info: ExitInfo) -> str:
    """One phrase for an exit: the Batch failure code, else the runtime's message."""
    if info.failure_code:
        return info.failure_code
    if info.message:
        return info.message
    if info.exit_code is not None:
        return f"exited with code {info.exit_code}"
    return str(info.reason)


def last_exit(slot: Slot) -> ExitInfo | None:
    """The newest exit recorded in a slot, any template."""
    for task in slot.history:
        if task.exit is not None:
            return task.exit
    return None


_STATES = {
    SimulatorState.PENDING: SlotState.PENDING,
    SimulatorState.RUNNING: SlotState.RUNNING,
}


def simulator_status(
    slot: Slot,
    revision: str,
    decision: _filling.Decision | None,
    now: datetime,
    settle: timedelta,
) -> SimulatorStatus:
    """The row of one slot: its live simulator, or why it has none."""
    serving = slot.new or slot.old  # live by construction
    if decision is None and serving is not None:  # the common case: it runs
        return SimulatorStatus(  # positional: this line runs once per simulator
            slot.index,
            serving.id,
            SlotState.STOPPING if serving.stopping else _STATES[serving.state],
            serving.restarts,
            serving.revision == revision and not serving.job,  # not on a replaced pool
            last_exit(slot) if len(slot.history) > 1 else serving.exit,
            serving.pid,
            serving.started_at,
            _rolling.available(serving, now, settle),
        )
    shown = serving or slot.latest
    live = shown is not None and shown.live
    state: SlotState
    if shown is not None and live:
        state = SlotState.STOPPING if shown.stopping else _STATES[shown.state]
    elif isinstance(decision, _filling.Wait):
        state = SlotState.WAITING
    elif isinstance(decision, _filling.Done):
        state = SlotState.SUCCEEDED if decision.succeeded else SlotState.FAILED
    else:
        state = SlotState.PENDING
    if isinstance(decision, _filling.Start) and not live:
        identifier, restarts, up_to_date = decision.task.id, decision.task.restarts, True
    elif shown is not None:
        identifier, restarts = shown.id, shown.restarts
        up_to_date = shown.revision == revision and not shown.job
    else:
        identifier, restarts, up_to_date = "", 0, True
    return SimulatorStatus(
        slot=slot.index,
        id=identifier,
        state=state,
        restarts=restarts,
        up_to_date=up_to_date,
        last_exit=last_exit(slot),
        pid=shown.pid if live and shown is not None else None,
        started_at=shown.started_at if live and shown is not None else None,
        available=live and _rolling.available(shown, now, settle),
    )


def problems(
    view: SimulationView,
    decisions: Mapping[int, _filling.Decision],
    now: datetime,
    pool: ObservedPool | None = None,
) -> list[str]:
    """Phrases about failing, exited, failed and waiting simulators, most urgent first;
    pending ones say why when the pool's nodes tell (``pool``: the observed pool, if any)."""
    messages = []
    desired = view.desired
    waiting = {i: d for i, d in decisions.items() if isinstance(d, _filling.Wait)}
    exits = {i: last_exit(view.slots[i]) for i in waiting}
    # A clean exit under ``Always`` waits out the same back-off (a simulator that ends at
    # once would otherwise restart in a tight loop), but it did not fail: it "exited".
    clean = {i: d for i, d in waiting.items() if (e := exits[i]) is not None and not e.is_failure}
    failing = {i: d for i, d in waiting.items() if i not in clean}
    if failing:
        reasons = Counter(describe_exit(info) for i in failing if (info := exits[i]) is not None)
        top = reasons.most_common(1)[0][0] if reasons else "exited"
        messages.append(
            f"{len(failing)}/{desired} simulators failing: {top} "
            f"(next restart in {_seconds(failing, now)}s)"
        )
    if clean:
        messages.append(
            f"{len(clean)}/{desired} simulators exited with code 0, "
            f"restarting in {_seconds(clean, now)}s"
        )
    failed = [i for i, d in decisions.items() if isinstance(d, _filling.Done) and not d.succeeded]
    if failed:
        messages.append(f"{len(failed)}/{desired} simulators failed and are not restarted")
    if view.pending:
        messages.append(_nodes.waiting_on(pool, view.pending) or _pending(view))
    return messages


def _pending(view: SimulationView) -> str:
    """Where the pending simulators are: on their node getting their container ready (the
    image pull takes minutes the first time), or still waiting for a free slot."""
    waiting = view.pending - view.starting
    phrases = []
    if view.starting:
        phrases.append(f"{view.starting} starting on their node (image pull, container start)")
    if waiting:
        phrases.append(f"{waiting} waiting for a free slot on the pool")
    return ", ".join(phrases)


def _seconds(waiting: Mapping[int, _filling.Wait], now: datetime) -> int:
    """Whole seconds until the soonest of ``waiting`` restarts (0 when due)."""
    soonest = min(d.until for d in waiting.values())
    return max(0, round((soonest - now).total_seconds()))


def rollout_message(view: SimulationView) -> str:
    """``rolling out: 3/8 on the new template`` while old simulators remain, else "" (and
    for a move to a replacement pool alone, which says "moving to pool …" instead)."""
    if not view.olds or all(s.old is not None and s.old.job for s in view.olds):
        return ""
    return f"rolling out: {view.updated}/{view.desired} on the new template"


def simulation_status(
    view: SimulationView,
    decisions: Mapping[int, _filling.Decision],
    messages: Sequence[str],
    now: datetime,
    settle: timedelta,
    *,
    suspended: bool = False,
) -> SimulationStatus:
    """The status row of one simulation, with a row per slot (``settle``: how long a
    simulator runs before it is available)."""
    slots, desired, revision = view.slots, view.desired, view.revision
    if not view.vacant and not view.beyond:  # the common case: slots 0 … desired-1, all held
        rows = tuple(simulator_status(slot, revision, None, now, settle) for slot in view.active)
    else:
        shown = sorted(set(range(desired)) | {s.index for s in view.beyond if s.live})
        rows = tuple(
            simulator_status(slots.get(i) or empty(i), revision, decisions.get(i), now, settle)
            for i in shown
        )
    spec = view.sim.spec
    return SimulationStatus(
        name=view.name,
        pool=spec.pool,
        image=spec.image,
        desired=desired,
        ready=view.ready,
        up_to_date=view.updated,
        restarts=sum(row.restarts for row in rows if row.slot < desired),
        message="; ".join(messages),
        revision=revision,
        created_at=view.job.created_at if view.job is not None else None,
        suspended=suspended,
        simulators=rows,
    )
