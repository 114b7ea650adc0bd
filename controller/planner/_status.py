"""Status: what ``simfleet status`` and ``/status`` show, computed from one snapshot.

Like the Deployment controller's ``calculateStatus`` this only computes; the daemon
decides whether it changed. Messages are short, specific and free of secrets: exit codes,
Batch failure codes and stderr tails, never environment values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from controller.planner import _restarts
from controller.planner._rolling import available
from controller.planner._slots import Slot, empty
from controller.planner._types import (
    ExitInfo,
    ObservedJob,
    SimulationStatus,
    SimulatorState,
    SimulatorStatus,
)

#: READY counts running simulators at once; the settle time only governs availability
#: in rollouts and conditions (Kubernetes' ready vs. available).
READY_AT_ONCE = timedelta(0)


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


def simulator_status(
    slot: Slot, revision: str, decision: _restarts.Decision | None
) -> SimulatorStatus:
    """The row of one slot: its live simulator, or why it has none."""
    shown = slot.new or slot.old or slot.latest
    state: str
    if shown is not None and shown.live:
        state = "stopping" if shown.stopping else str(shown.state)
    elif isinstance(decision, _restarts.Wait):
        state = "waiting"
    elif isinstance(decision, _restarts.Done):
        state = "succeeded" if decision.succeeded else "failed"
    else:
        state = str(SimulatorState.PENDING)
    if isinstance(decision, _restarts.Start) and (shown is None or not shown.live):
        identifier, restarts, up_to_date = decision.task.id, decision.task.restarts, True
    elif shown is not None:
        identifier, restarts = shown.id, shown.restarts
        up_to_date = shown.revision == revision
    else:
        identifier, restarts, up_to_date = "", 0, True
    live = shown is not None and shown.live
    return SimulatorStatus(
        slot=slot.index,
        id=identifier,
        state=state,
        restarts=restarts,
        up_to_date=up_to_date,
        last_exit=last_exit(slot),
        pid=shown.pid if live and shown is not None else None,
        started_at=shown.started_at if live and shown is not None else None,
    )


def problems(
    slots: Mapping[int, Slot],
    desired: int,
    decisions: Mapping[int, _restarts.Decision],
    now: datetime,
) -> list[str]:
    """Phrases about failing, failed and waiting simulators, most urgent first."""
    messages = []
    waiting = {i: d for i, d in decisions.items() if isinstance(d, _restarts.Wait)}
    if waiting:
        reasons = Counter(
            describe_exit(info) for i in waiting if (info := last_exit(slots[i])) is not None
        )
        top = reasons.most_common(1)[0][0] if reasons else "exited"
        soonest = min(d.until for d in waiting.values())
        seconds = max(0, round((soonest - now).total_seconds()))
        messages.append(
            f"{len(waiting)}/{desired} simulators failing: {top} (next restart in {seconds}s)"
        )
    failed = [i for i, d in decisions.items() if isinstance(d, _restarts.Done) and not d.succeeded]
    if failed:
        messages.append(f"{len(failed)}/{desired} simulators failed and are not restarted")
    pending = sum(
        1
        for i, s in slots.items()
        if i < desired
        for t in s.live
        if t.state is SimulatorState.PENDING
    )
    if pending:
        messages.append(f"{pending} waiting for a free slot on the pool")
    return messages


def rollout_message(slots: Mapping[int, Slot], desired: int) -> str:
    """``rolling out: 3/8 on the new template`` while old simulators remain, else ""."""
    if not any(s.old is not None for i, s in slots.items() if i < desired):
        return ""
    current = sum(1 for i, s in slots.items() if i < desired and s.new is not None)
    return f"rolling out: {current}/{desired} on the new template"


def simulation_status(
    name: str,
    pool: str,
    image: str,
    revision: str,
    desired: int,
    job: ObservedJob | None,
    slots: Mapping[int, Slot],
    decisions: Mapping[int, _restarts.Decision],
    messages: Sequence[str],
    now: datetime,
    *,
    suspended: bool = False,
) -> SimulationStatus:
    """The status row of one simulation, with a row per slot."""
    shown = sorted(set(range(desired)) | {i for i, s in slots.items() if s.live})
    rows = tuple(
        simulator_status(slots.get(i) or empty(i), revision, decisions.get(i)) for i in shown
    )
    live = [t for s in slots.values() for t in (*s.live, *s.duplicates)]
    return SimulationStatus(
        name=name,
        pool=pool,
        image=image,
        desired=desired,
        ready=sum(1 for t in live if available(t, now, READY_AT_ONCE)),
        up_to_date=sum(1 for i, s in slots.items() if i < desired and s.new is not None),
        restarts=sum(row.restarts for row in rows if row.slot < desired),
        message="; ".join(messages),
        revision=revision,
        created_at=job.created_at if job is not None else None,
        suspended=suspended,
        simulators=rows,
    )
