"""The processes a benchmark drives: the Batch emulator and the simfleet daemon, each in a
process of its own, with the readings the figures need from outside.

Each runs in its own process so that the figure is the daemon's (its CPU time, its peak
memory, its requests as the emulator saw them) and so that the emulator's work is never
charged to the client or the other way round. Times are ``time.monotonic()``: Linux's
CLOCK_MONOTONIC is shared by every process, so an edit written here at ``t`` and a request
the emulator logged as arriving at ``t + 0.08`` are 80 ms apart.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the emulator lives in tests/

from tests.batch_emulator._config import DEFAULT_ACCOUNT, DEFAULT_KEY  # noqa: E402

WRITES = frozenset(
    {
        "Pools_CreatePool",
        "Pools_ResizePool",
        "Pools_RemoveNodes",
        "Pools_DeletePool",
        "Jobs_CreateJob",
        "Jobs_DeleteJob",
        "Tasks_CreateTaskCollection",
        "Tasks_CreateTask",
        "Tasks_TerminateTask",
        "Tasks_DeleteTask",
    }
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; a benchmark that cannot converge says so."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


@dataclass(frozen=True)
class Logged:
    """One request as the emulator logged it (see tests/batch_emulator/_requestlog.py)."""

    arrived: float
    answered: float
    operation: str
    path: str
    outcome: int | str
    method: str = ""
    user_agent: str = ""

    @property
    def write(self) -> bool:
        return self.operation in WRITES


class Emulator:
    """``python -m tests.batch_emulator`` with its request log on, at a free port."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        allocation_delay: float = 0.0,
        node_start_delay: float = 0.0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.batch_emulator",
                "--port",
                str(self.port),
                "--request-log",
                "--latency",
                str(latency),
                "--allocation-delay",
                str(allocation_delay),
                "--node-start-delay",
                str(node_start_delay),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        until(self.state, 30, "the Batch emulator to answer")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_emulator/{path}", data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "state")
        return result

    def task_count(self, state: str | None = None) -> int:
        """Tasks in the account (in ``state``, if given)."""
        tasks: dict[str, dict[str, Any]] = self._call("GET", "tasks")
        return sum(1 for job in tasks.values() for t in job.values() if state in (None, t["state"]))

    def set_latency(self, seconds: float) -> None:
        self._call("POST", "latency", {"seconds": seconds})

    def requests(self, since: int = 0) -> list[Logged]:
        answer = self._call("GET", f"requests?since={since}")
        return [Logged(*entry) for entry in answer["requests"]]

    def mark(self) -> int:
        """How many requests are logged so far: read from here later with ``requests``."""
        return int(self._call("GET", f"requests?since={2**62}")["next"])

    def silent_for(self, seconds: float) -> bool:
        """No request answered in the last ``seconds`` (two small control calls: cheap
        enough to poll while the daemon works, unlike a listing of every task)."""
        mark = self.mark()
        last = self.requests(mark - 1) if mark else []
        return not last or time.monotonic() - last[-1].answered >= seconds

    def quiet(self, seconds: float, timeout: float = 600) -> None:
        """Wait until no request has been answered for ``seconds``."""
        until(lambda: self.silent_for(seconds), timeout, f"{seconds} s without requests", 0.1)

    def environ(self) -> dict[str, str]:
        """The variables that point the azure backend at this emulator."""
        return {
            "AZURE_BATCH_ENDPOINT": self.url,
            "AZURE_BATCH_ACCOUNT": DEFAULT_ACCOUNT,
            "AZURE_BATCH_ACCESS_KEY": DEFAULT_KEY,
        }

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def emulator(**kwargs: float) -> Iterator[Emulator]:
    running = Emulator(**kwargs)
    try:
        yield running
    finally:
        running.close()


SLOTS = 256  # Batch's most per node: few nodes for the emulator to run
POOL = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {{name: {name}}}
spec:
  vmSize: standard_d64s_v5
  taskSlotsPerNode: {slots}
  nodes: {nodes}
"""
SIMULATION = """\
apiVersion: simfleet/v1
kind: Simulation
metadata: {{name: {name}}}
spec: {{pool: {pool}, simulators: {count}, image: "bench/sim:1", command: [sleep, "3600"]}}
"""


class Fleet:
    """A specs directory of one pool and ``jobs`` simulations of ``per_job`` simulators,
    one file each (an edit rewrites one file, as an operator would). The pool sizes itself
    (``auto``, with room for a rollout's surge)."""

    def __init__(self, root: Path, jobs: int, per_job: int, pool: str = "bench") -> None:
        self.specs = root / "specs"
        self.state_dir = root / "state"
        self.specs.mkdir(parents=True, exist_ok=True)
        self.pool = pool
        self.jobs = [f"sim-{i:03d}" for i in range(jobs)]
        self.counts = dict.fromkeys(self.jobs, per_job)
        most = max(1, -(-jobs * per_job * 2 // SLOTS))
        counts = f"{{dedicated: auto, max: {most}}}"
        (self.specs / f"{pool}.yaml").write_text(POOL.format(name=pool, slots=SLOTS, nodes=counts))
        for job in self.jobs:
            self._write(job)

    def _write(self, job: str) -> None:
        text = SIMULATION.format(name=job, pool=self.pool, count=self.counts[job])
        path = self.specs / f"{job}.yaml"
        staged = path.with_name(f".{job}.yaml.tmp")
        staged.write_text(text)
        os.replace(staged, path)  # editors and git write whole files; so does the benchmark

    def scale(self, job: str, count: int) -> float:
        """Rewrite ``job``'s file with ``count`` simulators; return when it was written."""
        self.counts[job] = count
        text = SIMULATION.format(name=job, pool=self.pool, count=count)
        path = self.specs / f"{job}.yaml"
        staged = path.with_name(f".{job}.yaml.tmp")
        staged.write_text(text)
        written = time.monotonic()
        os.replace(staged, path)
        return written

    @property
    def simulators(self) -> int:
        return sum(self.counts.values())


@contextlib.contextmanager
def fleet(jobs: int, per_job: int) -> Iterator[Fleet]:
    root = Path(tempfile.mkdtemp(prefix="simfleet-bench-"))
    try:
        yield Fleet(root, jobs, per_job)
    finally:
        shutil.rmtree(root, ignore_errors=True)


MAX_IN_FLIGHT = 16


def simfleet(*args: str) -> list[str]:
    return [sys.executable, "-m", "controller", *args]


def bench_environ(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a simfleet child: the in-flight limit of issue 8 (an option the
    daemon reads as ``SIMFLEET_MAX_IN_FLIGHT``; a build without it ignores the variable)."""
    return {**os.environ, "SIMFLEET_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT), **extra}


class Daemon:
    """``simfleet run`` in its own process, with readings from /proc."""

    def __init__(
        self,
        specs: Path,
        state_dir: Path,
        *,
        backend: str,
        environ: dict[str, str],
        resync: float = 30.0,
    ) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            simfleet(
                "run",
                "--backend",
                backend,
                "--specs",
                str(specs),
                "--state-dir",
                str(state_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--resync",
                str(resync),
                "--log-format",
                "json",
            ),
            cwd=REPO,
            env=bench_environ(environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid = self.process.pid

    def _get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/status")
        return result

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=30) as r:
                return r.status == 200
        except urllib.error.HTTPError:
            return False

    def running(self) -> int:
        """Simulators /status shows ready."""
        return sum(int(s.get("ready", 0)) for s in self.status().get("simulations", []))

    def cpu_seconds(self) -> float:
        """User + system CPU time of the daemon process so far (/proc/PID/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def memory(self, field: str) -> int:
        """A ``/proc/PID/status`` figure in bytes: VmHWM (peak RSS) or VmRSS."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise LookupError(field)

    def terminate(self, timeout: float = 120) -> float:
        """SIGTERM; return the seconds until the process exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            self.terminate()


@contextlib.contextmanager
def daemon(
    fleet_: Fleet, *, backend: str, environ: dict[str, str], resync: float = 30.0
) -> Iterator[Daemon]:
    running = Daemon(
        fleet_.specs, fleet_.state_dir, backend=backend, environ=environ, resync=resync
    )
    try:
        yield running
    finally:
        running.close()
