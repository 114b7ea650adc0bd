"""Node health in the plan: what a pool's broken nodes do to its status, its condition and
the message of the simulations waiting on it; and prefetching images as an opt-in."""

from __future__ import annotations

import dataclasses

import pytest

from controller.planner import (
    ConditionType,
    CreatePool,
    NodeStates,
    Observed,
    ObservedJob,
    ObservedPool,
    PoolConfig,
    plan,
)
from controller.testing import EPOCH

from .conftest import desired, pool_spec, simulation, task

CART = simulation(simulators=4)
PULL = (
    "ContainerInvalidImage: One or more container images specified for the pool could not be "
    "pulled (ImageName: myacr.azurecr.io/sim:1; Message: manifest unknown)"
)


def pool(nodes: NodeStates | None, errors: tuple[str, ...] = ()) -> ObservedPool:
    return ObservedPool(
        "sims",
        True,
        PoolConfig.of(pool_spec(nodes={"dedicated": 2})),
        target_dedicated=2,
        current_dedicated=2,
        nodes=nodes,
        usable_nodes=nodes.usable if nodes is not None else None,
        node_errors=errors,
    )


def planned(observed_pool: ObservedPool, *tasks: object) -> tuple[str, str, object, str]:
    """(pool message, NodesUsable reason, condition status, simulation message)."""
    job = ObservedJob("cartpole", "sims", True, tasks=tuple(tasks))  # type: ignore[arg-type]
    result = plan(
        desired(CART), Observed(pools={"sims": observed_pool}, jobs={"cartpole": job}), EPOCH
    )
    [pool_row] = result.status.pools
    [sim_row] = result.status.simulations
    condition = next(iter(pool_row.conditions), None)
    assert condition is None or condition.type is ConditionType.NODES_USABLE
    return (
        pool_row.message,
        str(condition.reason) if condition else "",
        condition.status if condition else None,
        sim_row.message,
    )


RUNNING = [task(CART, s) for s in range(2)]
PENDING = [task(CART, s, state="pending") for s in range(2, 4)]


@pytest.mark.parametrize(
    ("starting", "expected"),
    [
        pytest.param((False, False), "2 waiting for a free slot on the pool", id="queued"),
        pytest.param(
            (True, False),
            "1 starting on their node (image pull, container start), "
            "1 waiting for a free slot on the pool",
            id="one on its node",
        ),
        pytest.param(
            (True, True), "2 starting on their node (image pull, container start)", id="both"
        ),
    ],
)
def test_pending_simulators_on_their_node_say_they_are_starting(
    starting: tuple[bool, bool], expected: str
) -> None:
    """Batch's ``preparing``: the task has its slot and its node pulls the image, which
    takes minutes the first time; "waiting for a free slot" would be wrong."""
    tasks = [dataclasses.replace(t, starting=s) for t, s in zip(PENDING, starting, strict=True)]
    assert planned(pool(NodeStates(usable=2)), *RUNNING, *tasks)[3] == expected


@pytest.mark.parametrize(
    ("nodes", "errors", "expected"),
    [
        pytest.param(
            None,
            (),
            ("", "", None, "2 waiting for a free slot on the pool"),
            id="not counted: as before",
        ),
        pytest.param(
            NodeStates(usable=2),
            (),
            ("", "NodesUsable", True, "2 waiting for a free slot on the pool"),
            id="healthy",
        ),
        pytest.param(
            NodeStates(usable=1, unusable=2),
            (PULL,),
            (
                f"2 of 3 nodes unusable: {PULL}",
                "NodesUnusable",
                False,
                f"2 pending on pool sims: 2 of 3 nodes unusable: {PULL}",
            ),
            id="unusable with errors",
        ),
        pytest.param(
            NodeStates(unusable=1),
            (),
            (
                "1 of 1 node unusable",
                "NodesUnusable",
                False,
                "2 pending on pool sims: 1 of 1 node unusable",
            ),
            id="unusable, errors not listed (yet)",
        ),
        pytest.param(
            NodeStates(usable=1, start_task_failed=1),
            ("start task, exit code 3: FailureExitCode: boom",),
            (
                "1 of 2 nodes failed their start task: start task, exit code 3: "
                "FailureExitCode: boom",
                "StartTaskFailed",
                False,
                "2 pending on pool sims: 1 of 2 nodes failed their start task: start task, "
                "exit code 3: FailureExitCode: boom",
            ),
            id="start task failed",
        ),
        pytest.param(
            NodeStates(usable=1, preempted=1),
            (),
            (
                "1 node was preempted (Spot)",
                "NodesUsable",
                True,
                "2 waiting for a free slot on the pool",
            ),
            id="preempted: said, not broken",
        ),
    ],
)
def test_broken_nodes_show_in_the_pool_and_the_simulations_waiting_on_it(
    nodes: NodeStates | None, errors: tuple[str, ...], expected: tuple[str, str, object, str]
) -> None:
    assert planned(pool(nodes, errors), *RUNNING, *PENDING) == expected


def test_nothing_pending_says_nothing_about_the_pool_in_the_simulation() -> None:
    healthy = [task(simulation(simulators=4), s) for s in range(4)]
    message, _, status, sim_message = planned(pool(NodeStates(usable=1, unusable=1)), *healthy)
    assert (message, status, sim_message) == ("1 of 2 nodes unusable", False, "")


def test_many_errors_are_named_a_few_at_a_time_and_clipped() -> None:
    errors = tuple(f"E{i}: " + "x" * 400 for i in range(5))
    message = planned(pool(NodeStates(unusable=5), errors), *RUNNING)[0]
    assert message.count("E") == 3
    assert message.endswith("(and 2 more)")
    assert len(message) < 1000


@pytest.mark.parametrize(
    ("fields", "images"),
    [
        pytest.param({}, (), id="off by default"),
        pytest.param({"prefetchImages": False}, (), id="off"),
        pytest.param({"prefetchImages": True}, ("a:1", "b:2"), id="on: every simulation's"),
    ],
)
def test_prefetching_images_is_a_choice(fields: dict[str, object], images: tuple[str, ...]) -> None:
    want = desired(
        simulation("a", image="a:1"),
        simulation("b", image="b:2"),
        pools={"sims": pool_spec(nodes={"dedicated": 1}, **fields)},
    )
    [create] = [a for a in plan(want, Observed(), EPOCH).actions if isinstance(a, CreatePool)]
    assert create.images == images


def test_a_stale_prefetch_list_is_never_a_replacement_reason() -> None:
    """The pool was created prefetching cartpole:1.0; the simulation now runs 2.0 and the
    spec stopped prefetching: Batch cannot change the list, and nothing needs replacing."""
    created = plan(
        desired(simulation(image="cartpole:1.0"), pools={"sims": pool_spec(prefetchImages=True)}),
        Observed(),
        EPOCH,
    )
    [create] = [a for a in created.actions if isinstance(a, CreatePool)]
    assert create.images == ("cartpole:1.0",)
    live = dataclasses.replace(pool(NodeStates(usable=2)), config=PoolConfig.of(create.spec))
    for spec in (pool_spec(prefetchImages=True), pool_spec()):
        later = plan(
            desired(simulation(image="cartpole:2.0"), pools={"sims": spec}),
            Observed(pools={"sims": live}),
            EPOCH,
        )
        assert "replacement" not in later.status.pools[0].message
        assert not [c for c in later.changes if "replacement" in str(c)]
