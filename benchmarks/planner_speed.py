"""CPU of one ``plan()`` at 100,000 tasks: the planner's share of a full pass.

Issue 8 asks for a full pass at 100,000 tasks within 1 s of CPU, observation included;
this prints the planner's part alone, for a converged fleet of 500 simulations × 200
simulators (the daemon's steady state), planned whole, planned with ``explain=False``
(what the daemon does) and scoped to one simulation (a pass woken by one edit).

    .venv/bin/python benchmarks/planner_speed.py [SIMULATIONS] [SIMULATORS] [--profile]

Prints figures only; nothing here asserts a time. ``--profile`` adds the top of a
cProfile of the full plan, to find the next hot spot.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta

from controller.planner import (
    Desired,
    DesiredSimulation,
    Observed,
    ObservedJob,
    ObservedPool,
    ObservedTask,
    Plan,
    PoolConfig,
    SimulatorState,
    plan,
    revision,
    task_id,
    template_of,
)
from controller.spec import PoolSpec, SimulationSpec
from controller.testing import EPOCH


def fleet(simulations: int, simulators: int) -> tuple[Desired, Observed]:
    """A converged fleet: every slot runs on the current template, the pool is sized."""
    pool = PoolSpec.model_validate(
        {"vmSize": "d4", "taskSlotsPerNode": 4, "nodes": {"dedicated": "auto", "max": 100_000}}
    )
    sims = {}
    jobs = {}
    started = EPOCH - timedelta(hours=1)
    for n in range(simulations):
        name = f"sim{n:04d}"
        spec = SimulationSpec.model_validate(
            {"pool": "p", "simulators": simulators, "image": "i:1", "command": "x"}
        )
        sim = DesiredSimulation(name, spec)
        rev = revision(template_of(sim))
        sims[name] = sim
        jobs[name] = ObservedJob(
            name,
            "p",
            owned=True,
            tasks=tuple(
                ObservedTask(
                    id=task_id(name, slot, rev, 0),
                    slot=slot,
                    revision=rev,
                    attempt=0,
                    state=SimulatorState.RUNNING,
                    created_at=started,
                    started_at=started,
                )
                for slot in range(simulators)
            ),
            created_at=started,
        )
    nodes = -(-simulations * simulators // 4)
    observed = Observed(
        pools={
            "p": ObservedPool(
                "p", True, PoolConfig.of(pool), target_dedicated=nodes, current_dedicated=nodes
            )
        },
        jobs=jobs,
    )
    return Desired(pools={"p": pool}, simulations=sims), observed


def _cpu(call: Callable[[], Plan], runs: int) -> tuple[float, Plan]:
    times = []
    result = call()
    for _ in range(runs):
        gc.collect()  # the previous plan's garbage is not this one's cost
        started = time.process_time()
        result = call()
        times.append(time.process_time() - started)
    return statistics.median(times), result


def main(argv: list[str]) -> None:
    numbers = [int(a) for a in argv if a.isdigit()]
    simulations, simulators = (numbers + [500, 200][len(numbers) :])[:2]
    desired, observed = fleet(simulations, simulators)
    one = frozenset({min(desired.simulations)})
    cases: list[tuple[str, Callable[[], Plan]]] = [
        ("full, explain", lambda: plan(desired, observed, EPOCH)),
        ("full, explain=False", lambda: plan(desired, observed, EPOCH, explain=False)),
        (
            "scoped to 1 simulation",
            lambda: plan(desired, observed, EPOCH, scope=one, explain=False),
        ),
    ]
    total = simulations * simulators
    print(f"plan() CPU, converged fleet of {simulations} × {simulators} = {total:,} tasks")
    for label, call in cases:
        seconds, result = _cpu(call, runs=3)
        assert result.actions == (), result.actions[:3]
        print(f"  {label:<24} {seconds * 1000:>9.1f} ms")
    if "--profile" in argv:
        profiler = cProfile.Profile()
        profiler.runcall(cases[0][1])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main(sys.argv[1:])
