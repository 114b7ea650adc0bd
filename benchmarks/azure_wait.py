"""``simfleet apply --wait`` while the pool's nodes come up: requests per second.

The emulator delays node allocation (``--allocation-delay``, then ``--node-start-delay``
before a node is idle), so after its writes ``apply --wait`` has nothing to do but wait
for nodes. The figure is the request rate in that span: from the last write's answer to
the moment the nodes are usable (pool creation + both delays), 10 ms injected latency.

Lower bound: while a pool has no usable nodes there is nothing to learn from any job, so
a client polls the pool alone, backing off 1, 2, 4, 8, then every 15 s; its rate over the
same span. (The target, ≤ 1 request/s, is absolute.)
"""

from __future__ import annotations

import subprocess
import time

from _processes import bench_environ, emulator, fleet, simfleet
from _table import Row

LATENCY = 0.010
BACKOFF = (1.0, 2.0, 4.0, 8.0)
CEILING = 15.0


def pool_polls(seconds: float) -> int:
    """Polls a 1 → 15 s back-off makes in ``seconds``."""
    at, count, steps = 0.0, 0, iter(BACKOFF)
    while True:
        at += next(steps, CEILING)
        if at > seconds:
            return count
        count += 1


def figure(jobs: int, per_job: int, allocation: float, start: float) -> Row:
    with (
        fleet(jobs, per_job) as specs,
        emulator(latency=LATENCY, allocation_delay=allocation, node_start_delay=start) as emu,
    ):
        started = time.monotonic()
        done = subprocess.run(
            [
                *simfleet("apply", "--wait", "--timeout", "600", "--backend", "azure"),
                *("--specs", str(specs.specs), "--state-dir", str(specs.state_dir)),
            ],
            env=bench_environ(emu.environ()),
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
        log = emu.requests()
    if done.returncode != 0:
        raise RuntimeError(f"apply --wait failed: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    created = next(r.arrived for r in log if r.operation == "Pools_CreatePool")
    usable = created + allocation + start
    last_write = max(r.answered for r in log if r.write)
    span = usable - last_write
    waiting = [r for r in log if last_write < r.arrived <= usable]
    rate = len(waiting) / span
    bound = pool_polls(span) / span
    return Row(
        "wait",
        f"apply --wait while nodes come up ({jobs} jobs)",
        f"{rate:.2f} requests/s",
        f"{bound:.2f} requests/s",
        None,
        "≤ 1 request/s",
        rate <= 1.0,
        f"{len(waiting)} requests in {span:.1f} s of waiting; {len(log)} requests in all, "
        f"{wall:.1f} s wall",
    )
