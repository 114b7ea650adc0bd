"""``make soak``: the real daemon for a given time under random edits, bad files and faults.

    python benchmarks/soak.py --minutes M --simulators N --backend local|azure|both [--seed S]

For each backend in turn (``both``: local, then azure, M minutes each) it starts the real
daemon (``python -m controller run``) the way the scenario tests do — on Azure against the
standalone Batch emulator (``python -m tests.batch_emulator``) — on a fleet of N
simulators, and in rounds injects, at random from the printed seed: spec edits (scale,
rollouts, suspend, a second file added and removed), bad, empty, half-written and moving
files, simulator crashes, Batch faults (500, 503 and 429 with Retry-After, dropped
connections, Spot preemption), and controller ``kill -9`` with a restart. After every
step it checks that no slot has two live simulators, that nothing unowned is touched, and
after each round that the fleet converges within a bound once faults stop. At the end it
prints a table and exits 1 if any invariant broke. Only loopback traffic; every process it
started is stopped (found by the run's marker) before it exits.

The modules beside it: ``_soak_specs`` (the fleet and its files), ``_soak_faults``
(crashes and service faults), ``_soak_bystanders`` (what must stay untouched),
``_soak_checks`` (the invariants), ``_soak_watch`` (one run's state and checks),
``_soak_rounds`` (steps and rounds), ``_soak_tally`` (the counters and the table).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the scenario drivers and the emulator live in tests/

import _soak_rounds  # noqa: E402  (needs the path above)
from _soak_watch import Soak  # noqa: E402


def default_bound(simulators: int) -> float:
    """Seconds the fleet gets to converge once faults stop: 60, more for big fleets."""
    return max(60.0, 30.0 + 0.2 * simulators)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/soak.py", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--minutes", type=float, default=2.0, help="per backend (default 2)")
    parser.add_argument("--simulators", type=int, default=20, help="fleet size (default 20)")
    parser.add_argument("--backend", choices=["local", "azure", "both"], default="both")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument(
        "--converge-within",
        type=float,
        default=None,
        metavar="SECONDS",
        help="the convergence bound (default: 60, or 30 + 0.2 per simulator if more)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's folder even when it passed"
    )
    args = parser.parse_args(argv)
    if args.simulators < 3:
        parser.error("--simulators must be at least 3")
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    bound = args.converge_within or default_bound(args.simulators)
    backends = ["local", "azure"] if args.backend == "both" else [args.backend]
    print(
        f"soak: seed {seed}, {args.simulators} simulators, {args.minutes:g} min per backend "
        f"({', '.join(backends)}); rerun with --seed {seed}",
        flush=True,
    )
    failed = []
    for backend in backends:
        root = Path(tempfile.mkdtemp(prefix=f"simfleet-soak-{backend}-"))
        print(f"soak {backend}: in {root}", flush=True)
        soak = Soak.create(backend, args.simulators, args.minutes * 60, bound, seed, root)
        tally = _soak_rounds.run(soak)
        print(f"soak {backend}:\n{tally.table()}", flush=True)
        if tally.failures():
            failed.append(backend)
        if tally.failures() or args.keep:
            print(f"  kept {root} (daemon.log, specs, state)", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if failed:
        print(f"soak: FAILED on {', '.join(failed)} (seed {seed})", flush=True)
        return 1
    print("soak: every invariant held", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
