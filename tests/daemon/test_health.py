"""The loop says when it is not doing its job: failed passes and a missing specs directory
show in ``/healthz``, ``/readyz``, ``/status`` and ``/metrics``, and in the log."""

from __future__ import annotations

from pathlib import Path

import structlog

from controller.backends import TransientBackendError
from controller.daemon import Controller, DaemonConfig, utc_now
from controller.daemon._health import Health
from controller.planner import Observed
from controller.testing import FakeBackend
from tests.daemon.conftest import POOL, get, running, simulation, until


class Failing(FakeBackend):
    """Observation fails with ``error`` while it is set."""

    def __init__(self) -> None:
        super().__init__(clock=utc_now)
        self.error: Exception | None = None

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        if self.error is not None:
            raise self.error
        return await super().observe(jobs)


def specs_with_one_simulation(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(POOL)
    (specs / "a.yaml").write_text(simulation("alpha", 1))
    return specs


def failed_passes(controller: Controller) -> int:
    count: int = controller.status()["controller"]["consecutiveFailedPasses"]
    return count


class TestFailedPasses:
    async def test_failing_passes_turn_healthz_red_and_show_in_status_and_metrics(
        self, tmp_path: Path
    ) -> None:
        backend = Failing()
        config = DaemonConfig(specs=specs_with_one_simulation(tmp_path), port=0, resync=0.2)
        async with running(Controller(config, backend)) as controller:
            assert (await get(controller, "/healthz"))[0] == 200
            backend.error = TransientBackendError("observe: 503 ServerBusy", code="ServerBusy")
            await until(lambda: failed_passes(controller) >= 3)
            status, body = await get(controller, "/healthz")
            assert status == 503
            assert "passes in a row failed: observe: 503 ServerBusy" in body
            document = controller.status()["controller"]
            assert document["lastError"] == "observe: 503 ServerBusy"
            assert document["healthy"] is False
            _, metrics = await get(controller, "/metrics")
            gauge = next(
                line
                for line in metrics.splitlines()
                if line.startswith("simfleet_consecutive_failed_passes ")
            )
            assert float(gauge.split()[1]) >= 3
            backend.error = None  # the backend comes back: so does health
            await until(lambda: failed_passes(controller) == 0)
            assert (await get(controller, "/healthz"))[0] == 200
            assert controller.status()["controller"]["lastError"] == ""

    async def test_an_unexpected_error_is_a_failed_pass_and_one_log_line(
        self, tmp_path: Path
    ) -> None:
        backend = Failing()
        config = DaemonConfig(specs=specs_with_one_simulation(tmp_path), port=0, resync=0.2)
        async with running(Controller(config, backend)) as controller:
            with structlog.testing.capture_logs() as logs:
                backend.error = RuntimeError("a bug")
                await until(lambda: failed_passes(controller) >= 3)
            assert controller.status()["controller"]["lastError"] == "RuntimeError: a bug"
            failures = [e for e in logs if e["event"] == "pass_failed"]
            assert failures
            assert all("exc_info" not in e and "exception" not in e for e in failures)
            assert failures[0]["error"] == "RuntimeError: a bug"
            assert failures[0]["at"].startswith("test_health.py:")
            assert (await get(controller, "/healthz"))[0] == 503

    async def test_one_failed_pass_is_not_yet_unhealthy(self, tmp_path: Path) -> None:
        backend = Failing()
        config = DaemonConfig(specs=specs_with_one_simulation(tmp_path), port=0, resync=30)
        async with running(Controller(config, backend)) as controller:
            backend.error = TransientBackendError("observe: 500", code="InternalError")
            controller.wake()
            await until(lambda: failed_passes(controller) == 1)
            assert (await get(controller, "/healthz"))[0] == 200


class TestMissingSpecsDirectory:
    async def test_a_missing_specs_directory_is_said_loudly_until_it_exists(
        self, tmp_path: Path
    ) -> None:
        specs = tmp_path / "spec"  # mistyped: the user meant "specs"
        backend = FakeBackend(clock=utc_now)
        controller = Controller(DaemonConfig(specs=specs, port=0, resync=30.0), backend)
        with structlog.testing.capture_logs() as logs:
            async with running(controller):
                status, body = await get(controller, "/readyz")
                assert status == 503
                assert f"the specs directory {specs} does not exist" in body
                assert "does not exist" in controller.status()["controller"]["message"]
                _, metrics = await get(controller, "/metrics")
                assert "simfleet_specs_directory_missing 1.0" in metrics
                specs.mkdir()
                (specs / "pool.yaml").write_text(POOL)
                (specs / "a.yaml").write_text(simulation("alpha", 1))
                await until(lambda: len(backend.live_tasks("alpha")) == 1)
                await until(lambda: controller.readiness()[0])
                assert (await get(controller, "/readyz"))[0] == 200
                assert controller.status()["controller"]["message"] == ""
        warnings = [e for e in logs if e["event"] == "specs_missing"]
        assert len(warnings) == 1  # said once, not on every pass
        assert warnings[0]["log_level"] == "warning"
        assert any(e["event"] == "specs_found" for e in logs)

    async def test_a_specs_path_that_is_a_file_is_said_too(self, tmp_path: Path) -> None:
        specs = tmp_path / "fleet.yaml"
        specs.write_text(POOL)
        controller = Controller(DaemonConfig(specs=specs, port=0), FakeBackend(clock=utc_now))
        async with running(controller):
            status, body = await get(controller, "/readyz")
        assert status == 503
        assert "is not a directory" in body


def test_a_pass_that_never_ends_is_a_stuck_loop() -> None:
    now = [0.0]
    health = Health(threshold=3, stuck_after=120.0, clock=lambda: now[0])
    health.succeeded()
    health.started()
    now[0] = 119.0
    assert health.healthy() == (True, "ok")
    now[0] = 121.0
    assert health.healthy() == (False, "a pass has been running for 121s")
    assert health.document()["message"] == "a pass has been running for 121s"
    health.succeeded()
    assert health.healthy() == (True, "ok")
