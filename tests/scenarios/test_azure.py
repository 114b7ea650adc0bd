"""Scenarios only Azure Batch has: Spot preemption, core quotas, throttling windows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import EmulatorDriver, Fleet, wait_until


@pytest.fixture
def azure_fleet(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    extra = getattr(request, "param", ())
    fleet = Fleet(root=tmp_path, driver=EmulatorDriver(tmp_path, *extra))
    fleet.specs.mkdir()
    yield fleet
    fleet.cleanup()


def emulator(fleet: Fleet) -> EmulatorDriver:
    assert isinstance(fleet.driver, EmulatorDriver)
    return fleet.driver


def spot_pool(nodes: int) -> str:
    return (
        "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: sims}\n"
        f"spec: {{vmSize: standard_d2s_v5, taskSlotsPerNode: 2, nodes: {{dedicated: 0, "
        f"spot: {nodes}}}}}\n"
    )


def test_spot_preemption_requeues_without_a_duplicate(azure_fleet: Fleet) -> None:
    fleet = azure_fleet
    fleet.write("pool.yaml", spot_pool(3))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 4))
    fleet.start()
    fleet.wait_sim("alpha", lambda s: s["ready"] == 4)
    ids_before = set(emulator(fleet).tasks()["alpha"])
    emulator(fleet).control("POST", "preempt", {"poolId": "sims", "count": 1})
    fleet.wait_sim("alpha", lambda s: s["ready"] == 4, timeout=20)
    time.sleep(2.5)  # a resync later: still no new task for a requeued one
    assert set(emulator(fleet).tasks()["alpha"]) == ids_before


@pytest.mark.parametrize("azure_fleet", [("--core-quota", "4")], indirect=True)
def test_a_core_quota_error_shows_in_status(azure_fleet: Fleet) -> None:
    fleet = azure_fleet
    fleet.write("pool.yaml", fleet.pool(nodes=4, slots=1))  # 4 × 2 cores > quota 4
    fleet.write("alpha.yaml", fleet.simulation("alpha", 4))
    fleet.start()

    def pool_message() -> str:
        pools = fleet.status()["pools"]
        return str(pools[0]["message"]) if pools else ""

    message = wait_until(lambda: "AccountCoreQuotaReached" in pool_message() and pool_message())
    assert "resize error" in message
    fleet.wait_sim("alpha", lambda s: s["ready"] == 2)  # what fits runs


def test_no_request_is_sent_inside_a_retry_after_window(azure_fleet: Fleet) -> None:
    fleet = azure_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
    fleet.start()
    fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
    driver = emulator(fleet)
    driver.control("POST", "faults", {"fault": "throttle", "retryAfter": 2, "times": 1})
    fleet.write("alpha.yaml", fleet.simulation("alpha", 3))  # makes the daemon call now
    fleet.wait_sim("alpha", lambda s: s["ready"] == 3, timeout=20)
    state = driver.state()
    throttled = sum(n.get("429", 0) for n in state["counters"].values())
    assert throttled == 1
    assert state["earlyArrivals"] == []


def test_logs_come_through_the_task_file_api_with_the_exit_in_status(azure_fleet: Fleet) -> None:
    fleet = azure_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("alpha.yaml", fleet.simulation("alpha", 1, extra="  restartPolicy: Never\n"))
    fleet.start()
    sim = fleet.wait_sim("alpha", lambda s: s["ready"] == 1)
    task = sim["simulators"][0]["id"]
    emulator(fleet).control(
        "POST",
        "finish-task",
        {
            "jobId": "alpha",
            "taskId": task,
            "exitCode": 2,
            "stdout": "episode=1 reward=3.0\n",
            "stderr": "Traceback: boom\n",
        },
    )
    row = fleet.wait_sim("alpha", lambda s: s["simulators"][0]["state"] == "failed")
    assert row["simulators"][0]["lastExit"]["exitCode"] == 2
    env = {**os.environ, **fleet.driver.env()}

    def logs(*extra: str) -> str:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "controller",
                "logs",
                "alpha",
                "0",
                "--backend",
                "azure",
                *extra,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout

    assert logs() == "episode=1 reward=3.0\n"
    assert logs("--stderr", "--tail", "1") == "Traceback: boom\n"


def test_metrics_count_the_batch_requests_by_operation(azure_fleet: Fleet) -> None:
    fleet = azure_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
    fleet.start()
    fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
    url = f"http://127.0.0.1:{fleet.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        metrics = response.read().decode()
    added = (
        'simfleet_backend_http_requests_total{operation="POST /jobs/{id}/addtaskcollection",'
        'outcome="200"} 1.0'
    )
    assert added in metrics
    assert 'operation="GET /jobs/{id}/taskcounts"' in metrics
    assert 'simfleet_simulators_ready{simulation="alpha"} 3.0' in metrics
