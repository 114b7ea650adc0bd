"""Sizing rules of live pools (:mod:`controller.planner._sizing`), as rows of inputs and
the pool actions, memory and words they lead to; then properties over demand sequences."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.planner import (
    DesiredSimulation,
    Observed,
    ObservedPool,
    PoolConfig,
    PoolMemory,
    PoolState,
    ResizePool,
    ShrinkPool,
    plan,
)
from controller.planner._sizing import retry_wait, size
from controller.testing import EPOCH

from .conftest import desired, pool_spec, simulation

AUTO = {"dedicated": "auto", "max": 50}
ERROR = "AllocationTimedOut: Desired number of nodes could not be allocated"
MINUTE = timedelta(minutes=1)


def live(
    target: tuple[int, int], current: tuple[int, int] | None = None, **kw: Any
) -> ObservedPool:
    current = current if current is not None else target
    return ObservedPool(
        "sims",
        True,
        PoolConfig.of(pool_spec()),
        target_dedicated=target[0],
        target_spot=target[1],
        current_dedicated=current[0],
        current_spot=current[1],
        **kw,
    )


@dataclass(frozen=True)
class Row:
    sims: tuple[DesiredSimulation, ...]
    pool: ObservedPool
    expected: list[ResizePool | ShrinkPool]
    nodes: dict[str, Any] = field(default_factory=lambda: dict(AUTO))
    memory: PoolMemory | None = None
    remembered: PoolMemory | None = None  # what the plan hands on (None: nothing)
    message: str = ""  # a fragment of the pool's status message ("" : it is empty)
    requeue_in: timedelta | None = None


def row(name: str, *sims: DesiredSimulation, **fields: Any) -> Any:
    return pytest.param(Row(sims, **fields), id=name)


EIGHT = simulation(simulators=8)  # 8 + 2 surge = 10 slots: 3 nodes of 4 slots
NOW = EPOCH
LATER = EPOCH + timedelta(minutes=10)

ROWS = [
    row(
        "grows at once to simulators + maxSurge",
        EIGHT,
        pool=live((2, 0)),
        expected=[ResizePool("sims", 3, 0, 2, 0)],
    ),
    row(
        "maxSurge 0 keeps no headroom",
        simulation(simulators=8, rollout={"maxSurge": 0, "maxUnavailable": 1}),
        pool=live((2, 0)),
        expected=[],
    ),
    row(
        "a simulation without simulators keeps no headroom either",
        simulation(simulators=0),
        pool=live((0, 0)),
        expected=[],
    ),
    row(
        "lower demand: the shrink is held and the clock starts",
        EIGHT,
        pool=live((5, 0)),
        expected=[],
        remembered=PoolMemory(lower_since=NOW),
        message=f"shrinks to 3+0 nodes after {(NOW + 10 * MINUTE).isoformat()}",
        requeue_in=10 * MINUTE,
    ),
    row(
        "lower for 9 minutes: still held",
        EIGHT,
        pool=live((5, 0)),
        expected=[],
        memory=PoolMemory(lower_since=NOW - 9 * MINUTE),
        remembered=PoolMemory(lower_since=NOW - 9 * MINUTE),
        message="if demand stays lower",
        requeue_in=MINUTE,
    ),
    row(
        "lower for the whole delay: idle nodes are removed",
        EIGHT,
        pool=live((5, 0), (4, 0)),
        expected=[ShrinkPool("sims", 3, 0, 5, 0, 4, 0)],
        memory=PoolMemory(lower_since=NOW - 10 * MINUTE),
        remembered=PoolMemory(lower_since=NOW - 10 * MINUTE),
        message="shrinking to 3+0 nodes as nodes become idle",
    ),
    row(
        "demand back at the target: the clock is forgotten",
        EIGHT,
        pool=live((3, 0)),
        expected=[],
        memory=PoolMemory(lower_since=NOW - 9 * MINUTE),
    ),
    row(
        "fixed counts shrink as soon as the spec says so (idle nodes only)",
        EIGHT,
        nodes={"dedicated": 1},
        pool=live((3, 0)),
        expected=[ShrinkPool("sims", 1, 0, 3, 0, 3, 0)],
        remembered=PoolMemory(lower_since=NOW),
        message="shrinking to 1+0 nodes",
    ),
    row(
        "no shrink while the pool resizes, but the clock runs",
        EIGHT,
        pool=live((5, 0), state=PoolState.RESIZING),
        expected=[],
        memory=PoolMemory(lower_since=NOW - 20 * MINUTE),
        remembered=PoolMemory(lower_since=NOW - 20 * MINUTE),
        message="waiting for the current resize before sizing to 3+0",
    ),
    row(
        "spot auto: only spot grows",
        EIGHT,
        nodes={"dedicated": 1, "spot": "auto", "max": 50},
        pool=live((1, 0)),
        expected=[ResizePool("sims", 1, 2, 1, 0)],
    ),
    row(
        "a grow of one kind never lowers the other: that waits for the delay",
        EIGHT,
        nodes={"dedicated": "auto", "spot": 2, "max": 50},
        pool=live((3, 0)),
        expected=[ResizePool("sims", 3, 2, 3, 0)],
        remembered=PoolMemory(lower_since=NOW),
    ),
    row(
        "a resize error: retried after the first back-off",
        EIGHT,
        pool=live((3, 0), (1, 0), resize_errors=(ERROR,)),
        expected=[],
        remembered=PoolMemory(errors=(ERROR,), retry_at=NOW + MINUTE),
        message=f"resize error: {ERROR}; resizing again at {(NOW + MINUTE).isoformat()} (retry 1)",
        requeue_in=MINUTE,
    ),
    row(
        "a resize error whose back-off is over: the same target again",
        EIGHT,
        pool=live((3, 0), (1, 0), resize_errors=(ERROR,)),
        memory=PoolMemory(errors=(ERROR,), retry_at=NOW),
        expected=[ResizePool("sims", 3, 0, 3, 0)],
        remembered=PoolMemory(errors=(ERROR,), retries=1),
        message="resizing again (retry 1)",
    ),
    row(
        "the back-off doubles with each retry",
        EIGHT,
        pool=live((3, 0), (1, 0), resize_errors=(ERROR,)),
        memory=PoolMemory(errors=(ERROR,), retries=3),
        expected=[],
        remembered=PoolMemory(errors=(ERROR,), retries=3, retry_at=NOW + 8 * MINUTE),
        message="(retry 4)",
        requeue_in=8 * MINUTE,
    ),
    row(
        "while a retry resizes, the error stays in status",
        EIGHT,
        pool=live((3, 0), (1, 0), state=PoolState.RESIZING),
        memory=PoolMemory(errors=(ERROR,), retries=1),
        expected=[],
        remembered=PoolMemory(errors=(ERROR,), retries=1),
        message=f"resize error: {ERROR}; resizing again (retry 1)",
    ),
    row(
        "nodes arrived: the error is forgotten",
        EIGHT,
        pool=live((3, 0)),
        memory=PoolMemory(errors=(ERROR,), retries=2),
        expected=[],
    ),
    row(
        "short of nodes without an error: nothing to retry",
        EIGHT,
        pool=live((3, 0), (2, 0)),
        expected=[],
    ),
    row(
        "an error on a pool that has its nodes is shown, not retried",
        EIGHT,
        pool=live((3, 0), resize_errors=(ERROR,)),
        expected=[],
        message=f"resize error: {ERROR}",
    ),
]


@pytest.mark.parametrize("case", ROWS)
def test_sizing(case: Row) -> None:
    want = desired(*case.sims, pools={"sims": pool_spec(nodes=case.nodes)})
    memory = {"sims": case.memory} if case.memory else {}
    result = plan(want, Observed(pools={"sims": case.pool}), NOW, sizing=memory)
    assert [a for a in result.actions if isinstance(a, ResizePool | ShrinkPool)] == case.expected
    assert dict(result.sizing) == ({"sims": case.remembered} if case.remembered else {})
    message = result.status.pools[0].message
    assert case.message in message if case.message else message == ""
    if case.requeue_in is not None:
        assert result.requeue_after == NOW + case.requeue_in


@pytest.mark.parametrize(
    ("retries", "wait"),
    [(0, 1), (1, 2), (2, 4), (4, 16), (5, 30), (40, 30)],
)
def test_the_retry_back_off_doubles_up_to_30_minutes(retries: int, wait: int) -> None:
    assert retry_wait(retries) == wait * MINUTE


DELAY = timedelta(minutes=10)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 900)),
        min_size=1,
        max_size=30,
    ),
    start=st.tuples(st.integers(0, 6), st.integers(0, 6)),
)
def test_a_pool_never_shrinks_before_demand_stayed_lower_for_the_delay(
    steps: list[tuple[int, int, int]], start: tuple[int, int]
) -> None:
    """Whatever demand does, a resize only raises targets, a shrink comes only after every
    pass of the last delay saw demand lower, and after each pass the targets cover demand."""
    spec = pool_spec(nodes={"dedicated": "auto", "spot": "auto", "max": 50})
    pool = live(start)
    memory = PoolMemory()
    now = EPOCH
    lower_since = None
    for dedicated, spot, gap in steps:
        now += timedelta(seconds=gap)
        wanted = (dedicated, spot)
        target = (pool.target_dedicated, pool.target_spot)
        lower = wanted[0] < target[0] or wanted[1] < target[1]
        lower_since = (lower_since or now) if lower else None
        sized = size(pool, spec, wanted, memory, now, DELAY)
        memory = sized.memory
        for action in sized.actions:
            if isinstance(action, ResizePool):
                assert action.dedicated >= target[0]
                assert action.spot >= target[1]
            else:
                assert lower_since is not None
                assert now - lower_since >= DELAY
                assert (action.dedicated, action.spot) == wanted
            pool = replace(pool, target_dedicated=action.dedicated, target_spot=action.spot)
            pool = replace(pool, current_dedicated=action.dedicated, current_spot=action.spot)
        assert pool.target_dedicated >= wanted[0]
        assert pool.target_spot >= wanted[1]
        if not sized.actions and lower:
            assert lower_since is not None
            assert sized.requeue_after == lower_since + DELAY  # the daemon wakes for it
