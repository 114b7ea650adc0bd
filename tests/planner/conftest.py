"""Builders for planner inputs: specs, desired state and observed tasks, as plain values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from controller.planner import (
    Desired,
    DesiredSimulation,
    ExitInfo,
    ExitReason,
    ObservedTask,
    SimulatorState,
    revision,
    task_id,
    template_of,
)
from controller.spec import PoolSpec, SimulationSpec
from controller.testing import EPOCH


def pool_spec(**fields: Any) -> PoolSpec:
    values: dict[str, Any] = {"vmSize": "standard_d4s_v5", "taskSlotsPerNode": 4}
    values.update(fields)
    return PoolSpec.model_validate(values)


def simulation(name: str = "cartpole", **fields: Any) -> DesiredSimulation:
    values: dict[str, Any] = {
        "pool": "sims",
        "simulators": 3,
        "image": "cartpole:1.0",
        "command": "sleep 1000",
    }
    values.update(fields)
    return DesiredSimulation(name, SimulationSpec.model_validate(values))


def desired(
    *sims: DesiredSimulation, pools: dict[str, PoolSpec] | None = None, prune_allowed: bool = True
) -> Desired:
    return Desired(
        pools=pools if pools is not None else {"sims": pool_spec(nodes={"dedicated": 2})},
        simulations={s.name: s for s in sims},
        prune_held_because="" if prune_allowed else "1 spec error(s) must be fixed first",
    )


def rev(sim: DesiredSimulation) -> str:
    return revision(template_of(sim))


def task(
    sim: DesiredSimulation,
    slot: int,
    *,
    attempt: int = 0,
    state: str = "running",
    revision_: str | None = None,
    age: float = 600,
    ran: float | None = None,
    exit_code: int | None = None,
    stopped: bool = False,
    restarts: int = 0,
    failures: int = 0,
    stopping: bool = False,
) -> ObservedTask:
    """A task created ``age`` seconds before EPOCH; exited ones ran for ``ran`` seconds."""
    r = revision_ or rev(sim)
    created = EPOCH - timedelta(seconds=age)
    started = created if state != "pending" else None
    exited = None
    info = None
    if state == "exited":
        exited = created + timedelta(seconds=ran if ran is not None else age)
        if stopped:
            info = ExitInfo(ExitReason.STOPPED)
        else:
            code = 1 if exit_code is None else exit_code
            info = ExitInfo(ExitReason.SUCCEEDED if code == 0 else ExitReason.FAILED, code)
    return ObservedTask(
        id=task_id(sim.name, slot, r, attempt),
        slot=slot,
        revision=r,
        attempt=attempt,
        state=SimulatorState(state),
        created_at=created,
        started_at=started,
        exited_at=exited,
        exit=info,
        restarts=restarts,
        failures=failures,
        stopping=stopping,
    )
