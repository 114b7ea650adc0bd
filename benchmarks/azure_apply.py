"""Requests one ``simfleet apply --wait`` makes to bring N simulators from nothing to running.

Starts the Batch emulator (tests/batch_emulator) in its own process, runs the real
``simfleet apply --wait --backend azure`` against it, and prints the emulator's request
counters by operation beside the lower bound: one job, ⌈N/100⌉ task collections and the
pool's creation. Observation requests (lists, task counts) depend on how many passes the
pool's allocation takes and are printed separately.

    python benchmarks/azure_apply.py [N]
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the emulator lives in tests/
SPEC = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {{name: sims}}
spec: {{vmSize: standard_d4s_v5, taskSlotsPerNode: 4, nodes: {{dedicated: auto, max: {nodes}}}}}
---
apiVersion: simfleet/v1
kind: Simulation
metadata: {{name: bench}}
spec: {{pool: sims, simulators: {n}, image: "bench/sim:1", command: [sleep, "600"]}}
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _state(url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/_emulator/state", timeout=10) as response:
        result: dict[str, object] = json.load(response)
        return result


def main(n: int) -> None:
    from tests.batch_emulator._config import DEFAULT_ACCOUNT, DEFAULT_KEY

    port = _port()
    url = f"http://127.0.0.1:{port}"
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.batch_emulator",
            "--port",
            str(port),
            "--conformance",
            "--allocation-delay",
            "2",
            "--node-start-delay",
            "1",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _state(url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            specs = Path(tmp) / "specs"
            specs.mkdir()
            (specs / "bench.yaml").write_text(SPEC.format(n=n, nodes=math.ceil(n / 4)))
            env = {
                **os.environ,
                "AZURE_BATCH_ENDPOINT": url,
                "AZURE_BATCH_ACCOUNT": DEFAULT_ACCOUNT,
                "AZURE_BATCH_ACCESS_KEY": DEFAULT_KEY,
            }
            started = time.monotonic()
            apply = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "controller",
                    "apply",
                    "--wait",
                    "--timeout",
                    "300",
                    "--backend",
                    "azure",
                    "--specs",
                    str(specs),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.monotonic() - started
        state = _state(url)
    finally:
        emulator.terminate()
        emulator.wait(10)
    counters: dict[str, dict[str, int]] = state["counters"]  # type: ignore[assignment]
    passes = sum(counters.get("Pools_ListPools", {}).values())  # one observation per pass
    print(
        f"simfleet apply --wait: {n} simulators from nothing to running, "
        f"exit {apply.returncode}, {seconds:.1f}s wall, {passes} passes"
    )
    print(f"  {'operation':<34} {'requests':>8}  outcomes")
    total = 0
    for operation in sorted(counters):
        outcomes = counters[operation]
        count = sum(outcomes.values())
        total += count
        print(f"  {operation:<34} {count:>8}  {outcomes}")
    print(f"  {'total':<34} {total:>8}")
    writes = {
        op: sum(v.values())
        for op, v in counters.items()
        if op.startswith(("Pools_Create", "Pools_Resize", "Jobs_Create", "Tasks_Create"))
    }
    bound = 1 + math.ceil(n / 100) + 1
    print(
        f"  writes: {sum(writes.values())} (lower bound {bound}: 1 job, "
        f"{math.ceil(n / 100)} collections, 1 pool)"
    )
    print(f"  spec violations seen by the emulator: {len(state['violations'])}")  # type: ignore[arg-type]
    if apply.returncode != 0:
        print(apply.stdout[-2000:], apply.stderr[-2000:])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
