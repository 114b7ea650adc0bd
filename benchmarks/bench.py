"""``make bench``: every figure of issue 8 beside its lower bound, measured in one run.

    python benchmarks/bench.py [--quick] [--markdown benchmarks/RESULTS.md]

Each figure family lives in a module of its own, and each module's docstring says what its
lower bound is:

* :mod:`emulator_cost`: the emulator's own cost per request (no Nagle stall), first,
  because every Azure figure below assumes it is small;
* :mod:`azure_converge`: cold converge (write phase, all requests), edit → acting
  request, steady resync; the daemon against the Batch emulator with 10 ms per request,
  beside :mod:`_lower_bound`, a client on the same SDK sending only what is necessary
  with the same in-flight limit (16);
* :mod:`azure_wait`: ``apply --wait`` while nodes come up;
* :mod:`daemon_load`: CPU of a full pass and peak RSS at 100,000 tasks;
* :mod:`local_figures`: 500 local simulators to ready and SIGTERM, beside bare
  ``posix_spawn``;
* :mod:`startup`: start-up of ``simfleet --help``, ``status`` and ``validate`` (issue 11),
  beside the bare interpreter.

``--quick`` runs every figure at toy sizes (a smoke test of the machinery; its numbers mean
nothing). A figure that fails is a row saying why, never a missing row. Run on an idle
machine: the Azure figures are latency-bound, the local ones CPU-bound.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import azure_converge  # the sibling modules, found by the path above
import azure_wait
import daemon_load
import emulator_cost
import local_figures
import startup
from _table import Row, markdown, plain


@dataclass(frozen=True)
class Sizes:
    requests: int
    small: azure_converge.Size
    large: azure_converge.Size
    wait_jobs: int
    wait_per_job: int
    allocation: float
    node_start: float
    load_jobs: int
    load_per_job: int
    resync: float
    steady: azure_converge.Resync
    local: int
    startup_runs: int


FULL = Sizes(
    requests=200,
    small=azure_converge.Size(jobs=10, per_job=200, edits=7),
    large=azure_converge.Size(jobs=50, per_job=200, edits=7),
    wait_jobs=50,
    wait_per_job=20,
    allocation=30.0,
    node_start=10.0,
    load_jobs=100,
    load_per_job=1000,
    resync=5.0,
    steady=azure_converge.Resync(interval=5.0, passes=12),
    local=500,
    startup_runs=21,
)
QUICK = Sizes(
    requests=20,
    small=azure_converge.Size(jobs=2, per_job=20, edits=2),
    large=azure_converge.Size(jobs=3, per_job=20, edits=2),
    wait_jobs=3,
    wait_per_job=2,
    allocation=3.0,
    node_start=1.0,
    load_jobs=2,
    load_per_job=50,
    resync=0.5,
    steady=azure_converge.Resync(interval=0.5, passes=2),
    local=5,
    startup_runs=3,
)

#: Every figure of issue 8's table in its order, by key, with how its row's name starts.
FIGURES = {
    "cold-writes": "cold",
    "cold-requests": "cold",
    "edit-small": "edit → acting request",
    "edit-large": "edit → acting request",
    "wait": "apply --wait",
    "resync": "steady resync",
    "cpu": "one full pass",
    "rss": "daemon RSS peak",
    "local-ready": "local simulators to ready",
    "local-sigterm": "SIGTERM with",
    "emulator": "emulator per request",
    "startup-help": "start-up: simfleet --help",
    "startup-status": "start-up: simfleet status",
    "startup-validate": "start-up: simfleet validate",
}


def families(sizes: Sizes) -> list[tuple[list[str], Callable[[], list[Row]]]]:
    """Each family with the keys of the figures it reports (a failure's rows)."""
    return [
        (["emulator"], lambda: [emulator_cost.figure(sizes.requests)]),
        (
            ["cold-requests", "edit-small"],
            lambda: azure_converge.scenario(
                sizes.small, "small", write_ratio=False, request_ratio=True, resync=None
            ),
        ),
        (
            ["cold-writes", "resync", "edit-large"],
            lambda: azure_converge.scenario(
                sizes.large, "large", write_ratio=True, request_ratio=False, resync=sizes.steady
            ),
        ),
        (
            ["wait"],
            lambda: [
                azure_wait.figure(
                    sizes.wait_jobs, sizes.wait_per_job, sizes.allocation, sizes.node_start
                )
            ],
        ),
        (
            ["cpu", "rss"],
            lambda: daemon_load.figures(sizes.load_jobs, sizes.load_per_job, resync=sizes.resync),
        ),
        (["local-ready", "local-sigterm"], lambda: local_figures.figures(sizes.local)),
        (
            ["startup-help", "startup-status", "startup-validate"],
            lambda: startup.figures(sizes.startup_runs),
        ),
    ]


def run(sizes: Sizes, wanted: set[str]) -> list[Row]:
    rows: list[Row] = []
    for keys, measure in families(sizes):
        if not wanted.intersection(keys):
            continue
        started = time.monotonic()
        try:
            rows += measure()
        except Exception as exc:
            traceback.print_exc()
            error = f"{type(exc).__name__}: {exc}"
            rows += [Row(k, FIGURES[k], "failed", "", None, "", None, error) for k in keys]
        print(f"  ({', '.join(keys)}: {time.monotonic() - started:.0f} s)", file=sys.stderr)
    order = list(FIGURES)
    return sorted(rows, key=lambda row: order.index(row.key))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes: a smoke test")
    parser.add_argument("--markdown", type=Path, help="also write the table here, as markdown")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(FIGURES),
        metavar="KEY",
        help="run only the families that report these figures: " + ", ".join(FIGURES),
    )
    parser.add_argument(
        "--list-figures", action="store_true", help="print the rows a run must have, and stop"
    )
    args = parser.parse_args(argv)
    if args.list_figures:
        print("\n".join(FIGURES.values()))
        return 0
    rows = run(QUICK if args.quick else FULL, set(args.only or FIGURES))
    print(plain(rows))
    if args.markdown is not None:
        quick = " — quick mode: toy sizes, not figures" if args.quick else ""
        title = f"simfleet benchmark (issue 8){quick}"
        args.markdown.write_text(markdown(rows, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
