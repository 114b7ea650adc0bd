"""Scoped planning: a pass woken by one edit plans one simulation and touches no other.

The property: for any fleet, desired state and scope, the scoped plan is the full plan
restricted to the scope — its simulations' actions, status rows, progress and absence
clocks — plus every pool action but a pool's deletion (a scoped plan prunes nothing
outside the scope, and no pool is in a scope). What lies outside the scope is carried
over exactly as it was handed in.
"""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.planner import (
    Action,
    CreateJob,
    CreatePool,
    DeletePool,
    Desired,
    Plan,
    PlannerConfig,
    Progress,
    ResizePool,
    plan,
    subject,
)
from controller.planner import _planning as planning
from controller.testing import EPOCH, FakeBackend, FakeClock

from .conftest import desired, pool_spec, simulation
from .test_properties import NAMES, SETTINGS, desired_states

SCOPES = st.frozensets(st.sampled_from([*NAMES, "ALPHA", "nobody"]))


def _in(scope: frozenset[str], name: str) -> bool:
    return name.lower() in {n.lower() for n in scope}


def _restricted(full: Plan, scope: frozenset[str]) -> list[Action]:
    """The full plan's actions a scoped plan must take: its simulations' and the pools'."""
    kept = []
    for action in full.actions:
        kind, name = subject(action)
        if (kind == "pool" and not isinstance(action, DeletePool)) or _in(scope, name):
            kept.append(action)
    return kept


@SETTINGS
@given(
    first=desired_states(prune_allowed=True),
    second=desired_states(),
    scope=SCOPES,
    passes=st.integers(0, 4),
    crashes=st.lists(st.integers(0, 100), max_size=4),
    delay=st.sampled_from([0, 30]),
    carried=st.dictionaries(st.sampled_from(NAMES), st.integers(0, 100), max_size=3),
)
def test_a_scoped_plan_is_the_full_plan_restricted_to_its_scope(
    first: Desired,
    second: Desired,
    scope: frozenset[str],
    passes: int,
    crashes: list[int],
    delay: int,
    carried: dict[str, int],
) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock)
    backend.add_foreign_job("outsider", "sims")
    for number in range(passes):  # a fleet somewhere between nothing and converged
        live = sorted((j, t.id) for j in backend.jobs for t in backend.live_tasks(j))
        if number < len(crashes) and live:
            backend.crash(*live[crashes[number] % len(live)], exit_code=crashes[number] % 2)
        for action in plan(first, backend.snapshot(), clock()).actions:
            backend.apply(action)
        clock.advance(5)
    observed = backend.snapshot()
    config = PlannerConfig(prune_delay=timedelta(seconds=delay))
    progress = {n: Progress((k, 0), EPOCH - timedelta(seconds=k)) for n, k in carried.items()}
    absent: dict[tuple[str, str], datetime] = {
        ("simulation", n): EPOCH - timedelta(seconds=k) for n, k in carried.items()
    } | {("pool", "gone"): EPOCH}
    full = plan(second, observed, clock(), config, progress, absent)
    scoped = plan(second, observed, clock(), config, progress, absent, scope=scope)

    assert list(scoped.actions) == _restricted(full, scope)
    for action in scoped.actions:  # safety: nothing outside the scope is ever touched
        kind, name = subject(action)
        assert kind == "pool" or _in(scope, name), action
    assert [s for s in full.status.simulations if _in(scope, s.name)] == list(
        scoped.status.simulations
    )
    # every pool row but those of deletions (prunes, emptied replaced pools: full passes only)
    deleted = {a.name for a in full.actions if isinstance(a, DeletePool)}
    rows = full.status.pools[: len(scoped.status.pools)]
    assert [p for p in rows if p.name not in deleted] == [
        p for p in scoped.status.pools if p.name not in deleted
    ]
    assert all("not in any spec" in p.message for p in full.status.pools[len(rows) :])
    assert scoped.progress == {n: p for n, p in progress.items() if not _in(scope, n)} | {
        n: p for n, p in full.progress.items() if _in(scope, n)
    }
    assert scoped.absent == {
        k: t for k, t in absent.items() if k[0] == "pool" or not _in(scope, k[1])
    } | {k: t for k, t in full.absent.items() if k[0] == "simulation" and _in(scope, k[1])}
    assert scoped.failures == {k: v for k, v in full.failures.items() if _in(scope, k[1])}
    # likewise every pool change but those of deletions (a scoped pass sends none)
    assert [c for c in scoped.changes if not (c.kind == "pool" and c.name in deleted)] == [
        c
        for c in full.changes
        if (c.kind == "pool" and c.verb != "prune" and c.name not in deleted)
        or (c.kind == "simulation" and _in(scope, c.name))
    ]


def test_an_empty_scope_plans_only_pools() -> None:
    state = desired(simulation("alpha"), simulation("beta"))
    result = plan(state, FakeBackend().snapshot(), EPOCH, scope=frozenset())
    assert [type(a) for a in result.actions] == [CreatePool]
    assert result.status.simulations == ()


def test_a_scoped_plan_creates_only_its_simulation_but_sizes_the_pool_for_all() -> None:
    state = desired(
        simulation("alpha", simulators=4),
        simulation("beta", simulators=4),
        pools={"sims": pool_spec(nodes={"dedicated": "auto", "max": 10})},
    )
    clock = FakeClock()
    backend = FakeBackend(clock)
    backend.apply(CreatePool("sims", pool_spec(nodes={"dedicated": "auto", "max": 10}), 1, 0))
    result = plan(state, backend.snapshot(), clock(), scope=frozenset({"beta"}))
    assert [a for a in result.actions if isinstance(a, CreateJob)] == [CreateJob("beta", "sims")]
    # 2 × (4 simulators + 1 surge) = 10 slots, 4 per node
    assert ResizePool("sims", 3, 0, 1, 0) in result.actions
    assert [s.name for s in result.status.simulations] == ["beta"]


def test_a_scoped_plan_never_prunes_outside_its_scope() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock)
    for action in plan(
        desired(simulation("alpha"), simulation("beta")), backend.snapshot(), clock()
    ).actions:
        backend.apply(action)
    nothing = Desired(pools={}, simulations={})
    scoped = plan(nothing, backend.snapshot(), clock(), scope=frozenset({"alpha"}))
    assert [subject(a) for a in scoped.actions] == [("simulation", "alpha")]
    assert set(scoped.absent) == {("simulation", "alpha")}


@pytest.mark.parametrize("scope", [None, frozenset({"alpha"})], ids=["full", "scoped"])
def test_without_explain_there_are_no_changes_and_no_words_are_computed(
    scope: frozenset[str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = desired(simulation("alpha"), simulation("beta"))
    explained = plan(state, FakeBackend().snapshot(), EPOCH, scope=scope)
    assert explained.changes != ()

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the change summary was computed")

    words = planning._changes
    for name, value in vars(words).items():
        if inspect.isfunction(value) and value.__module__ == words.__name__:
            monkeypatch.setattr(words, name, refuse)
    quiet = plan(state, FakeBackend().snapshot(), EPOCH, scope=scope, explain=False)
    assert quiet.changes == ()
    assert quiet.actions == explained.actions
    assert quiet.status == explained.status
