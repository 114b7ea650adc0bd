"""The Reconciler: the loop's state (progress on disk, the Retry-After window, the cached
view), scoped steps for spec edits, and status computed after execution."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controller.backends import TransientBackendError
from controller.planner import (
    ConditionType,
    CreateJob,
    Observed,
    PlannerConfig,
    SimulatorState,
    Status,
)
from controller.reconcile import Clock, Reconciler, Settings
from controller.testing import FakeBackend, FakeClock
from tests.daemon.conftest import POOL, simulation

DEADLINE = "  rollout: {progressDeadline: 60s}\n"


def specs_dir(tmp_path: Path, **simulations: int) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    (specs / "pool.yaml").write_text(POOL)
    for name, count in simulations.items():
        (specs / f"{name}.yaml").write_text(simulation(name, count, DEADLINE))
    return specs


def reconciler(
    specs: Path,
    backend: FakeBackend,
    clock: FakeClock,
    state_dir: Path | None = None,
    fleet: str = "default",
) -> Reconciler:
    settings = Settings(
        specs=specs, revision_key=b"k" * 32, environ={}, state_dir=state_dir, fleet=fleet
    )
    return Reconciler(settings, backend, clock=Clock(wall=clock, monotonic=clock.monotonic))


def stalled(status: Status, name: str) -> bool:
    sim = next(s for s in status.simulations if s.name == name)
    return any(c.type is ConditionType.STALLED and c.status for c in sim.conditions)


class TestProgressSurvivesARestart:
    async def test_a_restarted_reconciler_keeps_the_progress_deadline(self, tmp_path: Path) -> None:
        clock = FakeClock()
        backend = FakeBackend(clock, nodes_arrive=False)  # nothing can ever start
        specs = specs_dir(tmp_path, alpha=2)
        state = tmp_path / "state"
        first = await reconciler(specs, backend, clock, state).step()
        assert "alpha" in first.plan.progress
        assert not stalled(first.status, "alpha")
        clock.advance(61)  # past the deadline, in a new controller
        again = await reconciler(specs, backend, clock, state).step()
        assert stalled(again.status, "alpha")
        assert again.plan.progress["alpha"].since == first.plan.progress["alpha"].since

    async def test_two_fleets_sharing_a_state_directory_keep_their_own_deadlines(
        self, tmp_path: Path
    ) -> None:
        clock = FakeClock()
        specs = specs_dir(tmp_path, alpha=2)
        state = tmp_path / "state"
        await reconciler(specs, FakeBackend(clock, nodes_arrive=False), clock, state).step()
        clock.advance(61)
        # another fleet's controller, same state directory, its own (fresh) alpha
        other = FakeBackend(clock, nodes_arrive=False)
        result = await reconciler(specs, other, clock, state, fleet="other").step()
        assert not stalled(result.status, "alpha")
        assert {p.name for p in state.iterdir()} >= {"progress.json", "progress-other.json"}

    async def test_without_a_state_directory_the_deadline_starts_afresh(
        self, tmp_path: Path
    ) -> None:
        clock = FakeClock()
        backend = FakeBackend(clock, nodes_arrive=False)
        specs = specs_dir(tmp_path, alpha=2)
        await reconciler(specs, backend, clock).step()
        clock.advance(61)
        again = await reconciler(specs, backend, clock).step()
        assert not stalled(again.status, "alpha")

    async def test_an_unreadable_progress_file_is_ignored(self, tmp_path: Path) -> None:
        clock = FakeClock()
        state = tmp_path / "state"
        state.mkdir()
        (state / "progress.json").write_text("{not json")
        specs = specs_dir(tmp_path, alpha=1)
        result = await reconciler(specs, FakeBackend(clock), clock, state).step()
        assert result.failures == ()

    async def test_plan_only_steps_write_nothing(self, tmp_path: Path) -> None:
        clock = FakeClock()
        state = tmp_path / "state"
        specs = specs_dir(tmp_path, alpha=1)
        await reconciler(specs, FakeBackend(clock), clock, state).step(execute=False)
        assert not (state / "progress.json").exists()


class TestScopedSteps:
    async def test_a_spec_edit_observes_and_plans_only_what_it_changed(
        self, tmp_path: Path
    ) -> None:
        clock = FakeClock()
        backend = FakeBackend(clock)
        specs = specs_dir(tmp_path, alpha=2, beta=2)
        steps = reconciler(specs, backend, clock)
        await steps.step()
        (specs / "beta.yaml").write_text(simulation("beta", 3, DEADLINE))
        result = await steps.step(full=False)
        assert backend.observations[-1] == frozenset({"beta"})
        assert result.scope == frozenset({"beta"})
        assert {a.job for a in result.executed if hasattr(a, "job")} == {"beta"}
        assert len(backend.live_tasks("beta")) == 3
        # the published status still has every simulation (the others from the cache)
        assert [s.name for s in result.status.simulations] == ["alpha", "beta"]

    async def test_a_new_simulation_is_created_by_a_scoped_step(self, tmp_path: Path) -> None:
        clock = FakeClock()
        backend = FakeBackend(clock)
        specs = specs_dir(tmp_path, alpha=1)
        steps = reconciler(specs, backend, clock)
        await steps.step()
        (specs / "gamma.yaml").write_text(simulation("gamma", 2))
        result = await steps.step(full=False)
        assert CreateJob("gamma", "sims") in result.executed
        assert backend.observations[-1] == frozenset({"gamma"})

    async def test_an_edit_that_changes_nothing_lists_only_the_pools(self, tmp_path: Path) -> None:
        clock = FakeClock()
        backend = FakeBackend(clock)
        specs = specs_dir(tmp_path, alpha=1)
        steps = reconciler(specs, backend, clock)
        await steps.step()
        (specs / "alpha.yaml").write_text("# a comment\n" + simulation("alpha", 1, DEADLINE))
        result = await steps.step(full=False)
        assert backend.observations[-1] == frozenset()
        assert result.executed == ()

    async def test_a_scoped_step_keeps_the_pools_only_a_full_step_plans(
        self, tmp_path: Path
    ) -> None:
        """A pool no spec names any more, waiting out its prune delay, is planned by full
        steps only (scoped steps never prune): an edit must not drop it from status."""
        clock = FakeClock()
        backend = FakeBackend(clock)
        specs = specs_dir(tmp_path, alpha=1)
        (specs / "old.yaml").write_text(POOL.replace("name: sims", "name: old"))
        settings = Settings(
            specs=specs,
            revision_key=b"k" * 32,
            environ={},
            planner=PlannerConfig(prune_delay=timedelta(hours=1)),
        )
        steps = Reconciler(settings, backend, clock=Clock(wall=clock, monotonic=clock.monotonic))
        await steps.step()
        (specs / "old.yaml").unlink()
        full = await steps.step()
        kept = {p.name: p.message for p in full.status.pools}
        assert kept["old"].startswith("not in any spec")
        (specs / "alpha.yaml").write_text(simulation("alpha", 2, DEADLINE))
        scoped = await steps.step(full=False)
        assert scoped.scope == frozenset({"alpha"})
        assert {p.name: p.message for p in scoped.status.pools} == kept

    async def test_a_pool_edit_makes_the_step_full(self, tmp_path: Path) -> None:
        clock = FakeClock()
        backend = FakeBackend(clock)
        specs = specs_dir(tmp_path, alpha=1)
        steps = reconciler(specs, backend, clock)
        await steps.step()
        (specs / "pool.yaml").write_text(POOL.replace("dedicated: 2", "dedicated: 3"))
        await steps.step(full=False)
        assert backend.observations[-1] is None

    async def test_a_scoped_step_keeps_the_fleets_next_timer(self, tmp_path: Path) -> None:
        clock = FakeClock()
        backend = FakeBackend(clock, nodes_arrive=False)  # deadlines run for everything
        specs = specs_dir(tmp_path, alpha=1)
        steps = reconciler(specs, backend, clock)
        first = await steps.step()
        assert first.plan.requeue_after is not None  # alpha's progress deadline
        clock.advance(10)
        (specs / "beta.yaml").write_text(simulation("beta", 1, DEADLINE))
        scoped = await steps.step(full=False)
        assert scoped.plan.requeue_after is not None
        assert scoped.plan.requeue_after > first.plan.requeue_after  # beta's alone
        assert scoped.due == first.plan.requeue_after

    async def test_the_first_step_is_full_whatever_is_asked(self, tmp_path: Path) -> None:
        clock = FakeClock()
        backend = FakeBackend(clock)
        await reconciler(specs_dir(tmp_path, alpha=1), backend, clock).step(full=False)
        assert backend.observations == [None]


class TestStatusAfterExecution:
    async def test_a_steps_status_shows_what_it_started(self, tmp_path: Path) -> None:
        clock = FakeClock()
        backend = FakeBackend(clock, nodes_arrive=False)
        result = await reconciler(specs_dir(tmp_path, alpha=3), backend, clock).step()
        before = next(s for s in result.plan.status.simulations if s.name == "alpha")
        after = next(s for s in result.status.simulations if s.name == "alpha")
        assert (before.created_at, before.up_to_date) == (None, 0)  # as observed: nothing
        assert (after.created_at, after.up_to_date) == (clock(), 3)  # its job and simulators
        assert [s.state for s in after.simulators] == [SimulatorState.PENDING.value] * 3
        assert [p.state for p in result.plan.status.pools] == ["creating"]
        assert [p.state for p in result.status.pools] == ["resizing"]


class Throttled(FakeBackend):
    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        raise TransientBackendError("429", code="429", retry_after=30.0)


class TestRetryAfterWindow:
    async def test_a_throttled_observation_opens_the_window_on_the_injected_clock(
        self, tmp_path: Path
    ) -> None:
        clock = FakeClock()
        steps = reconciler(specs_dir(tmp_path, alpha=1), Throttled(clock), clock)
        with pytest.raises(TransientBackendError):
            await steps.step()
        assert steps.window.remaining() == 30.0
        clock.advance(12)
        assert steps.window.remaining() == 18.0
        clock.advance(20)
        assert steps.window.remaining() == 0.0
