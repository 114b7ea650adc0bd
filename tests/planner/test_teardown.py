"""``simfleet delete``'s plan: only this fleet's objects, a pool only when nothing else
needs it, names as Batch compares them, and nothing at all when a name is wrong.

Rows: the observed fleet, the names (None: the whole fleet), the pools the specs still
name (and the spec files that failed to load), and the deletions, listing and kept pools
expected.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.planner import (
    DeleteJob,
    DeletePool,
    JobState,
    Observed,
    ObservedJob,
    PoolState,
    teardown,
)

from .test_fleets import B, job, observed, pool


def deleting(seen: ObservedJob) -> ObservedJob:
    return dataclasses.replace(seen, state=JobState.DELETING)


@dataclass(frozen=True)
class Row:
    observed: Observed
    names: list[str] | None
    actions: list[Any]
    simulations: dict[str, int]
    pools: dict[str, int]
    in_use: tuple[str, ...] = ()
    kept: list[str] = field(default_factory=list)
    unreadable: tuple[str, ...] = ()


def row(name: str, *args: Any, **extra: Any) -> Any:
    return pytest.param(Row(*args, **extra), id=name)


LEASE = job("simfleet-lease-default", owner="", pool_="")
ROWS = [
    row(
        "whole fleet: every owned job and pool, nobody else's, not the lease job",
        observed(
            job("a"),
            job("b", pool_="other"),
            job("theirs", owner=B, pool_="their-pool"),
            LEASE,
            pools=(pool("sims"), pool("other"), pool("their-pool", owner=B), pool("raw", owner="")),
        ),
        None,
        [DeleteJob("a"), DeleteJob("b"), DeletePool("other"), DeletePool("sims")],
        {"a": 3, "b": 3},
        {"other": 2, "sims": 2},
    ),
    row(
        "whole fleet: an owned pool another fleet's job runs on stays",
        observed(job("a"), job("theirs", owner=B)),
        None,
        [DeleteJob("a")],
        {"a": 3},
        {},
        kept=["pool sims is still used by simulation theirs; not deleted"],
    ),
    row(
        "whole fleet: what is already being deleted is listed, not sent again",
        Observed(
            pools={"sims": pool("sims")},
            jobs={"a": deleting(job("a"))},
        ),
        None,
        [DeletePool("sims")],
        {"a": 3},
        {"sims": 2},
    ),
    row(
        "a name in another letter case: the job, and its pool nothing else uses",
        observed(job("cartpole"), job("b", pool_="other"), pools=(pool("sims"), pool("other"))),
        ["CartPole"],
        [DeleteJob("cartpole"), DeletePool("sims")],
        {"cartpole": 3},
        {"sims": 2},
    ),
    row(
        "a name: its pool stays while another simulation of the fleet runs on it",
        observed(job("a"), job("b")),
        ["a"],
        [DeleteJob("a")],
        {"a": 3},
        {},
        kept=["pool sims is still used by simulation b; not deleted"],
    ),
    row(
        "names: a pool both use goes with both",
        observed(job("a"), job("b")),
        ["a", "b"],
        [DeleteJob("a"), DeleteJob("b"), DeletePool("sims")],
        {"a": 3, "b": 3},
        {"sims": 2},
    ),
    row(
        "a name: its pool stays while another fleet's job runs on it",
        observed(job("a"), job("theirs", owner=B)),
        ["a"],
        [DeleteJob("a")],
        {"a": 3},
        {},
        kept=["pool sims is still used by simulation theirs; not deleted"],
    ),
    row(
        "a name: its pool stays while a simulation in the specs names it (any case)",
        observed(job("a")),
        ["a"],
        [DeleteJob("a")],
        {"a": 3},
        {},
        in_use=("SIMS",),
        kept=["pool sims is still named by a simulation in the specs; not deleted"],
    ),
    row(
        "a name: its pool stays while a spec file fails to load (it may name it)",
        observed(job("a")),
        ["a"],
        [DeleteJob("a")],
        {"a": 3},
        {},
        unreadable=("specs/b.yaml", "specs/a.yaml"),
        kept=[
            "pool sims may be named in specs/a.yaml, specs/b.yaml, which failed to load; "
            "not deleted"
        ],
    ),
    row(
        "the whole fleet: a spec file that fails to load keeps nothing",
        observed(job("a")),
        None,
        [DeleteJob("a"), DeletePool("sims")],
        {"a": 3},
        {"sims": 2},
        unreadable=("specs/b.yaml",),
    ),
    row(
        "a name: its pool is not simfleet's",
        observed(job("a"), pools=(pool("sims", owner=""),)),
        ["a"],
        [DeleteJob("a")],
        {"a": 3},
        {},
        kept=["pool sims exists and was not created by simfleet; not deleted"],
    ),
    row(
        "a name: its pool already being deleted is waited for, not deleted again",
        Observed(
            pools={"sims": dataclasses.replace(pool("sims"), state=PoolState.DELETING)},
            jobs={"a": job("a")},
        ),
        ["a"],
        [DeleteJob("a")],
        {"a": 3},
        {"sims": 2},
    ),
    row(
        "a name mid-replacement: both of its jobs, and both pools once nothing else uses them",
        observed(
            job("a"),
            dataclasses.replace(job("a-p0123456789", pool_="sims-g0123456789"), simulation="a"),
            job("b", pool_="sims"),
            pools=(pool("sims"), pool("sims-g0123456789")),
        ),
        ["A"],
        [DeleteJob("a"), DeleteJob("a-p0123456789"), DeletePool("sims-g0123456789")],
        {"a": 3, "a-p0123456789": 3},
        {"sims-g0123456789": 2},
        kept=["pool sims is still used by simulation b; not deleted"],
    ),
]


@pytest.mark.parametrize("case", ROWS)
def test_teardown(case: Row) -> None:
    plan = teardown(case.observed, case.names, case.in_use, case.unreadable)
    assert not plan.refused
    assert sorted(plan.actions, key=repr) == sorted(case.actions, key=repr)
    assert dict(plan.simulations) == case.simulations
    assert dict(plan.pools) == case.pools
    assert list(plan.kept) == case.kept


@pytest.mark.parametrize(
    ("names", "unknown", "foreign"),
    [
        (["nope"], ["nope"], {}),
        (["a", "nope"], ["nope"], {}),
        (["theirs"], [], {"theirs": "belongs to fleet 'b'"}),
        (
            ["simfleet-lease-default"],
            [],
            {"simfleet-lease-default": "exists and was not created by simfleet"},
        ),
    ],
)
def test_a_wrong_name_deletes_nothing(
    names: list[str], unknown: list[str], foreign: dict[str, str]
) -> None:
    plan = teardown(observed(job("a"), job("theirs", owner=B), LEASE), names)
    assert plan.refused
    assert plan.actions == ()
    assert list(plan.unknown) == unknown
    assert dict(plan.foreign) == foreign


def test_remaining_is_what_is_still_there_in_any_case() -> None:
    plan = teardown(
        observed(job("a"), job("b", pool_="other"), pools=(pool("sims"), pool("other")))
    )
    later = Observed(pools={"SIMS": pool("SIMS")}, jobs={"B": job("B", pool_="other")})
    assert plan.remaining(later) == (["b"], ["sims"])
    assert plan.remaining(Observed()) == ([], [])
