"""The real daemon (``python -m controller run``) under faults of its own: a restart that
cannot bind, SIGHUP, slow and malformed HTTP clients, a crash-looping simulation and a
state directory inside the specs directory. Simulators are real local processes."""

from __future__ import annotations

import json
import resource
import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.clients import closed_by_server, half_headers
from tests.scenarios.conftest import Fleet, wait_until

pytestmark = pytest.mark.slow


def running_pids(fleet: Fleet, simulation: str, count: int) -> set[int]:
    """Wait until ``count`` simulators run, as /status and the process table both say."""
    sim = fleet.wait_sim(simulation, lambda s: s["ready"] == count, timeout=30)
    pids = {row["pid"] for row in sim["simulators"] if row["state"] == "running"}
    wait_until(lambda: {str(p) for p in pids} <= fleet.simulators(), what="the processes")
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def log_events(fleet: Fleet, since: int = 0) -> list[dict[str, Any]]:
    """The daemon's JSON log lines written after byte ``since``."""
    events = []
    for line in fleet.log()[since:].splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def metric(fleet: Fleet, name: str) -> float:
    url = f"http://127.0.0.1:{fleet.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def test_a_restart_with_the_port_taken_fails_in_one_line_and_leaves_the_fleet_running(
    local_fleet: Fleet,
) -> None:
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
    fleet.start()
    pids = running_pids(fleet, "alpha", 3)
    fleet.kill9()
    with socket.socket() as holder:  # the port is taken when the daemon comes back
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        holder.bind(("127.0.0.1", fleet.port))
        holder.listen()
        before = len(fleet.log())
        with pytest.raises(AssertionError, match="daemon exited with 1"):
            fleet.start()
    output = fleet.log()[before:].strip().splitlines()
    assert output == [f"Error: cannot listen on 127.0.0.1:{fleet.port}: address already in use"]
    assert all(alive(pid) for pid in pids), "a failed start stopped simulators"
    fleet.start()  # a proper restart adopts them: same processes, none added
    assert running_pids(fleet, "alpha", 3) == pids
    assert fleet.doubled_slots("alpha") == []
    assert len(fleet.simulators()) == 3


def test_sighup_is_a_clean_logged_stop(local_fleet: Fleet) -> None:
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
    fleet.start()
    pids = running_pids(fleet, "alpha", 2)
    assert fleet.process is not None
    fleet.process.send_signal(signal.SIGHUP)
    assert fleet.process.wait(30) == 0
    events = [e["event"] for e in log_events(fleet)]
    assert "stopping" in events
    assert events[-2:] == ["stopped", "lease_released"]  # a standby may take over now
    stopping = next(e for e in log_events(fleet) if e["event"] == "stopping")
    assert stopping["signal"] == "SIGHUP"
    wait_until(lambda: not any(alive(p) for p in pids), timeout=20, what="simulators to stop")
    assert fleet.simulators() == set()  # nothing left unsupervised


def test_slow_clients_are_dropped_and_healthz_answers_meanwhile(local_fleet: Fleet) -> None:
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.start()
    started = time.monotonic()
    clients = half_headers(fleet.port, 100)
    try:
        for _ in range(3):
            began = time.monotonic()
            url = f"http://127.0.0.1:{fleet.port}/healthz"
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
            assert time.monotonic() - began < 2.0
        deadline = started + 10.0 + 5.0  # the default request timeout, and some slack
        held = [c for c in clients if not closed_by_server(c, deadline)]
        assert not held, f"{len(held)} of 100 slow clients still held after 15s"
    finally:
        for client in clients:
            client.close()
    lines = [e for e in log_events(fleet) if e["event"] == "http_connections_dropped"]
    assert 1 <= len(lines) <= 4  # counted, not one line per client


def test_a_malformed_request_is_one_log_line(local_fleet: Fleet) -> None:
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.start()
    with socket.create_connection(("127.0.0.1", fleet.port), timeout=5) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: secret-ish\xff\r\n\r\n")
        assert b" 400 " in client.recv(1024).split(b"\r\n")[0]
    wait_until(lambda: "http_bad_request" in fleet.log(), what="the log line")
    assert "Traceback" not in fleet.log()
    lines = [e for e in log_events(fleet) if e["event"] == "http_bad_request"]
    assert len(lines) == 1
    assert len(lines[0]["error"]) <= 120


def test_a_crash_loop_warns_with_its_exit_code_and_does_not_flood_the_log(
    local_fleet: Fleet,
) -> None:
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool(nodes=4))
    crashing = fleet.simulation("crashy", 12, command='["sh", "-c", "exit 3"]').replace(
        "restartBackoff: {initial: 1s, max: 4s, resetAfter: 1m}",
        "restartBackoff: {initial: 1s, max: 1s, resetAfter: 1m}",
    )
    fleet.write("crashy.yaml", crashing)
    fleet.start()
    fleet.wait_sim("crashy", lambda s: s["restarts"] >= 12, timeout=30)
    mark, window = len(fleet.log()), 5.0
    time.sleep(window)  # the measurement window itself
    lines = fleet.log()[mark:].splitlines()
    assert len(lines) / window <= 5, f"{len(lines)} log lines in {window}s"
    warnings = [e for e in log_events(fleet) if e["event"] == "simulation_failing"]
    assert len(warnings) == 1  # once per simulation per minute
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["exit_code"] == 3
    assert warnings[0]["simulation"] == "crashy"


def test_output_in_a_state_dir_inside_specs_wakes_no_passes(local_fleet: Fleet) -> None:
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool())
    chatty = '["sh", "-c", "while :; do echo episode; sleep 0.01; done"]'
    fleet.write("chatty.yaml", fleet.simulation("chatty", 2, command=chatty))
    fleet.start("--state-dir", "specs/state", "--resync", "30")
    fleet.wait_sim("chatty", lambda s: s["ready"] == 2, timeout=30)
    wait_until(lambda: any((fleet.specs / "state").rglob("stdout*")), what="simulator output")
    time.sleep(1.0)  # let the start-up passes settle
    before = metric(fleet, "simfleet_reconcile_duration_seconds_count")
    time.sleep(3.0)  # 600 output lines are written meanwhile
    passes = metric(fleet, "simfleet_reconcile_duration_seconds_count") - before
    assert passes <= 2, f"{passes:.0f} passes in 3s while simulators wrote output"
    assert (fleet.specs / "state" / "local").is_dir()  # the state really is inside specs


def test_at_a_low_descriptor_limit_clients_cannot_starve_the_daemon(local_fleet: Fleet) -> None:
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("alpha.yaml", fleet.simulation("alpha", 1))
    fleet.start()
    running_pids(fleet, "alpha", 1)
    assert fleet.process is not None
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.prlimit(fleet.process.pid, resource.RLIMIT_NOFILE, (128, hard))
    clients = half_headers(fleet.port, 300)
    try:
        url = f"http://127.0.0.1:{fleet.port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
        fleet.write("alpha.yaml", fleet.simulation("alpha", 2))  # specs still readable
        running_pids(fleet, "alpha", 2)
    finally:
        for client in clients:
            client.close()
    assert "Traceback" not in fleet.log()
    assert fleet.log().count("accept") <= 2
