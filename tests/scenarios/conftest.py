"""Scenario fixtures: the real ``simfleet run`` daemon as a child process, per backend.

A scenario writes spec files, starts the daemon (``python -m controller run``), edits
files, reads ``/status`` over HTTP and counts the simulator processes that really run.
Every simulator gets a ``SCENARIO_MARKER`` environment variable unique to the test, so the
census finds exactly this test's processes. Waiting is always a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.batch_emulator._requestlog import LoggedRequest

REPO = Path(__file__).resolve().parents[2]
LEASE_TIMINGS = {
    "SIMFLEET_LEASE_DURATION": "6",
    "SIMFLEET_LEASE_RENEW_DEADLINE": "4",
    "SIMFLEET_LEASE_RETRY_PERIOD": "1",
}
STATE = ".simfleet"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.05)


def processes_with(marker: str, comm: str | None = None) -> dict[int, str]:
    """pid → comm of every process whose environment holds ``SCENARIO_MARKER=marker``."""
    found = {}
    needle = f"SCENARIO_MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            name = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state != "Z" and (comm is None or name == comm):
            found[int(entry.name)] = name
    return found


def kill_groups(pids: Iterable[int]) -> None:
    """SIGKILL the process group of each of ``pids``: a simulator's wrapper leads its own,
    with its output writers and leftovers. A process in this test run's own group (a
    daemon the test started shares it) is killed alone: its group is the test run
    itself, and whatever started it (CI's shell)."""
    own = os.getpgrp()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group == own:
                os.kill(pid, signal.SIGKILL)
            else:
                os.killpg(group, signal.SIGKILL)


class LocalDriver:
    """The local backend: simulators are real processes, found by the test's marker."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def env(self) -> dict[str, str]:
        return {}

    def simulators(self, marker: str) -> set[str]:
        """The pids of this test's simulator processes (``sleep``), as strings."""
        return {str(pid) for pid in processes_with(marker, comm="sleep")}

    def crash(self, simulation: str, row: dict[str, Any]) -> None:
        os.kill(row["pid"], signal.SIGKILL)

    def identity(self, simulation: str, row: dict[str, Any]) -> str:
        """How :meth:`simulators` names the simulator of a status row."""
        return str(row["pid"])

    def live_per_slot(self, marker: str, simulation: str) -> Counter[int]:
        """Live simulator processes per slot, from each process's own environment."""
        return Counter(slot for slot, _ in self.live_tasks(marker, simulation))

    def live_tasks(self, marker: str, simulation: str) -> list[tuple[int, str]]:
        """(slot, task id) of every live simulator process of ``simulation``."""
        return self.live_by_simulation(marker).get(simulation, [])

    def live_by_simulation(self, marker: str) -> dict[str, list[tuple[int, str]]]:
        """(slot, task id) of every live simulator process, by simulation (one census)."""
        found: dict[str, list[tuple[int, str]]] = {}
        for pid in processes_with(marker, comm="sleep"):
            try:
                env = dict(
                    item.split(b"=", 1)
                    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                    if b"=" in item
                )
            except OSError:
                continue
            if b"SIMFLEET_SIMULATION" in env:
                found.setdefault(env[b"SIMFLEET_SIMULATION"].decode(), []).append(
                    (int(env[b"SIMFLEET_SLOT"]), env[b"SIMFLEET_TASK_ID"].decode())
                )
        return found

    def stop(self) -> None:
        pass


#: The standalone emulator's delays in most scenarios: a pool is ready in under a second,
#: a task prepares (its image pulled) in a fraction of one, task counts lag half a second.
QUICK = (
    *("--allocation-delay", "0.5", "--node-start-delay", "0.2", "--deletion-delay", "1"),
    *("--image-pull-delay", "0.2", "--task-prepare-delay", "0.1", "--task-counts-lag", "0.5"),
)


class EmulatorDriver:
    """The azure backend against a standalone Batch emulator in its own process.

    Simulators are the emulator's running tasks; a crash is a task ending with exit code
    137. The emulator's clock runs at wall speed, with short allocation delays (or those
    of the profile named in ``extra``, e.g. ``--profile realistic``).
    """

    name = "azure"

    def __init__(self, root: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = (root / "emulator.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.batch_emulator",
                "--port",
                str(self.port),
                # Short delays, unless the test asked for a profile of its own.
                *(() if "--profile" in extra else QUICK),
                "--conformance",
                *extra,
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._up, timeout=30, what="the Batch emulator")

    def _up(self) -> bool:
        try:
            self.state()
        except (urllib.error.URLError, OSError):
            return False
        return True

    def env(self) -> dict[str, str]:
        from tests.batch_emulator._config import DEFAULT_ACCOUNT, DEFAULT_KEY

        return {
            "AZURE_BATCH_ENDPOINT": self.url,
            "AZURE_BATCH_ACCOUNT": DEFAULT_ACCOUNT,
            "AZURE_BATCH_ACCESS_KEY": DEFAULT_KEY,
            # A daemon restarted after kill -9 waits out its predecessor's lease: keep it
            # short, with margins a loaded machine keeps (renewals every second).
            **LEASE_TIMINGS,
        }

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "state")
        return result

    def requests(self) -> list[LoggedRequest]:
        """Every request logged so far (the emulator runs with ``--request-log``)."""
        return [LoggedRequest(*entry) for entry in self.control("GET", "requests")["requests"]]

    def tasks(self) -> dict[str, dict[str, str]]:
        """job → task id → Batch state, as the emulator holds them."""
        result: dict[str, dict[str, str]] = self.state()["tasks"]
        return result

    def simulators(self, marker: str) -> set[str]:
        """``job/task`` of every running task (each test has its own emulator)."""
        del marker
        return {
            f"{job}/{task}"
            for job, tasks in self.tasks().items()
            for task, state in tasks.items()
            if state == "running"
        }

    def identity(self, simulation: str, row: dict[str, Any]) -> str:
        return f"{simulation}/{row['id']}"

    def live_per_slot(self, marker: str, simulation: str) -> Counter[int]:
        """Tasks not yet completed per slot, as the emulator holds them."""
        return Counter(slot for slot, _ in self.live_tasks(marker, simulation))

    def live_tasks(self, marker: str, simulation: str) -> list[tuple[int, str]]:
        """(slot, task id) of every task of ``simulation`` not yet completed."""
        return self.live_by_simulation(marker).get(simulation, [])

    def live_by_simulation(self, marker: str) -> dict[str, list[tuple[int, str]]]:
        """(slot, task id) of every task not yet completed, by job (one state request)."""
        del marker
        return {
            job: [
                (int(m.group(1)), task)
                for task, state in tasks.items()
                if state != "completed" and (m := re.search(r"-s(\d+)-r", task))
            ]
            for job, tasks in self.tasks().items()
        }

    def crash(self, simulation: str, row: dict[str, Any]) -> None:
        self.control(
            "POST",
            "finish-task",
            {"jobId": simulation, "taskId": row["id"], "exitCode": 137, "stderr": "Killed\n"},
        )

    def stop(self) -> None:
        """Stop the emulator, failing the test if any request or response broke the spec."""
        violations = self.state()["violations"] if self.process.poll() is None else []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        assert not violations, "Batch REST spec violations:\n" + "\n".join(violations)


Driver = LocalDriver | EmulatorDriver


@dataclass
class Fleet:
    """A specs directory, a state directory and the daemon that reconciles them."""

    root: Path
    driver: Driver
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def specs(self) -> Path:
        return self.root / "specs"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE  # the daemon gets it relative to its cwd, as users do

    @property
    def log_path(self) -> Path:
        return self.root / "daemon.log"

    # ----------------------------------------------------------------------- spec files

    def write(self, name: str, text: str) -> Path:
        path = self.specs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)  # atomic, as editors and git do
        return path

    def pool(self, name: str = "sims", nodes: int = 2, slots: int = 4) -> str:
        return (
            f"apiVersion: simfleet/v1\nkind: Pool\nmetadata: {{name: {name}}}\n"
            f"spec: {{vmSize: standard_d2s_v5, taskSlotsPerNode: {slots}, "
            f"nodes: {{dedicated: {nodes}}}}}\n"
        )

    def simulation(
        self,
        name: str,
        simulators: int,
        *,
        command: str = '["sleep", "600"]',
        pool: str = "sims",
        image: str = "scenario/sim:1",
        extra: str = "",
    ) -> str:
        return (
            f"apiVersion: simfleet/v1\nkind: Simulation\nmetadata: {{name: {name}}}\nspec:\n"
            f"  pool: {pool}\n  simulators: {simulators}\n  image: {image}\n"
            f"  command: {command}\n  env: {{SCENARIO_MARKER: {self.marker}}}\n"
            f"  restartBackoff: {{initial: 1s, max: 4s, resetAfter: 1m}}\n{extra}"
        )

    # --------------------------------------------------------------------------- daemon

    def start(self, *extra: str, ready: bool = True) -> None:
        """Start the daemon and (``ready``) wait for its ``/readyz``; a standby never is."""
        env = {**os.environ, **self.driver.env(), **self.env}
        self.starts += 1
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "controller",
                "run",
                "--specs",
                str(self.specs),
                "--state-dir",
                STATE,
                "--backend",
                self.driver.name,
                "--listen",
                f"127.0.0.1:{self.port}",
                "--resync",
                "2",
                "--settle",
                "0.5",
                "--prune-delay",  # short, so prune scenarios stay quick; tests may override
                "1",
                "--log-format",
                "json",
                *extra,
            ],
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if ready:
            wait_until(self.ready, timeout=30, what="the daemon's /readyz")

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def readyz(self) -> tuple[int, str]:
        """``/readyz`` as (status, text); (0, "") while nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except (urllib.error.URLError, OSError):
            return 0, ""

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=5) as r:
            document: dict[str, Any] = json.load(r)
            return document

    def raw_status(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=5) as r:
            return str(r.read().decode())

    def sim(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.status()["simulations"] if s["name"] == name), None)

    def wait_sim(
        self, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            sim = self.sim(name)
            return sim if sim is not None and predicate(sim) else None

        result: dict[str, Any] = wait_until(check, timeout, what=f"status of {name}")
        return result

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def simulators(self) -> set[str]:
        """What really runs: pids (local) or running task ids (azure) of this test."""
        return self.driver.simulators(self.marker)

    def running(self, simulation: str) -> set[str]:
        """Identities of the simulators ``/status`` shows running for ``simulation``."""
        sim = self.sim(simulation)
        rows = sim["simulators"] if sim is not None else []
        return {self.driver.identity(simulation, r) for r in rows if r["state"] == "running"}

    def doubled_slots(self, simulation: str) -> list[int]:
        """Slots with more than one live simulator right now (never, outside a rollout)."""
        counts = self.driver.live_per_slot(self.marker, simulation)
        return sorted(slot for slot, n in counts.items() if n > 1)

    def slot_violations(self, simulation: str, max_pairs: int) -> list[str]:
        """What breaks the rollout bound: more than two live simulators in a slot, or more
        slots holding two (an old one and its replacement) than ``max_pairs``. A duplicate
        counts as a pair too, so it cannot hide inside a rollout."""
        per_slot = Counter(slot for slot, _ in self.driver.live_tasks(self.marker, simulation))
        problems = [f"slot {s}: {n} live" for s, n in per_slot.items() if n > 2]
        pairs = sum(1 for n in per_slot.values() if n == 2)
        if pairs > max_pairs:
            problems.append(f"{pairs} pairs > maxSurge {max_pairs}")
        return problems

    def crash(self, simulation: str, slot: int) -> dict[str, Any]:
        """Make slot ``slot``'s simulator die as a ``kill -9`` would; returns its row."""
        sim = self.sim(simulation)
        assert sim is not None
        row: dict[str, Any] = sim["simulators"][slot]
        self.driver.crash(simulation, row)
        return row

    def cleanup(self) -> None:
        """Stop the daemon as a user would (SIGTERM), then kill anything left over.

        Leftovers are found by marker and by command line: every simulator's wrapper
        names its task folder, which lies under this test's directory.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        kill_groups(set(processes_with(self.marker)) | processes_naming(str(self.root)))
        self.driver.stop()


def processes_naming(text: str) -> set[int]:
    """Pids of live processes whose command line contains ``text``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


BACKENDS = [pytest.param("local", id="local"), pytest.param("azure", id="azure")]


def make_driver(backend: str, root: Path, *emulator_args: str) -> Driver:
    return LocalDriver(root) if backend == "local" else EmulatorDriver(root, *emulator_args)


@pytest.fixture(params=BACKENDS)
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(root=tmp_path, driver=make_driver(request.param, tmp_path))
    fleet.specs.mkdir()
    yield fleet
    fleet.cleanup()


@pytest.fixture
def local_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """For behaviours only the local backend has (processes, state directory)."""
    fleet = Fleet(root=tmp_path, driver=LocalDriver(tmp_path))
    fleet.specs.mkdir()
    yield fleet
    fleet.cleanup()
