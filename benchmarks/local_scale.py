"""Figures for the local backend at scale (issue 8, item 8); the tests only check behaviour.

:func:`measure` returns the figures ``make bench`` tabulates, as numbers, each beside its
floor measured in the same run:

1. Start: ``N`` simulators (``sleep 300``) from one ``AddTasks`` to all running
   (``start_s``), against ``N`` bare ``posix_spawn`` calls of the same command
   (``bare_spawn_s``: no wrapper, no output, no records) and against ``N`` starts of the
   runtime alone (``runtime_spawn_s``: the wrapper's processes, without the backend's
   bookkeeping).
2. Shutdown: ``close(stop_simulators=True)`` with ``N`` simulators running (``close_s``),
   and SIGTERM of a real daemon running ``N`` simulators until it has exited
   (``daemon_sigterm_s``).

And, printed only:

3. Scale down: the planner's pass from ``N`` to 2 simulators (``run_pass``), then until
   every stopped simulator is recorded as exited; with the longest time the event loop
   was held (a ticker measures it) and the number of state file writes.
4. The same scale down with a runtime that starts no process, for sizes this machine
   cannot run for real (each simulator is 6 processes: wrapper, 2 output writers with
   their ``head``, the simulator; ``/proc/sys/kernel/pid_max`` bounds them).

Usage: ``python benchmarks/local_scale.py [--start N ...] [--real N ...] [--fake N ...]``.
Prints a table; run on an idle machine for stable figures (a busy one slows every
process start, the floors' too: compare ratios, not seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from controller.backends.local import LocalBackend, ProcessRuntime
from controller.backends.local._runtime import Ending, Found, Handle, Launch
from controller.planner import AddTasks, CreateJob, CreatePool, Desired, DesiredSimulation, NewTask
from controller.planner import TaskTemplate as Template
from controller.reconcile import run_pass
from controller.spec import PoolSpec, SimulationSpec

SLEEP = ("sleep", "300")


def _now() -> datetime:
    return datetime.now(UTC)


class LoopLag:
    """How long the event loop was held: the longest single callback (the code's own
    doing), and the longest gap between ticks of a 5 ms ticker (which also counts time
    the process was not scheduled at all, on a machine busy with dying simulators)."""

    def __init__(self) -> None:
        self.callback = 0.0
        self.gap = 0.0
        self._task: asyncio.Task[None] | None = None
        self._run = asyncio.events.Handle._run
        self.done = False

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.gap = max(self.gap, now - last - 0.005)
            last = now

    def __enter__(self) -> LoopLag:
        run, lag = self._run, self

        def timed(handle: asyncio.Handle) -> None:
            started = time.perf_counter()
            run(handle)
            if not lag.done:  # the step that left the block runs on: not this block's
                lag.callback = max(lag.callback, time.perf_counter() - started)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._run  # type: ignore[method-assign]
        self.done = True
        assert self._task is not None
        self._task.cancel()

    def __str__(self) -> str:
        return f"loop held ≤ {self.callback * 1000:.0f} ms (tick gap ≤ {self.gap * 1000:.0f} ms)"


class StateWrites:
    """Counts the writes of ``state.json`` (each ends with a rename onto it)."""

    def __init__(self) -> None:
        self.count = 0
        self._original = Path.replace

    def __enter__(self) -> StateWrites:
        original = self._original

        def replace(path: Path, target: str | Path) -> Path:
            if Path(target).name == "state.json":
                self.count += 1
            return original(path, target)

        Path.replace = replace  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Path.replace = self._original  # type: ignore[method-assign]


class NoProcesses(ProcessRuntime):
    """A runtime that starts nothing: a stop ends the "simulator" on the next loop turn.

    Measures the backend's own bookkeeping at sizes no machine here can run for real.
    """

    name = "none"

    def __init__(self) -> None:
        super().__init__()
        self._pids = itertools.count(10_000_000)
        self._gone: dict[int, Callable[[], None]] = {}

    def spawn(self, launch: Launch) -> Handle:
        return Handle(next(self._pids), 0)

    def scan(self, root: Path) -> dict[Path, Found]:
        return {}

    def alive(self, handle: Handle) -> bool:
        return True

    def watch(self, handle: Handle, on_gone: Callable[[], None]) -> Callable[[], None]:
        self._gone[handle.pid] = on_gone
        return lambda: self._gone.pop(handle.pid, None) and None

    def signal(self, handle: Handle, signum: int) -> None:
        gone = self._gone.pop(handle.pid, None)
        if gone is not None:
            asyncio.get_running_loop().call_soon(gone)

    def collect(self, task_dir: Path, handle: Handle | None) -> Ending:
        return Ending(code=128 + signal.SIGTERM)

    def simulator_pid(self, task_dir: Path) -> int | None:
        return None


def desired(simulators: int) -> Desired:
    nodes = max(1, -(-simulators // 250))  # 250 slots a node, as many nodes as needed
    pool = PoolSpec.model_validate(
        {"vmSize": "local", "taskSlotsPerNode": 250, "nodes": {"dedicated": nodes, "max": nodes}}
    )
    sim = SimulationSpec.model_validate(
        {"pool": "p", "simulators": simulators, "image": "local/x", "command": list(SLEEP)}
    )
    return Desired(pools={"p": pool}, simulations={"s": DesiredSimulation("s", sim)})


async def counted(backend: LocalBackend, state: str) -> int:
    observed = await backend.observe()
    return sum(1 for job in observed.jobs.values() for t in job.tasks if t.state.value == state)


async def until(predicate: Callable[[], object], every: float = 0.2) -> None:
    """Poll ``predicate`` (async) every ``every`` seconds until it holds, for at most ten
    minutes."""
    deadline = time.monotonic() + 600
    while not await predicate():  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(every)


def bare_spawns(count: int) -> float:
    """Seconds for ``count`` posix_spawn calls of :data:`SLEEP`; the processes are ended."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    pids = []
    started = time.perf_counter()
    for _ in range(count):
        pids.append(
            os.posix_spawnp(
                SLEEP[0],
                list(SLEEP),
                env,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)],
                setsid=True,
            )
        )
    elapsed = time.perf_counter() - started
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return elapsed


def runtime_spawns(count: int) -> float:
    """Seconds for ``count`` starts of :data:`SLEEP` by the process runtime alone, until
    every simulator has been exec'd (its pid file written); the processes are ended."""
    runtime = ProcessRuntime()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp, str(i)) for i in range(count)]
        started = time.perf_counter()
        handles = [runtime.spawn(Launch(d, "x", SLEEP, env, Path(tmp))) for d in dirs]
        waiting = list(dirs)
        while waiting:
            waiting = [d for d in waiting if not (d / "pid").exists()]
        elapsed = time.perf_counter() - started
        for handle in handles:
            os.killpg(handle.pid, signal.SIGKILL)
            os.waitpid(handle.pid, 0)
    return elapsed


async def start_and_close(count: int) -> dict[str, float]:
    """Figures 1 and 2 within one backend: seconds to running, the longest time the event
    loop was held meanwhile, seconds to close."""
    with tempfile.TemporaryDirectory() as tmp:
        backend = LocalBackend(Path(tmp), stop_grace=5)
        await backend.open()
        pool = desired(count).pools["p"]
        nodes = pool.nodes.dedicated
        assert isinstance(nodes, int)
        await backend.execute(CreatePool("p", pool, nodes, 0))
        await backend.execute(CreateJob("s", "p"))
        await backend.observe()
        template = Template(
            "local/x", SLEEP, (), (), "", desired(1).simulations["s"].spec.max_lifetime
        )
        tasks = tuple(NewTask(f"s-s{i}-rab-a0", i, "ab", 0) for i in range(count))
        with LoopLag() as lag:
            started = time.perf_counter()
            await backend.execute(AddTasks("s", template, tasks))
            await until(lambda: _all(backend, "running", count), every=0.02)
            to_running = time.perf_counter() - started
        started = time.perf_counter()
        await backend.close(stop_simulators=True)
        closed = time.perf_counter() - started
    return {
        "start_s": to_running,
        "start_loop_held_ms": lag.callback * 1000,
        "close_s": closed,
    }


DAEMON_SPEC = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {{name: sims}}
spec: {{vmSize: local, taskSlotsPerNode: 250, nodes: {{dedicated: {nodes}}}}}
---
apiVersion: simfleet/v1
kind: Simulation
metadata: {{name: bench}}
spec: {{pool: sims, simulators: {count}, image: bench:1, command: [sleep, "600"]}}
"""


def daemon_sigterm(count: int) -> float:
    """Seconds from SIGTERM to exit of a real daemon (``simfleet run``, local backend)
    running ``count`` simulators; it ends them all before it exits."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "specs").mkdir()
        spec = DAEMON_SPEC.format(count=count, nodes=-(-count // 250))
        (root / "specs" / "bench.yaml").write_text(spec)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        argv = [sys.executable, "-m", "controller", "run", "--specs", str(root / "specs")]
        argv += ["--state-dir", str(root / "state"), "--listen", f"127.0.0.1:{port}"]
        daemon = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while _daemon_ready(port) != count:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise RuntimeError("the daemon did not start its simulators")
                time.sleep(0.1)
            started = time.perf_counter()
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(120)
            return time.perf_counter() - started
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()


def _daemon_ready(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as response:
            return sum(int(s["ready"]) for s in json.load(response)["simulations"])
    except OSError:
        return -1


def measure(count: int = 500, *, daemon: bool = True) -> dict[str, float]:
    """The local figures of ``make bench`` for ``count`` simulators, with their floors.

    Returns:
        ``bare_spawn_s`` (the floor), ``runtime_spawn_s``, ``start_s``,
        ``start_ratio`` (start ÷ bare spawn; the target is ≤ 2),
        ``start_loop_held_ms``, ``close_s`` and, with
        ``daemon``, ``daemon_sigterm_s`` (the target for both is ≤ 2 s).
    """
    figures = {"simulators": float(count), "bare_spawn_s": bare_spawns(count)}
    figures["runtime_spawn_s"] = runtime_spawns(count)
    figures.update(asyncio.run(start_and_close(count)))
    figures["start_ratio"] = figures["start_s"] / figures["bare_spawn_s"]
    if daemon:
        figures["daemon_sigterm_s"] = daemon_sigterm(count)
    return figures


def print_measured(figures: dict[str, float]) -> None:
    count = int(figures["simulators"])
    print(
        f"start {count:>6}: {figures['start_s']:6.2f} s to running (bare posix_spawn "
        f"{figures['bare_spawn_s']:5.2f} s, ratio {figures['start_ratio']:4.1f}×; runtime "
        f"alone {figures['runtime_spawn_s']:5.2f} s; loop held ≤ "
        f"{figures['start_loop_held_ms']:.0f} ms)"
    )
    print(f"close {count:>6}: {figures['close_s']:6.2f} s to stop every simulator")
    if "daemon_sigterm_s" in figures:
        print(f"SIGTERM {count:>4}: {figures['daemon_sigterm_s']:6.2f} s until the daemon exited")


async def _all(backend: LocalBackend, state: str, count: int) -> bool:
    return await counted(backend, state) == count


async def scale_down(count: int, *, fake: bool) -> None:
    """Figures 3 and 4."""
    with tempfile.TemporaryDirectory() as tmp:
        runtime = NoProcesses() if fake else None
        backend = LocalBackend(Path(tmp), stop_grace=5, runtime=runtime)
        await backend.open()
        started = time.perf_counter()
        await run_pass(desired(count), backend, _now)
        await until(lambda: _all(backend, "running", count))
        up = time.perf_counter() - started
        with LoopLag() as lag, StateWrites() as writes:
            started = time.perf_counter()
            await run_pass(desired(2), backend, _now)
            passed = time.perf_counter() - started
            await until(lambda: _all(backend, "exited", count - 2))
            done = time.perf_counter() - started
        kind = "no processes" if fake else "real"
        print(
            f"scale {count:>6} → 2 ({kind:>12}): pass {passed:6.2f} s, all exited "
            f"{done:6.2f} s; {lag}; {writes.count} state writes (up took {up:.1f} s)"
        )
        await backend.close(stop_simulators=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--start", type=int, nargs="*", default=[500])
    parser.add_argument("--real", type=int, nargs="*", default=[2000])
    parser.add_argument("--fake", type=int, nargs="*", default=[2000, 20000])
    args = parser.parse_args()
    pid_max = Path("/proc/sys/kernel/pid_max").read_text().strip()  # noqa: ASYNC240 - once
    print(f"pid_max {pid_max}, {os.cpu_count()} cores")
    for count in args.start:
        print_measured(await asyncio.to_thread(measure, count))
    for count in args.real:
        await scale_down(count, fake=False)
    for count in args.fake:
        await scale_down(count, fake=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
