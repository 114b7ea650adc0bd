"""Pool churn of issue 10: the daemon (``simfleet run --backend azure``) against the Batch
emulator in its own process, counting the requests that change a pool's size.

Three scenarios, each on a fresh emulator (5 s to allocate nodes, 2 s to start them) and
daemon (``--settle 1``), with pools of ``taskSlotsPerNode: 4`` sized ``auto``:

1. **Rollout.** 8 simulators converge; their image changes; the figure is the resize and
   ``removenodes`` requests from the edit until all 8 run the new image, and the time it
   took. Target: 0 (issue 10 saw 8 resizes for 4 simulators before).
2. **Dip.** 100 simulators converge; the file says 50, then, once 50 run, 100 again; the
   figure is the pool-size requests from the first edit until 100 run again, within the
   default 10-minute scale-down delay. Target: 0.
3. **Shrink.** With ``--scale-down-delay 5``, 100 simulators converge, then 20: the pool
   shrinks from 32 to 7 nodes; the figure is the tasks the emulator requeued because a
   node went away (it counts them by cause). Target: 0.

``python benchmarks/azure_sizing.py`` prints the table.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _processes import Daemon, Emulator, until
from _table import Row, plain

SIZE_OPS = ("Pools_ResizePool", "Pools_RemoveNodes")
TIMEOUT = 300.0
SPECS = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {{name: sims}}
spec: {{vmSize: standard_d4s_v5, taskSlotsPerNode: 4, nodes: {{dedicated: auto, max: 40}}}}
---
apiVersion: simfleet/v1
kind: Simulation
metadata: {{name: sim}}
spec: {{pool: sims, simulators: {count}, image: "bench/sim:{version}", command: [sleep, "3600"]}}
"""


class Scenario:
    """A specs directory, an emulator and a daemon on it."""

    def __init__(self, root: Path, **environ: str) -> None:
        self.specs = root / "specs"
        self.specs.mkdir()
        self.write(1, 1)
        self.emulator = Emulator(allocation_delay=5.0, node_start_delay=2.0)
        self.daemon = Daemon(
            self.specs,
            root / "state",
            backend="azure",
            environ={**self.emulator.environ(), "SIMFLEET_SETTLE": "1", **environ},
            resync=2.0,
        )

    def write(self, count: int, version: int) -> None:
        staged = self.specs / ".fleet.yaml.tmp"
        staged.write_text(SPECS.format(count=count, version=version))
        staged.replace(self.specs / "fleet.yaml")

    def converged(self, count: int, version: int = 1) -> None:
        """Wait until /status shows ``count`` simulators of that image ready."""

        def done() -> bool:
            rows = self.daemon.status().get("simulations", [])
            return (
                bool(rows)
                and rows[0]["image"] == f"bench/sim:{version}"
                and rows[0]["desired"] == rows[0]["ready"] == rows[0]["upToDate"] == count
            )

        until(done, TIMEOUT, f"{count} simulators ready and up to date", 0.2)

    def resizes(self, since: int) -> int:
        return sum(1 for r in self.emulator.requests(since) if r.operation in SIZE_OPS)

    def close(self) -> None:
        self.daemon.close()
        self.emulator.close()


@contextmanager
def scenario(**environ: str) -> Iterator[Scenario]:
    """A :class:`Scenario` in a fresh folder, closed and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="simfleet-sizing-"))
    run = Scenario(root, **environ)
    try:
        yield run
    finally:
        run.close()
        shutil.rmtree(root, ignore_errors=True)


def rollout() -> Row:
    with scenario() as run:
        run.write(8, 1)
        run.converged(8)
        mark, started = run.emulator.mark(), time.monotonic()
        run.write(8, 2)
        run.converged(8, 2)
        took, resizes = time.monotonic() - started, run.resizes(mark)
    return Row(
        "rollout",
        "rollout of 8 simulators: pool-size requests",
        str(resizes),
        "0",
        None,
        "0",
        resizes == 0,
        f"rollout took {took:.1f} s",
    )


def dip() -> Row:
    with scenario() as run:
        run.write(100, 1)
        run.converged(100)
        mark = run.emulator.mark()
        run.write(50, 1)
        run.converged(50)
        run.write(100, 1)
        run.converged(100)
        resizes = run.resizes(mark)
    return Row(
        "dip",
        "100 → 50 → 100 simulators within the delay: pool-size requests",
        str(resizes),
        "0",
        None,
        "0",
        resizes == 0,
    )


def shrink() -> Row:
    with scenario(SIMFLEET_SCALE_DOWN_DELAY="5") as run:
        run.write(100, 1)
        run.converged(100)
        mark = run.emulator.mark()
        run.write(20, 1)
        run.converged(20)
        until(lambda: _targets(run) == 7, TIMEOUT, "the pool at 7 nodes", 0.5)
        requeued = run.emulator.state()["requeued"]
        removals = sum(1 for r in run.emulator.requests(mark) if r.operation == "Pools_RemoveNodes")
    count = sum(requeued.values())
    return Row(
        "shrink",
        "100 → 20 simulators, shrink after the delay: simulators requeued",
        str(count),
        "0",
        None,
        "0",
        count == 0,
        f"32 → 7 nodes by {removals} removenodes; requeued by cause {requeued}",
    )


def _targets(run: Scenario) -> int:
    """The pool's dedicated target, as the daemon's /status reports it."""
    pools = run.daemon.status().get("pools", [])
    return int(pools[0]["targetDedicated"]) if pools else -1


def main() -> None:
    print(plain([rollout(), dip(), shrink()]))


if __name__ == "__main__":
    main()
