"""Start-up of the commands people type most: ``simfleet --help``, ``status``, ``validate``.

    python benchmarks/startup.py [--runs 21]

Each command runs ``--runs`` times in a fresh process (the console script of this
interpreter's environment), and the figure is the median wall time from ``exec`` to exit.
The lower bound is the bare interpreter (``python -c pass``) measured the same way: what
no amount of lazy importing can remove. ``status`` reads a stand-in ``/status`` on
loopback (a small fleet's document), so it measures the command and its rendering, not
a daemon; ``validate`` checks the example ``specs/``.

The warm-up runs let Python write its bytecode caches, as ``pip install`` does for an
installed simfleet: with ``PYTHONDONTWRITEBYTECODE`` set (this project's machines set
it), an editable checkout would otherwise compile simfleet's sources on every start.

Issue 11's target is 150 ms for each. The runs alternate between the commands, so a
machine that is busy for a while slows all of them alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _table import Row, plain

from controller.testing import status_endpoint

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.150


def simfleet() -> list[str]:
    """The ``simfleet`` console script beside this interpreter, else ``-m controller``."""
    script = Path(sys.executable).parent / "simfleet"
    return [str(script)] if script.exists() else [sys.executable, "-m", "controller"]


def fleet_document(simulations: int = 3, simulators: int = 8) -> dict[str, Any]:
    """A ``/status`` document of a small fleet, as a daemon serves it."""
    rows = [
        {"slot": i, "id": f"sim-{i}", "state": "running", "restarts": 0, "upToDate": True}
        | {"lastExit": None, "pid": 1000 + i, "startedAt": "2026-01-01T00:00:00Z"}
        for i in range(simulators)
    ]
    return {
        "simulations": [
            {"name": f"sim{n}", "pool": "sims", "image": "sim:1", "desired": simulators}
            | {"ready": simulators, "upToDate": simulators, "restarts": 0, "message": ""}
            | {"createdAt": "2026-01-01T00:00:00Z", "simulators": rows}
            for n in range(simulations)
        ],
        "pools": [{"name": "sims", "dedicated": 2, "spot": 0, "state": "steady", "message": ""}],
        "errors": [],
        "revision": "0123456789abcdef0123456789abcdef01234567",
    }


def wall(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds one fresh process takes from start to exit; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, cwd=ROOT, env=env, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]!r}")
    return took


def writing_bytecode() -> dict[str, str]:
    """This environment, letting Python cache the bytecode it compiles. ``pip install``
    compiles an installed simfleet's; an editable checkout has only what runs leave
    behind, and none with ``PYTHONDONTWRITEBYTECODE`` set (as on this project's machines),
    which would measure compiling the sources on every start instead."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def figures(runs: int) -> list[Row]:
    """One row per command: the median of ``runs`` fresh starts beside the interpreter's."""
    document = fleet_document()
    with status_endpoint(lambda: document) as listen:
        commands = {
            "startup-help": ["--help"],
            "startup-status": ["status", "--listen", listen],
            "startup-validate": ["validate", "specs"],
        }
        bare = [sys.executable, "-c", "pass"]
        times: dict[str, list[float]] = {key: [] for key in [*commands, "bare"]}
        for args in commands.values():  # warm the page cache and the bytecode caches
            wall([*simfleet(), *args], env=writing_bytecode())
        for _ in range(runs):
            times["bare"].append(wall(bare))
            for key, args in commands.items():
                times[key].append(wall([*simfleet(), *args]))
    floor = statistics.median(times["bare"])
    rows = []
    for key, args in commands.items():
        median = statistics.median(times[key])
        shown = " ".join(a if not a.startswith("127.0.0.1:") else "…" for a in args)
        rows.append(
            Row(
                key,
                f"start-up: simfleet {shown}",
                f"{median * 1000:.0f} ms",
                f"{floor * 1000:.0f} ms (python -c pass)",
                None,
                f"≤ {TARGET * 1000:.0f} ms",
                median <= TARGET,
                f"median of {runs} fresh processes; fastest {min(times[key]) * 1000:.0f} ms; "
                f"{median / floor:.1f}× the bare interpreter (this machine's speed varies)",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="fresh processes per command")
    args = parser.parse_args(argv)
    print(plain(figures(args.runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
