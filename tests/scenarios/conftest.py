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
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


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


@dataclass
class Fleet:
    """A specs directory, a state directory and the daemon that reconciles them."""

    root: Path
    backend: str
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
        return self.root / "state"

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
        extra: str = "",
    ) -> str:
        return (
            f"apiVersion: simfleet/v1\nkind: Simulation\nmetadata: {{name: {name}}}\nspec:\n"
            f"  pool: {pool}\n  simulators: {simulators}\n  image: scenario/sim:1\n"
            f"  command: {command}\n  env: {{SCENARIO_MARKER: {self.marker}}}\n"
            f"  restartBackoff: {{initial: 1s, max: 4s, resetAfter: 1m}}\n{extra}"
        )

    # --------------------------------------------------------------------------- daemon

    def start(self, *extra: str) -> None:
        env = {**os.environ, **self.env}
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
                str(self.state_dir),
                "--backend",
                self.backend,
                "--listen",
                f"127.0.0.1:{self.port}",
                "--resync",
                "2",
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
        wait_until(self.ready, timeout=30, what="the daemon's /readyz")

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

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

    def simulators(self) -> dict[int, str]:
        """The simulator processes (``sleep``) this test started, by pid."""
        return processes_with(self.marker, comm="sleep")

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
        strays = set(processes_with(self.marker)) | processes_naming(str(self.root))
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)


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


BACKENDS = [pytest.param("local", id="local")]


@pytest.fixture(params=BACKENDS)
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(root=tmp_path, backend=request.param)
    fleet.specs.mkdir()
    yield fleet
    fleet.cleanup()
