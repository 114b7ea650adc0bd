"""Fleets in the planner: an id a spec asks for that someone else's object has is a
conflict, held with its owner named; another fleet's objects are never changed or pruned.

Rows as in :mod:`tests.planner.test_plan`: desired and observed state, the actions one pass
takes, and fragments the status messages (simulations and pools) must contain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.cli._planview import as_json, as_markdown, as_text
from controller.planner import (
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    Desired,
    Observed,
    ObservedJob,
    ObservedPool,
    PoolConfig,
    ResizePool,
    StopTask,
    plan,
)
from controller.testing import EPOCH, FakeBackend, FakeClock

from .conftest import desired, pool_spec, simulation, task
from .test_plan import summary

CART = simulation()
B = "fleet 'b'"
AUTO = {"sims": pool_spec(nodes={"dedicated": "auto", "max": 5})}


def pool(name: str = "sims", *, owner: str | None = None, dedicated: int = 2) -> ObservedPool:
    """A steady pool; ``owner`` None: ours, else whose it is ("" nobody's)."""
    return ObservedPool(
        name,
        owner is None,
        PoolConfig.of(pool_spec(nodes={"dedicated": dedicated})),
        target_dedicated=dedicated,
        current_dedicated=dedicated,
        owner=owner or "",
    )


def job(name: str = "cartpole", *, owner: str | None = None, pool_: str = "sims") -> ObservedJob:
    """A job; ``owner`` as for :func:`pool`. Someone else's is seen without its tasks."""
    tasks = tuple(task(CART, s) for s in range(3)) if owner is None else ()
    return ObservedJob(name, pool_, owner is None, tasks=tasks, owner=owner or "")


def observed(*jobs: ObservedJob, pools: tuple[ObservedPool, ...] = (pool(),)) -> Observed:
    return Observed(pools={p.name: p for p in pools}, jobs={j.name: j for j in jobs})


@dataclass(frozen=True)
class Row:
    desired: Desired
    observed: Observed
    expected: list[tuple[Any, ...]]
    messages: list[str] = field(default_factory=list)


def row(
    name: str, want: Desired, have: Observed, expected: list[tuple[Any, ...]], **extra: Any
) -> Any:
    return pytest.param(Row(want, have, expected, **extra), id=name)


ROWS = [
    row(
        "a job of another fleet with the spec's id is left alone, its owner named",
        desired(CART),
        observed(job(owner=B)),
        [],
        messages=["a job named cartpole belongs to fleet 'b'; leaving it alone"],
    ),
    row(
        "a job of nobody with the spec's id is left alone",
        desired(CART),
        observed(job(owner="")),
        [],
        messages=["a job named cartpole exists and was not created by simfleet; leaving it alone"],
    ),
    row(
        "a lease job with the spec's id is left alone, named as a lease",
        desired(simulation("simfleet-lease-b")),
        observed(job("simfleet-lease-b", owner="the lease of fleet 'b'", pool_="")),
        [],
        messages=["a job named simfleet-lease-b belongs to the lease of fleet 'b'"],
    ),
    row(
        "a pool of another fleet is neither resized nor used: no job is created on it",
        desired(CART, pools={"sims": pool_spec(nodes={"dedicated": 5})}),
        observed(pools=(pool(owner=B),)),
        [],
        messages=[
            "a pool named sims belongs to fleet 'b'; leaving it alone",
            "its pool sims belongs to fleet 'b'; no simulator is started on it",
        ],
    ),
    row(
        "a pool of nobody is not used either",
        desired(CART),
        observed(pools=(pool(owner=""),)),
        [],
        messages=["its pool sims exists and was not created by simfleet"],
    ),
    row(
        "our job on a pool that became another fleet's gets no new simulators there",
        desired(simulation(simulators=5)),
        observed(job(), pools=(pool(owner=B),)),
        [],
        messages=["its pool sims belongs to fleet 'b'"],
    ),
    row(
        "our auto pool is not sized for a simulation whose job is another fleet's",
        desired(CART, pools=AUTO),
        observed(job(owner=B), pools=(pool(dedicated=0),)),
        [],
        messages=["belongs to fleet 'b'"],
    ),
    row(
        "pruning never touches another fleet's jobs and pools, nor reports them",
        desired(pools={}),
        observed(
            job("theirs", owner=B, pool_="their-pool"),
            job("lease", owner="the lease of fleet 'b'", pool_=""),
            pools=(pool("their-pool", owner=B),),
        ),
        [],
    ),
    row(
        "pruning deletes our objects but keeps our pool while another fleet's job runs on it",
        desired(pools={}),
        observed(job("ours"), job("theirs", owner=B)),
        [("delete-job", "ours")],
        messages=["not in any spec"],
    ),
]


@pytest.mark.parametrize("row", ROWS)
def test_fleets(row: Row) -> None:
    result = plan(row.desired, row.observed, EPOCH)
    assert [summary(a) for a in result.actions] == row.expected
    text = " | ".join(
        [s.message for s in result.status.simulations] + [p.message for p in result.status.pools]
    )
    for fragment in row.messages:
        assert fragment in text


def test_another_fleets_objects_get_no_status_rows() -> None:
    result = plan(
        desired(pools={}), observed(job("theirs", owner=B), pools=(pool(owner=B),)), EPOCH
    )
    assert result.status.simulations == ()
    assert result.status.pools == ()


def test_a_held_conflict_is_not_converged_while_simulators_are_owed() -> None:
    result = plan(desired(CART), observed(pools=(pool(owner=B),)), EPOCH)
    assert not result.converged


class TestPlanOutput:
    """``simfleet plan`` shows a conflict as held back, owner named, in every format, and
    never says the fleet matches while one is held."""

    def conflicted(self) -> Any:
        return plan(desired(CART), observed(pools=(pool(owner=B),)), EPOCH)

    def test_text(self) -> None:
        text = as_text(self.conflicted(), (), None)
        assert "simulation cartpole: its pool sims belongs to fleet 'b'" in text
        assert "pool sims: a pool named sims belongs to fleet 'b'; leaving it alone" in text
        assert "No changes: the fleet matches the specs." not in text
        assert text.splitlines()[-1].endswith("2 object(s) held back.")

    def test_markdown(self) -> None:
        text = as_markdown(self.conflicted(), (), None)
        assert "- pool `sims`: a pool named sims belongs to fleet 'b'; leaving it alone" in text
        assert "the fleet matches" not in text

    def test_json(self) -> None:
        document = json.loads(as_json(self.conflicted(), (), None))
        assert {"kind": "simulation", "name": "cartpole"}.items() <= document["heldBack"][0].items()
        assert "belongs to fleet 'b'" in document["heldBack"][0]["message"]
        assert document["actions"] == 0

    def test_our_job_on_a_foreign_pool_shows_no_change_that_would_not_happen(self) -> None:
        result = plan(
            desired(simulation(simulators=5)), observed(job(), pools=(pool(owner=B),)), EPOCH
        )
        assert result.changes == ()
        assert "its pool sims belongs to fleet 'b'" in as_text(result, (), None)


def test_the_fake_backend_reports_foreign_objects_with_their_owner() -> None:
    """Passes against the fake backend never touch another fleet's pool or job."""
    clock = FakeClock()
    backend = FakeBackend(clock)
    backend.add_foreign_pool("their-pool", pool_spec(), owner=B, nodes=3)
    backend.add_foreign_job("theirs", "their-pool", owner=B)
    backend.add_foreign_job("cartpole", "sims", owner=B)
    state = desired(CART, simulation("free"), pools={"sims": pool_spec(nodes={"dedicated": 2})})
    for _ in range(3):
        result = plan(state, backend.snapshot(), clock())
        for action in result.actions:
            match action:
                case CreateJob(name=n) | DeleteJob(name=n) | AddTasks(job=n):
                    assert n not in {"theirs", "cartpole"}
                case StopTask(job=n) | DeleteTask(job=n):
                    assert n not in {"theirs", "cartpole"}
                case CreatePool(name=n) | ResizePool(name=n) | DeletePool(name=n):
                    assert n != "their-pool"
            backend.apply(action)
        clock.advance(60)
    assert backend.snapshot().jobs["cartpole"].owner == B
    assert backend.pools["their-pool"].target_dedicated == 3
    messages = {s.name: s.message for s in result.status.simulations}
    assert messages["cartpole"] == "a job named cartpole belongs to fleet 'b'; leaving it alone"
    assert len(backend.live_tasks("free")) == 3
