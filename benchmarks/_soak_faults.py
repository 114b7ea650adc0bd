"""What goes wrong under the fleet, per backend: crashed simulators and a failing service.

Each injector offers fault kinds with weights (:attr:`kinds`) and one method per kind
that returns whether it could act now (a crash needs a running simulator). Simulators the
soak ends itself are remembered in :attr:`crashed`, so that the check for simulators a
bad file must not disturb does not blame the daemon for them.

Such checks need an *identity* per simulator that a task id is not: ids are deterministic,
so a simulation pruned and created again starts simulators under the very same ids. The
identity is the process id locally, and ``job/task#seq`` on Azure (the emulator numbers
every task ever added).

* local: ``kill -9`` of a simulator process, or of its wrapper (the process group leader
  that records the exit code: its death leaves an orphaned simulator the daemon must end
  before it starts a replacement).
* azure, through the emulator's control API (``tests/batch_emulator/_control.py``): a
  running task ends (137, 1 or 0, with the secret on stderr, which status must mask),
  Spot nodes are preempted (their tasks queue again) and recover later, and requests fail:
  500, 503 and 429 with ``Retry-After``, dropped connections (some after the work was
  done), and storms where a share of all requests fails for a while.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from _soak_specs import POOL, FleetModel

from tests.scenarios.conftest import EmulatorDriver, Fleet, processes_with

#: Operations a targeted fault may hit: the writes and the reads of a pass.
OPERATIONS = (
    "Pools_ListPools",
    "Jobs_ListJobs",
    "Tasks_ListTasks",
    "Jobs_GetJobTaskCounts",
    "Tasks_CreateTaskCollection",
    "Tasks_TerminateTask",
    "Tasks_DeleteTask",
    "Pools_ResizePool",
    "Jobs_CreateJob",
)


class LocalFaults:
    """Simulator crashes on this machine (see the module docstring)."""

    def __init__(self, fleet: Fleet, model: FleetModel) -> None:
        self.fleet = fleet
        self.model = model
        self.crashed: set[str] = set()
        self.kinds: dict[str, tuple[float, Callable[[random.Random], bool]]] = {
            "simulator kill -9": (6, self.crash),
            "wrapper kill -9": (1, self.crash_wrapper),
        }

    def alive(self) -> set[str]:
        """Identities (pids) of the soak's live simulators."""
        return self.fleet.driver.simulators(self.fleet.marker)

    def identities(self, rows: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, str]:
        """identity → task id of the simulators of ``(simulation, status row)`` alive now."""
        alive = self.alive()
        return {str(row.get("pid")): row["id"] for _, row in rows if str(row.get("pid")) in alive}

    def _victim(self, rng: random.Random) -> int | None:
        """The pid of a running simulator that really is one of the soak's processes."""
        try:
            status = self.fleet.status()
        except (OSError, http.client.HTTPException):
            return None  # the daemon is down: no pids to pick from
        ours = processes_with(self.fleet.marker, comm="sleep")
        pids = [
            row["pid"]
            for sim in status["simulations"]
            for row in sim["simulators"]
            if row["state"] == "running" and row.get("pid") in ours
        ]
        return rng.choice(pids) if pids else None

    def crash(self, rng: random.Random) -> bool:
        pid = self._victim(rng)
        if pid is None:
            return False
        self.crashed.add(str(pid))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return True

    def crash_wrapper(self, rng: random.Random) -> bool:
        pid = self._victim(rng)
        if pid is None:
            return False
        try:
            wrapper = os.getpgid(pid)  # the wrapper leads the simulator's group
        except ProcessLookupError:
            return False
        if wrapper not in processes_with(self.fleet.marker):
            return False
        self.crashed.add(str(pid))
        with contextlib.suppress(ProcessLookupError):
            os.kill(wrapper, signal.SIGKILL)
        return True

    def calm(self) -> None:
        """Nothing lingers: a crash is over once it happened."""


class AzureFaults:
    """Task endings, preemption and request faults through the emulator's control API."""

    def __init__(self, fleet: Fleet, model: FleetModel) -> None:
        assert isinstance(fleet.driver, EmulatorDriver)
        self.driver = fleet.driver
        self.model = model
        self.crashed: set[str] = set()
        self.preempted: list[str] = []
        self.kinds: dict[str, tuple[float, Callable[[random.Random], bool]]] = {
            "task ends": (5, self.crash),
            "spot preemption": (1.5, self.preempt),
            "spot recovery": (1, self.recover),
            "HTTP 500": (2, lambda rng: self._fault(rng, "internal_error")),
            "HTTP 503 Retry-After": (1.5, lambda rng: self._fault(rng, "server_busy")),
            "HTTP 429 Retry-After": (1.5, lambda rng: self._fault(rng, "throttle")),
            "dropped connection": (2, lambda rng: self._fault(rng, "drop")),
            "fault storm": (0.5, self.storm),
        }

    def _tasks(self) -> dict[str, dict[str, dict[str, Any]]]:
        """job → task → {"state", "seq"}, from the emulator."""
        tasks: dict[str, dict[str, dict[str, Any]]] = self.driver.control("GET", "tasks")
        return tasks

    def alive(self) -> set[str]:
        """Identities (``job/task#seq``) of the tasks not completed."""
        return {
            f"{job}/{task}#{about['seq']}"
            for job, tasks in self._tasks().items()
            for task, about in tasks.items()
            if about["state"] != "completed"
        }

    def identities(self, rows: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, str]:
        """identity → task id of the simulators of ``(simulation, status row)`` alive now."""
        tasks = self._tasks()
        found = {}
        for simulation, row in rows:
            about = tasks.get(simulation, {}).get(row["id"])
            if about is not None and about["state"] != "completed":
                found[f"{simulation}/{row['id']}#{about['seq']}"] = row["id"]
        return found

    def crash(self, rng: random.Random) -> bool:
        running = [
            (job, task, about["seq"])
            for job, tasks in self._tasks().items()
            if job in self.model.simulations
            for task, about in tasks.items()
            if about["state"] == "running"
        ]
        if not running:
            return False
        job, task, seq = rng.choice(running)
        secret = self.model.secret_values[self.model.simulations[job].secret_var]
        body = {
            "jobId": job,
            "taskId": task,
            "exitCode": rng.choice([137, 137, 1, 0]),
            "stderr": f"soak: starting, token {secret}\nKilled\n",
        }
        self.crashed.add(f"{job}/{task}#{seq}")
        try:
            self.driver.control("POST", "finish-task", body)
        except OSError:
            return False  # it ended on its own meanwhile (HTTP 409)
        return True

    def preempt(self, rng: random.Random) -> bool:
        del rng
        try:
            answer: Mapping[str, Any] = self.driver.control(
                "POST", "preempt", {"poolId": POOL, "count": 1}
            )
        except OSError:
            return False  # the pool is not there yet
        self.preempted += answer["nodeIds"]
        return bool(answer["nodeIds"])

    def recover(self, rng: random.Random) -> bool:
        del rng
        if not self.preempted:
            return False
        with contextlib.suppress(OSError):
            self.driver.control("POST", "recover", {"poolId": POOL, "nodeIds": self.preempted})
        self.preempted = []
        return True

    def _fault(self, rng: random.Random, fault: str) -> bool:
        body: dict[str, Any] = {
            "fault": fault,
            "times": rng.randint(1, 3),
            "retryAfter": rng.choice([1, 2, 3]),
            "afterProcessing": fault in ("internal_error", "drop") and rng.random() < 0.5,
        }
        if rng.random() < 0.5:
            body["operations"] = [rng.choice(OPERATIONS)]
        self.driver.control("POST", "faults", body)
        return True

    def storm(self, rng: random.Random) -> bool:
        """A share of every request fails until the faults stop (calm)."""
        fault = rng.choice(["internal_error", "drop"])
        body = {"fault": fault, "probability": 0.2, "seed": rng.randrange(2**31)}
        self.driver.control("POST", "faults", body)
        return True

    def calm(self) -> None:
        """Faults stop: no more failing requests, and Spot capacity comes back."""
        self.driver.control("DELETE", "faults")
        self.recover(random.Random(0))


Faults = LocalFaults | AzureFaults
