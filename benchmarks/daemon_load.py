"""The daemon's own cost at 100,000 tasks: CPU seconds of one full pass, and peak memory.

The emulator is filled by the lower-bound client with exactly what simfleet's first plan
asks for (its ids and bodies), so the daemon starts on a converged fleet and the figures
are observing and planning, not writing. The daemon runs with ``--resync 5`` and no
injected latency (CPU time does not depend on it):

* *one full pass, CPU*: user + system seconds of the daemon process (/proc/PID/stat)
  between the starts of consecutive resync passes (a pass starts with its pool listing in
  the emulator's log), averaged over a few passes. Lower bound: none measured; the target
  is absolute. The first pass (start-up and the first listing of every task) is in the
  note, beside the CPU a daemon with no simulations spends to its first pass.
* *RSS peak*: VmHWM of the daemon process after those passes.
"""

from __future__ import annotations

import time

import _lower_bound
from _processes import MAX_IN_FLIGHT, Daemon, Emulator, daemon, emulator, fleet, until
from _table import Row

TIMEOUT = 1800.0


def _startup_cpu() -> float:
    """CPU seconds of a daemon with one pool and no simulation, to its first pass."""
    with (
        fleet(0, 0) as specs,
        emulator() as emu,
        daemon(specs, backend="azure", environ=emu.environ()) as running,
    ):
        until(running.is_ready, TIMEOUT, "an empty daemon's first pass")
        return running.cpu_seconds()


def _pass_cpu(emu: Emulator, running: Daemon, passes: int) -> list[float]:
    """CPU time at the start of each of ``passes + 1`` passes after now."""
    mark = emu.mark()
    seen = 0
    readings: list[float] = []
    deadline = time.monotonic() + TIMEOUT
    while len(readings) <= passes:
        starts = sum(r.operation == "Pools_ListPools" for r in emu.requests(mark))
        if starts > seen:
            readings.append(running.cpu_seconds())
            seen = starts
        if time.monotonic() > deadline:
            raise TimeoutError("resync passes did not come")
        time.sleep(0.05)  # a reading every 50 ms: light on the emulator, fine at 5 s passes
    return readings


def figures(jobs: int, per_job: int, resync: float = 5.0, passes: int = 3) -> list[Row]:
    idle = _startup_cpu()
    tasks = f"{jobs * per_job:,}"
    with fleet(jobs, per_job) as specs, emulator() as emu:
        filled = _lower_bound.cold_writes(emu, specs, MAX_IN_FLIGHT).count
        until(lambda: emu.task_count() >= specs.simulators, TIMEOUT, "the filled emulator")
        with daemon(specs, backend="azure", environ=emu.environ(), resync=resync) as running:
            until(running.is_ready, TIMEOUT, "the daemon's first pass", step=0.2)
            first = running.cpu_seconds()
            readings = _pass_cpu(emu, running, passes)
            peak = running.memory("VmHWM")
            rss = running.memory("VmRSS")
        writes = sum(r.write for r in emu.requests())
    per_pass = (readings[-1] - readings[0]) / (len(readings) - 1)
    return [
        Row(
            "cpu",
            f"one full pass at {tasks} tasks, CPU",
            f"{per_pass:.2f} s",
            "—",
            None,
            "≤ 1 s",
            per_pass <= 1.0,
            f"resync {resync:g} s, {passes} passes; first pass with start-up "
            f"{first:.2f} s CPU (a daemon with no simulations: {idle:.2f} s); "
            f"writes by simfleet on the converged fleet: {writes - filled}",
        ),
        Row(
            "rss",
            f"daemon RSS peak at {tasks} tasks",
            f"{peak / 2**20:.0f} MB",
            "—",
            None,
            "≤ 120 MB",
            peak <= 120 * 2**20,
            f"RSS after the passes {rss / 2**20:.0f} MB",
        ),
    ]
