"""Pool replacement as a rollout, step by step: table rows of what each pass does.

A pool's vmSize changes under a running simulation of 3 (``maxSurge`` 25% = 1,
``maxUnavailable`` 0): a new pool and job appear, each slot gets a simulator there
before its old one retires, the emptied job and then the emptied pool are deleted.
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
    RecordLogin,
    plan,
)
from controller.planner._replacement import job_id, pool_id
from controller.spec import PoolSpec
from controller.testing import EPOCH

from .conftest import desired, pool_spec, simulation, task
from .test_plan import summary

CART = simulation()
OLD_SPEC = pool_spec(nodes={"dedicated": 2})
NEW_SPEC = pool_spec(vmSize="standard_d8s_v5", nodes={"dedicated": 2})
HELD_SPEC = pool_spec(vmSize="standard_d8s_v5", nodes={"dedicated": 2}, replacement="Hold")
NEW_POOL = pool_id("sims", PoolConfig.of(NEW_SPEC))
NEW_JOB = job_id("cartpole", NEW_POOL, "sims")


def pool(name: str, spec: PoolSpec, state: PoolState = PoolState.STEADY) -> ObservedPool:
    mark = "" if name == "sims" else "sims"
    return ObservedPool(name, True, PoolConfig.of(spec), state, 2, 0, 2, 0, spec_pool=mark)


OLD_POOL = pool("sims", OLD_SPEC)
NEW = pool(NEW_POOL, NEW_SPEC)


def old_job(*tasks: ObservedTask, state: JobState = JobState.ACTIVE) -> ObservedJob:
    return ObservedJob("cartpole", "sims", True, state, tasks)


def new_job(*tasks: ObservedTask) -> ObservedJob:
    moved = tuple(dataclasses.replace(t, id=f"{NEW_JOB}-s{t.slot}-a1") for t in tasks)
    return ObservedJob(NEW_JOB, NEW_POOL, True, tasks=moved, simulation="cartpole")


def seen(*jobs: ObservedJob, pools: tuple[ObservedPool, ...] = (OLD_POOL, NEW)) -> Observed:
    return Observed(pools={p.name: p for p in pools}, jobs={j.name: j for j in jobs})


RUNNING = [task(CART, s) for s in range(3)]
EXITED = [task(CART, s, state="exited", stopped=True) for s in range(3)]


def row(name: str, pool: PoolSpec, have: Observed, expected: list[tuple[Any, ...]]) -> Any:
    return pytest.param(pool, have, expected, id=name)


ROWS = [
    row(
        "a changed vmSize: new pool beside the old, the simulation's job there, one surge",
        NEW_SPEC,
        seen(old_job(*RUNNING), pools=(OLD_POOL,)),
        [
            ("create-pool", NEW_POOL, 2, 0),
            ("create-job", NEW_JOB, NEW_POOL),
            ("add", NEW_JOB, (0,)),
        ],
    ),
    row(
        "after kill -9 the pool exists, the job not yet: the same job and task ids",
        NEW_SPEC,
        seen(old_job(*RUNNING)),
        [("create-job", NEW_JOB, NEW_POOL), ("add", NEW_JOB, (0,))],
    ),
    row(
        "the new simulator is pending: nothing retires, nothing more surges",
        NEW_SPEC,
        seen(old_job(*RUNNING), new_job(task(CART, 0, state="pending"))),
        [],
    ),
    row(
        "the new simulator serves: its old one retires (maxUnavailable 0)",
        NEW_SPEC,
        seen(old_job(*RUNNING), new_job(task(CART, 0))),
        [("stop", "cartpole", 0, "pool-replacement")],
    ),
    row(
        "the old one exited: the next slot moves",
        NEW_SPEC,
        seen(old_job(EXITED[0], *RUNNING[1:]), new_job(task(CART, 0))),
        [("add", NEW_JOB, (1,))],
    ),
    row(
        "every slot moved: the emptied old job is deleted, the old pool waits for it",
        NEW_SPEC,
        seen(old_job(*EXITED), new_job(*RUNNING)),
        [("delete-job", "cartpole")],
    ),
    row(
        "the old job is being deleted: the old pool still waits",
        NEW_SPEC,
        seen(old_job(state=JobState.DELETING), new_job(*RUNNING)),
        [],
    ),
    row(
        "nothing of the fleet is left on the old pool: it is deleted",
        NEW_SPEC,
        seen(new_job(*RUNNING)),
        [("delete-pool", "sims")],
    ),
    row(
        "converged on the new pool: nothing to do",
        NEW_SPEC,
        seen(new_job(*RUNNING), pools=(NEW,)),
        [],
    ),
    row(
        "replacement: Hold keeps the old pool and moves nothing",
        HELD_SPEC,
        seen(old_job(*RUNNING), pools=(OLD_POOL,)),
        [],
    ),
    row(
        "changed back in mid-move: the matching old pool is current again",
        OLD_SPEC,
        seen(old_job(*EXITED[:1], *RUNNING[1:]), new_job(task(CART, 0))),
        [("add", "cartpole", (0,))],
    ),
]


@pytest.mark.parametrize(("pool_spec_", "have", "expected"), ROWS)
def test_replacement_step(
    pool_spec_: PoolSpec, have: Observed, expected: list[tuple[Any, ...]]
) -> None:
    result = plan(desired(CART, pools={"sims": pool_spec_}), have, EPOCH)
    assert [summary(a) for a in result.actions] == expected


def test_new_tasks_are_named_after_their_job() -> None:
    result = plan(
        desired(CART, pools={"sims": NEW_SPEC}), seen(old_job(*RUNNING), pools=(OLD_POOL,)), EPOCH
    )
    added = [t.id for a in result.actions if hasattr(a, "tasks") for t in a.tasks]
    assert added
    assert all(i.startswith(f"{NEW_JOB}-s") for i in added)


def test_a_scoped_pass_deletes_no_old_pool() -> None:
    result = plan(
        desired(CART, pools={"sims": NEW_SPEC}),
        seen(new_job(*RUNNING)),
        EPOCH,
        scope=frozenset({"cartpole"}),
    )
    assert [summary(a) for a in result.actions] == []


def test_the_old_job_of_a_desired_simulation_is_never_pruned() -> None:
    result = plan(
        desired(CART, pools={"sims": NEW_SPEC}),
        seen(old_job(*EXITED), new_job(*RUNNING)),
        EPOCH,
    )
    deletes = [a for a in result.actions if isinstance(a, DeleteJob)]
    assert [d.moved for d in deletes] == [NEW_POOL]


def test_auto_sizing_sizes_the_new_pool_and_leaves_the_old_one() -> None:
    auto = pool_spec(vmSize="standard_d8s_v5", taskSlotsPerNode=1, nodes={"dedicated": "auto"})
    old = dataclasses.replace(OLD_POOL, target_dedicated=1, current_dedicated=1)
    new = dataclasses.replace(
        pool(pool_id("sims", PoolConfig.of(auto)), auto), target_dedicated=0, current_dedicated=0
    )
    moving = ObservedJob(
        job_id("cartpole", new.name, "sims"), new.name, True, simulation="cartpole"
    )
    result = plan(
        desired(CART, pools={"sims": auto}),
        seen(old_job(*RUNNING), moving, pools=(old, new)),
        EPOCH,
    )
    resizes = [summary(a) for a in result.actions if summary(a)[0] == "resize"]
    assert resizes == [("resize", new.name, 4, 0)]  # 3 simulators + 1 of surge room


def test_plan_and_status_say_it_is_a_replacement() -> None:
    result = plan(
        desired(CART, pools={"sims": NEW_SPEC}), seen(old_job(*RUNNING), pools=(OLD_POOL,)), EPOCH
    )
    words = [str(c) for c in result.changes if c.verb == "replace"]
    assert words == [
        f"replace pool sims: replaced by pool {NEW_POOL}: 3 simulator(s) still on it",
        f"replace pool {NEW_POOL}: replaces sims (vmSize standard_d4s_v5 → standard_d8s_v5):"
        f" create pool {NEW_POOL}, move 3 simulator(s), delete old pool sims",
        f"replace simulation cartpole: move 3 simulator(s) to pool {NEW_POOL}",
    ]
    assert "create simulation" not in " ".join(str(c) for c in result.changes)
    later = plan(
        desired(CART, pools={"sims": NEW_SPEC}),
        seen(old_job(*RUNNING), new_job(task(CART, 0))),
        EPOCH + timedelta(seconds=1),
    )
    pools = {p.name: p.message for p in later.status.pools}
    assert pools["sims"] == f"replaced by pool {NEW_POOL}: 3 simulator(s) still on it"
    assert pools[NEW_POOL].startswith("replaces pool sims (vmSize")
    sim = later.status.simulations[0]
    assert f"moving to pool {NEW_POOL}: 3 simulator(s) still on the old pool" in sim.message
    assert "template" not in sim.message  # a move, not a new template
    assert [row.up_to_date for row in sim.simulators] == [True, False, False]


def test_derived_ids_are_deterministic_and_fit_batch() -> None:
    long = "p" * 64
    config = PoolConfig.of(NEW_SPEC)
    assert pool_id(long, config) == pool_id(long, config)
    assert len(pool_id(long, config)) <= 64
    assert pool_id("sims", config) != pool_id("sims", PoolConfig.of(OLD_SPEC))
    assert len(job_id("j" * 64, pool_id(long, config), long)) <= 64
    assert job_id("cartpole", "sims", "sims") == "cartpole"


def test_a_pool_removed_from_the_specs_is_pruned_in_every_generation() -> None:
    result = plan(desired(pools={}), seen(), EPOCH)
    assert sorted(summary(a) for a in result.actions) == [
        ("delete-pool", "sims"),
        ("delete-pool", NEW_POOL),
    ]


def test_an_old_pool_someone_else_runs_a_job_on_is_kept() -> None:
    foreign = ObservedJob("theirs", "sims", False, owner="fleet 'b'")
    result = plan(desired(CART, pools={"sims": NEW_SPEC}), seen(new_job(*RUNNING), foreign), EPOCH)
    assert result.actions == ()
    rows = {p.name: p.message for p in result.status.pools}
    assert "a job simfleet does not own runs on it" in rows["sims"]


def test_nothing_is_deleted_while_pruning_is_held() -> None:
    held = desired(CART, pools={"sims": NEW_SPEC}, prune_allowed=False)
    for have in (seen(old_job(*EXITED), new_job(*RUNNING)), seen(new_job(*RUNNING))):
        assert plan(held, have, EPOCH).actions == ()


def test_an_emptied_old_pool_reads_the_same_from_a_scoped_pass_while_pruning_is_held() -> None:
    """A spec edit's scoped pass publishes its pool rows: they must not contradict the
    full pass's (the convergence property over two pools found them saying "0
    simulator(s) still on it" and "empty; not deleted because …" in turn)."""
    held = desired(CART, pools={"sims": NEW_SPEC}, prune_allowed=False)
    have = seen(new_job(*RUNNING))
    full = {p.name: p.message for p in plan(held, have, EPOCH).status.pools}
    scoped = plan(held, have, EPOCH, scope=frozenset()).status.pools
    assert {p.name: p.message for p in scoped} == full
    assert full["sims"].startswith(f"replaced by pool {NEW_POOL}: empty; not deleted because")


def test_a_rotated_password_is_recorded_on_the_current_generation_with_its_mark() -> None:
    rotated = dataclasses.replace(
        desired(CART, pools={"sims": NEW_SPEC}), login_digests={"sims": "new"}
    )
    have = seen(new_job(*RUNNING), pools=(dataclasses.replace(NEW, login_digest="old"),))
    records = [a for a in plan(rotated, have, EPOCH).actions if isinstance(a, RecordLogin)]
    assert [(r.name, r.login_digest, r.spec_pool) for r in records] == [(NEW_POOL, "new", "sims")]


def test_a_replacement_pool_that_cannot_be_created_holds_the_move_and_says_why() -> None:
    identity = [{"server": "myacr.azurecr.io", "identity": "/subscriptions/s/x"}]
    spec = pool_spec(nodes={"dedicated": 2}, registries=identity)
    refused = dataclasses.replace(
        seen(old_job(*RUNNING), pools=(OLD_POOL,)), pool_identity_refusal="set ARM"
    )
    result = plan(desired(CART, pools={"sims": spec}), refused, EPOCH)
    assert result.actions == ()  # the old pool and its simulators are left serving
    rows = {p.name: p for p in result.status.pools}
    current = pool_id("sims", PoolConfig.of(spec))
    assert "set ARM" in rows[current].message
    assert rows["sims"].message == f"replaced by pool {current}: 3 simulator(s) still on it"
