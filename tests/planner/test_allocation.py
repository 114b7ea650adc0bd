"""A first deployment waiting for its pool's nodes is Progressing, not Stalled (issue 10,
item 11): Batch allocation, boot and image pull take 5–20 minutes, the progress deadline
10, and the wait is excused only within the bound Batch gives each step."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from controller.planner import (
    NodeStates,
    Observed,
    ObservedJob,
    ObservedPool,
    PoolConfig,
    PoolState,
    plan,
)
from controller.testing import EPOCH

from .conftest import desired, pool_spec, simulation, task

CART = simulation()  # 3 simulators on pool "sims" (2 dedicated nodes of 4 slots)
MINUTE = timedelta(minutes=1)


def pool(
    state: PoolState, *, current: int, usable: int | None, since: float | None
) -> ObservedPool:
    """Pool "sims" targeting 2 nodes, in ``state`` since ``since`` minutes before EPOCH."""
    return ObservedPool(
        "sims",
        True,
        PoolConfig.of(pool_spec(nodes={"dedicated": 2})),
        state,
        target_dedicated=2,
        current_dedicated=current,
        usable_nodes=usable,
        allocation_changed_at=None if since is None else EPOCH - since * MINUTE,
    )


def pending_job() -> ObservedJob:
    return ObservedJob(
        "cartpole",
        "sims",
        True,
        tasks=tuple(task(CART, s, state="pending", age=60) for s in range(3)),
    )


def conditions(result: Any) -> dict[str, tuple[bool, str, str]]:
    (sim,) = result.status.simulations
    return {str(c.type): (c.status, str(c.reason), c.message) for c in sim.conditions}


@pytest.mark.parametrize(
    ("case", "observed_pool", "waiting"),
    [
        ("allocating for 9 min", pool(PoolState.RESIZING, current=0, usable=0, since=9), True),
        (
            "allocating for 16 min: past resizeTimeout",
            pool(PoolState.RESIZING, current=0, usable=0, since=16),
            False,
        ),
        ("nodes booting for 4 min", pool(PoolState.STEADY, current=2, usable=0, since=4), True),
        (
            "nodes booting for 11 min: past the start bound",
            pool(PoolState.STEADY, current=2, usable=0, since=11),
            False,
        ),
        (
            "steady and short with nothing under way (resize error)",
            pool(PoolState.STEADY, current=0, usable=0, since=1),
            False,
        ),
        (
            "every node usable: the wait is elsewhere",
            pool(PoolState.STEADY, current=2, usable=2, since=1),
            False,
        ),
        (
            "no transition time reported",
            pool(PoolState.RESIZING, current=0, usable=0, since=None),
            False,
        ),
        (
            "counted: one node still starting",
            dataclasses.replace(
                pool(PoolState.STEADY, current=2, usable=0, since=4),
                nodes=NodeStates(starting=1, unusable=1),
            ),
            True,
        ),
        (
            "counted: the nodes are unusable, not booting (issue 10, item 3)",
            dataclasses.replace(
                pool(PoolState.STEADY, current=2, usable=0, since=4),
                nodes=NodeStates(unusable=2),
            ),
            False,
        ),
    ],
)
def test_simulators_pending_on_a_pool_still_coming_up_are_waiting(
    case: str, observed_pool: ObservedPool, waiting: bool
) -> None:
    result = plan(
        desired(CART), Observed({"sims": observed_pool}, {"cartpole": pending_job()}), EPOCH
    )
    progressing = conditions(result)["Progressing"]
    assert (progressing[1] == "WaitingForNodes") is waiting, case
    message = result.status.simulations[0].message
    assert ("waiting for pool sims" in message) is waiting, message


def test_a_first_deployment_is_never_stalled_by_its_allocation_but_is_after_the_bound() -> None:
    """Passes over half an hour: created, allocating 12 min, booting, then stuck booting.
    Waiting keeps the progress clock at the last waiting pass, so Stalled comes a progress
    deadline (10 min) after the wait stopped being an excuse, not before."""
    first = plan(desired(CART), Observed(), EPOCH)  # creates the pool and the job
    assert {type(a).__name__ for a in first.actions} >= {"CreatePool", "CreateJob"}
    progress = first.progress
    timeline = [  # minutes after EPOCH, pool as seen, Progressing reason, Stalled
        (1, PoolState.RESIZING, 0, 0.5, "WaitingForNodes", False),
        (12, PoolState.RESIZING, 0, 11.5, "WaitingForNodes", False),
        (14, PoolState.STEADY, 2, 0.5, "WaitingForNodes", False),
        (18, PoolState.STEADY, 2, 4.5, "WaitingForNodes", False),
        (26, PoolState.STEADY, 2, 12.5, "Recovering", False),  # past the bound: clock runs
        (29, PoolState.STEADY, 2, 15.5, "ProgressDeadlineExceeded", True),  # 11 min on
    ]
    for minute, state, current, since, reason, stalled in timeline:
        now = EPOCH + minute * MINUTE
        seen = dataclasses.replace(
            pool(state, current=current, usable=0, since=0),
            allocation_changed_at=now - since * MINUTE,
        )
        result = plan(
            desired(CART),
            Observed({"sims": seen}, {"cartpole": pending_job()}),
            now,
            progress=progress,
        )
        got = conditions(result)
        assert (got["Progressing"][1], got["Stalled"][0]) == (reason, stalled), minute
        progress = result.progress
