"""The control loop with real files, the real watcher and real HTTP, over the FakeBackend.

These tests check the daemon's plumbing — reacting to edits, coalescing, status, health,
metrics, error handling — quickly and deterministically. The same behaviours against real
processes live in tests/scenarios.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controller.backends import TransientBackendError
from controller.daemon import Controller, DaemonConfig, utc_now
from controller.planner import Observed
from controller.testing import FakeBackend
from tests.daemon.conftest import POOL, get, simulation, until


def sim_status(controller: Controller, name: str) -> dict[str, Any]:
    return next(s for s in controller.status()["simulations"] if s["name"] == name)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Controller, FakeBackend, Path]]:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(POOL)
    (specs / "a.yaml").write_text(simulation("alpha", 2))
    backend = FakeBackend(clock=utc_now)
    controller = Controller(
        DaemonConfig(specs=specs, port=0, resync=30.0), backend, environ={"KEY": "s3cr3t-value"}
    )
    task = asyncio.create_task(controller.run())
    await asyncio.wait_for(controller.ready.wait(), 10)
    # The first step's status shows its simulators pending (what it did); the backend's
    # word that they started brings the step that sees them running.
    await until(lambda: sim_status(controller, "alpha")["ready"] == 2)
    yield controller, backend, specs
    controller.stop()
    await asyncio.wait_for(task, 10)


class TestControlLoop:
    async def test_first_pass_converges_and_readyz_turns_200(self, daemon: Any) -> None:
        controller, backend, _ = daemon
        assert len(backend.live_tasks("alpha")) == 2
        assert (await get(controller, "/readyz"))[0] == 200
        assert (await get(controller, "/healthz"))[0] == 200

    async def test_an_edit_is_applied_without_waiting_for_resync(self, daemon: Any) -> None:
        controller, backend, specs = daemon
        (specs / "a.yaml").write_text(simulation("alpha", 5))
        await until(lambda: len(backend.live_tasks("alpha")) == 5, timeout=5)
        await until(lambda: sim_status(controller, "alpha")["ready"] == 5)

    async def test_a_backend_change_wakes_the_loop(self, daemon: Any) -> None:
        controller, backend, _ = daemon
        victim = backend.live_tasks("alpha")[0]
        backend.crash("alpha", victim.id, exit_code=3)
        await until(lambda: sim_status(controller, "alpha")["message"] != "")
        assert "exited with code 3" in sim_status(controller, "alpha")["message"]

    async def test_a_broken_file_keeps_its_last_good_version(self, daemon: Any) -> None:
        controller, backend, specs = daemon
        (specs / "b.yaml").write_text(simulation("beta", 1))
        await until(lambda: len(backend.live_tasks("beta")) == 1)
        (specs / "b.yaml").write_text(simulation("beta", 1) + "  simulatorz: [\n")
        await until(lambda: controller.status()["errors"] != [])
        error = controller.status()["errors"][0]
        assert error["file"].endswith("b.yaml")
        assert error["line"] >= 1
        (specs / "a.yaml").write_text(simulation("alpha", 3))
        await until(lambda: len(backend.live_tasks("alpha")) == 3)
        assert len(backend.live_tasks("beta")) == 1  # neither deleted nor changed
        assert (
            "b.yaml has errors; its last good version stays in force"
            in (sim_status(controller, "beta")["message"])
        )

    async def test_removing_a_file_prunes_its_simulation(self, daemon: Any) -> None:
        _, backend, specs = daemon
        (specs / "a.yaml").unlink()
        await until(lambda: "alpha" not in backend.jobs)

    async def test_emptying_the_directory_prunes_nothing(self, daemon: Any) -> None:
        controller, backend, specs = daemon
        for file in specs.iterdir():
            file.unlink()
        await until(lambda: "not pruned" in json.dumps(controller.status()))
        assert len(backend.live_tasks("alpha")) == 2

    async def test_status_and_metrics_never_show_a_secret(self, daemon: Any) -> None:
        controller, backend, specs = daemon
        before = sim_status(controller, "alpha")["revision"]
        extra = "  secretEnv:\n    API_KEY: {fromEnv: KEY}\n"
        (specs / "a.yaml").write_text(simulation("alpha", 2, extra))
        await until(
            lambda: (
                sim_status(controller, "alpha")["revision"] != before
                and sim_status(controller, "alpha")["upToDate"] == 2
                and sim_status(controller, "alpha")["ready"] == 2
                and sim_status(controller, "alpha")["message"] == ""
                and len(backend.live_tasks("alpha")) == 2  # the old ones are gone too
            ),
            timeout=15,
        )
        victim = backend.live_tasks("alpha")[0]
        backend.crash("alpha", victim.id, exit_code=1, stderr="auth failed for s3cr3t-value\n")
        await until(lambda: "failing" in sim_status(controller, "alpha")["message"])
        _, body = await get(controller, "/status")
        _, metrics = await get(controller, "/metrics")
        assert "auth failed for ****" in body  # the simulator's own words, secret masked
        assert "s3cr3t-value" not in body
        assert "s3cr3t-value" not in metrics
        assert 'simfleet_simulators_ready{simulation="alpha"} 1.0' in metrics

    async def test_a_missing_secret_is_a_spec_error_and_changes_nothing(self, daemon: Any) -> None:
        controller, backend, specs = daemon
        before = {t.id for t in backend.live_tasks("alpha")}
        extra = "  secretEnv:\n    API_KEY: {fromEnv: NOT_SET_ANYWHERE}\n"
        (specs / "a.yaml").write_text(simulation("alpha", 2, extra))
        await until(lambda: controller.status()["errors"] != [])
        error = controller.status()["errors"][0]
        assert "NOT_SET_ANYWHERE is not set" in error["message"]
        assert error["line"] == 10
        (specs / "b.yaml").write_text(simulation("beta", 1))  # more passes run meanwhile
        await until(lambda: len(backend.live_tasks("beta")) == 1)
        assert {t.id for t in backend.live_tasks("alpha")} == before  # left as it was


class TestSymlinkSwap:
    """git-sync publishes each commit as a new folder and re-points a symlink atomically."""

    async def test_a_swapped_specs_link_is_followed(self, tmp_path: Path) -> None:
        versions = tmp_path / ".worktrees"
        for version, count in (("v1", 2), ("v2", 4)):
            (versions / version).mkdir(parents=True)
            (versions / version / "pool.yaml").write_text(POOL)
            (versions / version / "a.yaml").write_text(simulation("alpha", count))
        link = tmp_path / "specs"
        link.symlink_to(versions / "v1")
        backend = FakeBackend(clock=utc_now)
        controller = Controller(DaemonConfig(specs=link, port=0, resync=30.0), backend)
        task = asyncio.create_task(controller.run())
        try:
            await asyncio.wait_for(controller.ready.wait(), 10)
            assert len(backend.live_tasks("alpha")) == 2
            swap = tmp_path / "specs.tmp"
            swap.symlink_to(versions / "v2")
            swap.replace(link)  # rename(2) over the old link: atomic
            await until(lambda: len(backend.live_tasks("alpha")) == 4, timeout=5)
        finally:
            controller.stop()
            await asyncio.wait_for(task, 10)


class ThrottledOnce(FakeBackend):
    """Answers one observation with 429 + Retry-After, and records when it was called."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(clock=utc_now)
        self.retry_after = retry_after
        self.calls: list[float] = []
        self.throttle_next = False

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        self.calls.append(time.monotonic())
        if self.throttle_next:
            self.throttle_next = False
            raise TransientBackendError(
                "429 TooManyRequests", code="429", retry_after=self.retry_after
            )
        return await super().observe(jobs)


class TestThrottling:
    async def test_no_call_inside_a_retry_after_window_even_when_a_file_changes(
        self, tmp_path: Path
    ) -> None:
        specs = tmp_path / "specs"
        specs.mkdir()
        (specs / "pool.yaml").write_text(POOL)
        (specs / "a.yaml").write_text(simulation("alpha", 1))
        backend = ThrottledOnce(retry_after=1.5)
        controller = Controller(DaemonConfig(specs=specs, port=0, resync=30.0), backend)
        task = asyncio.create_task(controller.run())
        try:
            await asyncio.wait_for(controller.ready.wait(), 10)
            await until(lambda: len(backend.live_tasks("alpha")) == 1)
            backend.throttle_next = True
            (specs / "a.yaml").write_text(simulation("alpha", 2))  # wakes: throttled
            await until(lambda: not backend.throttle_next)
            throttled_at = backend.calls[-1]
            (specs / "a.yaml").write_text(simulation("alpha", 3))  # wakes inside the window
            await until(lambda: len(backend.live_tasks("alpha")) == 3, timeout=10)
            after = [t for t in backend.calls if t > throttled_at]
            assert after, "the loop never called the backend again"
            assert min(after) - throttled_at >= 1.5
        finally:
            controller.stop()
            await asyncio.wait_for(task, 10)

    async def test_writes_beside_a_linked_specs_dir_do_not_wake_the_loop(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "v1").mkdir()
        (tmp_path / "v1" / "pool.yaml").write_text(POOL)
        (tmp_path / "v1" / "a.yaml").write_text(simulation("alpha", 1))
        link = tmp_path / "specs"
        link.symlink_to(tmp_path / "v1")
        noisy = tmp_path / ".simfleet" / "local" / "jobs"
        noisy.mkdir(parents=True)
        backend = ThrottledOnce(retry_after=0)  # records every observation
        controller = Controller(DaemonConfig(specs=link, port=0, resync=30.0), backend)
        task = asyncio.create_task(controller.run())
        try:
            await asyncio.wait_for(controller.ready.wait(), 10)
            await until(lambda: len(backend.live_tasks("alpha")) == 1)
            await asyncio.sleep(0.5)  # let the start-up passes settle
            before = len(backend.calls)
            for n in range(20):  # a simulator writing its output
                (noisy / "stdout.txt").write_text("episode\n" * n)
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)
            assert len(backend.calls) == before
            (tmp_path / "v1" / "a.yaml").write_text(simulation("alpha", 2))  # still watched
            await until(lambda: len(backend.live_tasks("alpha")) == 2)
        finally:
            controller.stop()
            await asyncio.wait_for(task, 10)


async def test_a_relative_linked_specs_path_still_sees_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: with ``--specs specs`` (relative) as a link, every event was filtered."""
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "pool.yaml").write_text(POOL)
    (tmp_path / "v1" / "a.yaml").write_text(simulation("alpha", 1))
    (tmp_path / "specs").symlink_to(tmp_path / "v1")
    monkeypatch.chdir(tmp_path)
    backend = FakeBackend(clock=utc_now)
    controller = Controller(DaemonConfig(specs=Path("specs"), port=0, resync=30.0), backend)
    task = asyncio.create_task(controller.run())
    try:
        await asyncio.wait_for(controller.ready.wait(), 10)
        await until(lambda: len(backend.live_tasks("alpha")) == 1)
        (tmp_path / "v1" / "a.yaml").write_text(simulation("alpha", 2))
        await until(lambda: len(backend.live_tasks("alpha")) == 2, timeout=5)
    finally:
        controller.stop()
        await asyncio.wait_for(task, 10)


class StatusAtEachObservation(FakeBackend):
    """Records, at each observation, what ``/status`` said about beta at that moment."""

    def __init__(self) -> None:
        super().__init__(clock=utc_now, nodes_arrive=False)  # nothing starts: no events
        self.controller: Controller | None = None
        self.beta_seen: list[list[str]] = []

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        if self.controller is not None:
            rows = [s for s in self.controller.status()["simulations"] if s["name"] == "beta"]
            self.beta_seen.append([r["state"] for s in rows for r in s["simulators"]])
        return await super().observe(jobs)


class TestIncrementalPasses:
    """A spec edit costs a pass over what it changed, whose status needs no second pass."""

    async def test_an_edit_is_a_scoped_pass_whose_status_shows_what_it_did(
        self, tmp_path: Path
    ) -> None:
        specs = tmp_path / "specs"
        specs.mkdir()
        (specs / "pool.yaml").write_text(POOL)
        (specs / "a.yaml").write_text(simulation("alpha", 1))
        backend = StatusAtEachObservation()
        controller = Controller(DaemonConfig(specs=specs, port=0, resync=30.0), backend)
        backend.controller = controller
        task = asyncio.create_task(controller.run())
        try:
            await asyncio.wait_for(controller.ready.wait(), 10)
            await until(lambda: len(backend.observations) == 2)  # the first step's recheck
            assert backend.observations == [None, frozenset({"alpha"})]
            (specs / "b.yaml").write_text(simulation("beta", 3))
            # the edit's step, then the recheck of what it acted on: beta alone, no full
            # pass; and by the recheck, /status already showed beta's three new simulators
            await until(lambda: len(backend.observations) == 4)
            assert backend.observations[2:] == [frozenset({"beta"})] * 2
            assert backend.beta_seen[2:] == [[], ["pending"] * 3]
        finally:
            controller.stop()
            await asyncio.wait_for(task, 10)

    async def test_a_backend_event_brings_a_full_pass(self, daemon: Any) -> None:
        _, backend, _ = daemon
        count = len(backend.observations)
        backend.crash("alpha", backend.live_tasks("alpha")[0].id)
        await until(lambda: len(backend.observations) > count)
        assert backend.observations[count] is None
