"""``make bench``: figures for the claims the tests only check loosely.

1. Planner cost: ``plan()`` for fleets of 100 to 10,000 simulators, from nothing and
   when converged (the daemon's steady state).
2. Edit latency: the real daemon with the local backend; the time from writing a spec
   file that scales a simulation up by one to ``/status`` showing the new simulator
   running. product.md promises "within a fraction of a second".

Prints a table; run on an idle machine for stable figures.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from controller.planner import Desired, DesiredSimulation, plan
from controller.spec import PoolSpec, SimulationSpec
from controller.testing import FakeBackend, FakeClock


def planner_figures() -> None:
    print("planner: plan() wall time")
    print(f"  {'simulators':>10}  {'from nothing':>13}  {'converged':>10}")
    for size in (100, 1_000, 10_000):
        pool = PoolSpec.model_validate(
            {"vmSize": "d4", "taskSlotsPerNode": 4, "nodes": {"dedicated": "auto", "max": 5000}}
        )
        sim = SimulationSpec.model_validate(
            {"pool": "p", "simulators": size, "image": "i", "command": "x"}
        )
        desired = Desired(pools={"p": pool}, simulations={"s": DesiredSimulation("s", sim)})
        clock = FakeClock()
        backend = FakeBackend(clock)
        started = time.perf_counter()
        first = plan(desired, backend.snapshot(), clock())
        cold = time.perf_counter() - started
        for action in first.actions:
            backend.apply(action)
        snapshot = backend.snapshot()
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            again = plan(desired, snapshot, clock())
            runs.append(time.perf_counter() - started)
        assert again.actions == ()
        print(f"  {size:>10}  {cold * 1000:>10.1f} ms  {statistics.median(runs) * 1000:>7.1f} ms")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int, name: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as response:
        for sim in json.load(response)["simulations"]:
            if sim["name"] == name:
                return int(sim["ready"])
    return -1


SPEC = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {{name: sims}}
spec: {{vmSize: d2, taskSlotsPerNode: 50, nodes: {{dedicated: 1}}}}
---
apiVersion: simfleet/v1
kind: Simulation
metadata: {{name: bench}}
spec: {{pool: sims, simulators: {n}, image: bench:1, command: [sleep, "600"]}}
"""


def edit_latency(rounds: int = 10) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "specs").mkdir()
        spec = root / "specs" / "bench.yaml"
        spec.write_text(SPEC.format(n=1))
        port = _port()
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "controller",
                "run",
                "--specs",
                str(root / "specs"),
                "--state-dir",
                str(root / "state"),
                "--listen",
                f"127.0.0.1:{port}",
                "--log-format",
                "json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if _ready(port, "bench") == 1:
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            samples = []
            for n in range(2, rounds + 2):
                tmp_file = spec.with_name(".bench.yaml.tmp")
                tmp_file.write_text(SPEC.format(n=n))
                started = time.perf_counter()
                os.replace(tmp_file, spec)
                while _ready(port, "bench") != n:
                    time.sleep(0.005)
                samples.append(time.perf_counter() - started)
            print(f"edit latency: spec written → new simulator running in /status ({rounds} edits)")
            print(
                f"  median {statistics.median(samples) * 1000:.0f} ms, "
                f"max {max(samples) * 1000:.0f} ms, min {min(samples) * 1000:.0f} ms"
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)


if __name__ == "__main__":
    planner_figures()
    edit_latency()
