"""Cold converge and edit latency: the daemon (``simfleet run --backend azure``) against the
Batch emulator with 10 ms injected per request, beside the lower-bound client.

One scenario per fleet size, in this order, on one emulator whose pools take the
emulator's default time to bring nodes up (5 s to allocate, 2 s to start):

1. **Cold.** The daemon starts on an empty account and converges (2 s without a request,
   and every task running). Two figures come from its request log:
   * *write phase*: from the first write's arrival to the last write's answer. Lower
     bound: the same span for the lower-bound client (:mod:`_lower_bound`) sending the
     same writes with the same in-flight limit (16) on a fresh emulator with the same
     latency.
   * *all requests*: every request until converged, divided by the writes plus one
     observation (list pools, list jobs) plus one check (task counts) per job.
2. **Edits.** Each edit rewrites one simulation's file with one simulator more; the figure
   is the time from the file's replacement to the arrival of the first addtaskcollection
   for that job (p50 and max). Lower bound: the lower-bound client's minimal reaction
   (list pools, that job's task counts, the addtaskcollection), timed the same way.
3. **Steady resync** (10,000 only): a fresh daemon on the converged fleet with
   ``--resync 5``, over a minute of whole passes (a pass starts with its pool listing),
   which is longer than a task listing's maximum age today (30 s), so re-listings count;
   requests per job per pass. Lower bound: one pool listing, one job listing, the node
   counts of every pool (node health, issue 10) and one task-counts call per job,
   (3 + jobs) ÷ jobs.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import _lower_bound
from _processes import MAX_IN_FLIGHT, Emulator, Fleet, Logged, daemon, emulator, fleet, until
from _table import Row

LATENCY = 0.010
TIMEOUT = 900.0
ALLOCATION, NODE_START = 5.0, 2.0  # the emulator's defaults


@dataclass(frozen=True)
class Resync:
    interval: float
    passes: int


@dataclass(frozen=True)
class Size:
    jobs: int
    per_job: int
    edits: int

    @property
    def simulators(self) -> int:
        return self.jobs * self.per_job


def write_phase(log: list[Logged]) -> float:
    writes = [r for r in log if r.write]
    return max(r.answered for r in writes) - min(r.arrived for r in writes)


def converged(emu: Emulator, fleet_: Fleet) -> list[Logged]:
    """Wait until the daemon went quiet with every simulator running; the log so far.
    (Tasks are counted only once it is quiet: listing them all would load the emulator
    while the daemon's writes are being timed.)"""

    def done() -> bool:
        return emu.silent_for(2.0) and emu.task_count("running") >= fleet_.simulators

    until(done, TIMEOUT, "every task running, then 2 s without requests", step=0.2)
    return emu.requests()


def edit_latency(emu: Emulator, fleet_: Fleet, edits: int) -> list[float]:
    samples = []
    for i in range(edits):
        job = fleet_.jobs[i % len(fleet_.jobs)]
        mark = emu.mark()
        written = fleet_.scale(job, fleet_.counts[job] + 1)
        path = f"/jobs/{job}/addtaskcollection"
        acting: list[Logged] = []

        def seen(mark: int = mark, path: str = path, acting: list[Logged] = acting) -> bool:
            acting.extend(r for r in emu.requests(mark) if r.path == path)
            return bool(acting)

        until(seen, 120, f"the addtaskcollection for {job}", step=0.02)
        samples.append(acting[0].arrived - written)
        emu.quiet(1.0, TIMEOUT)
    return samples


def steady_resync(emu: Emulator, fleet_: Fleet, resync: Resync) -> float:
    """Requests per job per pass of a fresh daemon on a converged fleet."""
    environ = emu.environ()
    with daemon(fleet_, backend="azure", environ=environ, resync=resync.interval) as running:
        until(running.is_ready, TIMEOUT, "the daemon's first pass")
        emu.quiet(min(2.0, resync.interval / 2), TIMEOUT)  # past the first pass's listings
        mark = emu.mark()
        passes = resync.passes

        def enough() -> bool:
            return sum(r.operation == "Pools_ListPools" for r in emu.requests(mark)) > passes

        until(enough, TIMEOUT, f"{passes} resync passes", step=0.2)
        log = emu.requests(mark)
    starts = [i for i, r in enumerate(log) if r.operation == "Pools_ListPools"]
    whole = log[starts[0] : starts[-1]]
    return len(whole) / ((len(starts) - 1) * len(fleet_.jobs))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def scenario(
    size: Size, name: str, *, write_ratio: bool, request_ratio: bool, resync: Resync | None
) -> list[Row]:
    """The rows of one fleet size; ``name`` tells its edit row apart (``small``, ``large``)."""
    rows: list[Row] = []
    n = f"{size.simulators:,}"
    with fleet(size.jobs, size.per_job) as specs:
        writes = _lower_bound.first_plan(specs)
        account = {
            "latency": LATENCY,
            "allocation_delay": ALLOCATION,
            "node_start_delay": NODE_START,
        }
        if write_ratio:
            with emulator(**account) as fresh:
                _lower_bound.cold_writes(fresh, specs, MAX_IN_FLIGHT)
                lower_phase = write_phase(fresh.requests())
        with emulator(**account) as emu:
            with daemon(specs, backend="azure", environ=emu.environ()) as running:
                log = converged(emu, specs)
                samples = edit_latency(emu, specs, size.edits)
                running.terminate()
            if write_ratio:
                phase = write_phase(log)
                rows.append(
                    Row(
                        "cold-writes",
                        f"cold {n} ({size.jobs} × {size.per_job}): write phase, "
                        f"{MAX_IN_FLIGHT} in flight",
                        f"{phase:.2f} s",
                        f"{lower_phase:.2f} s",
                        phase / lower_phase,
                        "≤ 1.3×",
                        phase / lower_phase <= 1.3,
                        f"{sum(r.write for r in log)} writes by simfleet, {writes.count} by the "
                        "lower-bound client",
                    )
                )
            if request_ratio:
                necessary = writes.count + 2 + size.jobs
                rows.append(
                    Row(
                        "cold-requests",
                        f"cold {n}: all requests",
                        f"{len(log)} requests",
                        f"{necessary} (writes {writes.count} + 2 + {size.jobs} jobs)",
                        len(log) / necessary,
                        "≤ 1.5×",
                        len(log) / necessary <= 1.5,
                    )
                )
            if resync is not None:
                per_job = steady_resync(emu, specs, resync)
                bound = (3 + size.jobs) / size.jobs
                rows.append(
                    Row(
                        "resync",
                        f"steady resync, requests per job ({size.jobs} jobs)",
                        f"{per_job:.2f}",
                        f"{bound:.2f}",
                        per_job / bound,
                        "≤ 1.1 per job",
                        per_job <= 1.1,
                        f"resync {resync.interval:g} s, {resync.passes} passes",
                    )
                )
            lower = _lower_bound.edit_round_trip(emu, specs.pool, size.edits)
        p50, worst, lower_p50 = statistics.median(samples), max(samples), statistics.median(lower)
        rows.append(
            Row(
                f"edit-{name}",
                f"edit → acting request, {n} simulators",
                f"p50 {_ms(p50)}, max {_ms(worst)}",
                f"p50 {_ms(lower_p50)}",
                p50 / lower_p50,
                "≤ 1.5×",
                p50 / lower_p50 <= 1.5,
                f"{size.edits} edits, one simulator more each",
            )
        )
    return rows
