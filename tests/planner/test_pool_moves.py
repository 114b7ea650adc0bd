"""A simulation whose spec names another pool moves there, step by step: table rows.

``cartpole`` (3 simulators, ``maxSurge`` 25% = 1, ``maxUnavailable`` 0) runs in its job
``cartpole`` on pool ``sims``; its spec now says ``pool: sims2``. A Batch job cannot
change pools while its tasks run, so it gets a job on ``sims2`` (a derived id: the old job
holds the simulation's name), each slot gets a simulator there before its old one
retires, and the emptied old job is deleted. The old pool stays while anything of the
fleet runs on it, sized for what does, and is pruned only when no spec names it.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from controller.planner import (
    DeleteJob,
    JobState,
    Observed,
    ObservedJob,
    ObservedPool,
    ObservedTask,
    PoolConfig,
    PoolState,
    plan,
)
from controller.spec import PoolSpec
from controller.testing import EPOCH

from .conftest import desired, pool_spec, simulation, task
from .test_plan import summary

CART = simulation()  # on sims: what it ran as
MOVED = simulation(pool="sims2")  # what its spec says now
#: Its job on sims2: deterministic, so a controller restarted mid-move finds it again.
NEW_JOB = "cartpole-pa2a4dec450"
FIXED = pool_spec(nodes={"dedicated": 2})
BOTH = {"sims": FIXED, "sims2": FIXED}


def pool(name: str, spec: PoolSpec = FIXED, dedicated: int = 2) -> ObservedPool:
    config = PoolConfig.of(spec)
    return ObservedPool(name, True, config, PoolState.STEADY, dedicated, 0, dedicated, 0)


def old_job(*tasks: ObservedTask, state: JobState = JobState.ACTIVE) -> ObservedJob:
    return ObservedJob("cartpole", "sims", True, state, tasks)


def new_job(*tasks: ObservedTask) -> ObservedJob:
    moved = tuple(dataclasses.replace(t, id=f"{NEW_JOB}-s{t.slot}-a1") for t in tasks)
    return ObservedJob(NEW_JOB, "sims2", True, tasks=moved, simulation="cartpole")


def seen(*jobs: ObservedJob, pools: tuple[ObservedPool, ...] = ()) -> Observed:
    pools = pools or (pool("sims"), pool("sims2"))
    return Observed(pools={p.name: p for p in pools}, jobs={j.name: j for j in jobs})


RUNNING = [task(CART, s) for s in range(3)]
EXITED = [task(CART, s, state="exited", stopped=True) for s in range(3)]


def row(
    name: str, sim: Any, pools: dict[str, PoolSpec], have: Observed, expected: list[Any]
) -> Any:
    return pytest.param(sim, pools, have, expected, id=name)


ROWS = [
    row(
        "the spec names another pool: a job there, a derived id, one surge",
        MOVED,
        BOTH,
        seen(old_job(*RUNNING)),
        [("create-job", NEW_JOB, "sims2"), ("add", NEW_JOB, (0,))],
    ),
    row(
        "the new pool does not exist yet: it is created first, in the same pass",
        MOVED,
        BOTH,
        seen(old_job(*RUNNING), pools=(pool("sims"),)),
        [("create-pool", "sims2", 2, 0), ("create-job", NEW_JOB, "sims2"), ("add", NEW_JOB, (0,))],
    ),
    row(
        "after kill -9 the job exists, its tasks not yet: the same ids",
        MOVED,
        BOTH,
        seen(old_job(*RUNNING), new_job()),
        [("add", NEW_JOB, (0,))],
    ),
    row(
        "the new simulator serves: its old one retires (maxUnavailable 0)",
        MOVED,
        BOTH,
        seen(old_job(*RUNNING), new_job(task(CART, 0))),
        [("stop", "cartpole", 0, "pool-replacement")],
    ),
    row(
        "the old one exited: the next slot moves",
        MOVED,
        BOTH,
        seen(old_job(EXITED[0], *RUNNING[1:]), new_job(task(CART, 0))),
        [("add", NEW_JOB, (1,))],
    ),
    row(
        "every slot moved: the emptied old job is deleted",
        MOVED,
        BOTH,
        seen(old_job(*EXITED), new_job(*RUNNING)),
        [("delete-job", "cartpole")],
    ),
    row(
        "moved: the old pool, still in the specs, stays; the job keeps its derived id",
        MOVED,
        BOTH,
        seen(new_job(*RUNNING)),
        [],
    ),
    row(
        "renamed pool: the old one, in no spec, stays while the simulation runs on it",
        MOVED,
        {"sims2": FIXED},
        seen(old_job(*RUNNING)),
        [("create-job", NEW_JOB, "sims2"), ("add", NEW_JOB, (0,))],
    ),
    row(
        "renamed pool: once nothing runs on the old one, it is pruned",
        MOVED,
        {"sims2": FIXED},
        seen(new_job(*RUNNING)),
        [("delete-pool", "sims")],
    ),
    row(
        "moved back before it finished: the job on the old pool is current again",
        CART,
        BOTH,
        seen(old_job(EXITED[0], *RUNNING[1:]), new_job(task(CART, 0))),
        [("add", "cartpole", (0,))],
    ),
]


@pytest.mark.parametrize(("sim", "pools", "have", "expected"), ROWS)
def test_pool_move_step(
    sim: Any, pools: dict[str, PoolSpec], have: Observed, expected: list[Any]
) -> None:
    result = plan(desired(sim, pools=pools), have, EPOCH)
    assert [summary(a) for a in result.actions] == expected


def test_status_says_it_moves_and_plan_names_the_emptied_job() -> None:
    moving = plan(desired(MOVED, pools=BOTH), seen(old_job(*RUNNING)), EPOCH)
    (status,) = moving.status.simulations
    assert status.message.startswith("moving to pool sims2: 3 simulator(s) still on the old pool")
    assert "needs replacement" not in status.message
    done = plan(desired(MOVED, pools=BOTH), seen(old_job(*EXITED), new_job(*RUNNING)), EPOCH)
    (delete,) = done.actions
    assert isinstance(delete, DeleteJob)
    assert delete.moved == "sims2"
    assert delete.describe() == "delete job cartpole: its simulators moved to pool sims2"


def test_the_old_auto_pool_is_sized_for_what_still_runs_on_it_not_for_the_simulation() -> None:
    """Its demand is the simulators still there, not the simulation's count plus surge
    (which belongs to the pool its spec names): it must not grow while they leave."""
    auto = pool_spec(taskSlotsPerNode=1, nodes={"dedicated": "auto"})
    old = pool("sims", auto, dedicated=3)
    result = plan(
        desired(MOVED, pools={"sims": auto, "sims2": auto}),
        seen(old_job(*RUNNING), pools=(old, pool("sims2", auto, dedicated=0))),
        EPOCH,
    )
    resizes = [summary(a) for a in result.actions if summary(a)[0] in ("resize", "shrink")]
    assert resizes == [("resize", "sims2", 4, 0)]  # 3 simulators + 1 of surge, on sims2 only

    emptied = plan(
        desired(MOVED, pools={"sims": auto, "sims2": auto}),
        seen(new_job(*RUNNING), pools=(old, pool("sims2", auto, dedicated=4))),
        EPOCH,
    )
    assert [summary(a) for a in emptied.actions] == []  # the shrink waits for its delay
    assert emptied.requeue_after == EPOCH + timedelta(minutes=10)
