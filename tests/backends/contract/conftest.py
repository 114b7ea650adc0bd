"""One driver per backend: what genuinely differs in making the contract's situations.

The contract tests speak only the :class:`~controller.backends.Backend` protocol plus a
:class:`Driver`, which knows how its backend lets time pass (the emulator's clock is
frozen and moved on by hand; local processes run in real time; the fake is instant), how
to make a running simulator exit with a given code and output (the fake's ``crash``, the
emulator's control API, a file the local simulator waits for), how to make objects
simfleet did not create, and how to open a second backend on the same state.

Every backend here is real where it can be: the local one runs processes, the Azure one
sends every request through the azure-batch SDK over HTTP to the Batch emulator (which
fails the test on any request or response that breaks the REST spec).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from azure.batch import models as m

from controller.backends import DEFAULT_FLEET, Backend
from controller.backends.azure import AzureBackend, AzureSettings
from controller.backends.azure import _mapping as azure_mapping
from controller.backends.local import LocalBackend
from controller.planner import (
    AddTasks,
    CreateJob,
    CreatePool,
    NewTask,
    Observed,
    ObservedPool,
    ObservedTask,
    PoolConfig,
    TaskTemplate,
)
from controller.spec import PoolSpec
from controller.testing import FakeBackend
from tests.backends.local.conftest import kill_strays
from tests.batch_emulator._emulator import BatchEmulator
from tests.batch_emulator.fixtures import EmulatorFactory, make_batch_emulator  # noqa: F401

#: Wall-clock seconds any situation may take to come about (generous: CI is slow).
TIMEOUT = 30.0
POOL = "sims"
JOB = "sim"
REVISION = "0123456789"


def pool_spec(slots: int = 2) -> PoolSpec:
    """A pool spec every backend accepts (the emulator checks the VM size)."""
    return PoolSpec.model_validate({"vmSize": "standard_d4s_v5", "taskSlotsPerNode": slots})


def task_id(slot: int, attempt: int = 0, job: str = JOB) -> str:
    """A simfleet task id (the Azure backend reads slot, revision and attempt from it)."""
    return f"{job}-s{slot}-r{REVISION}-a{attempt}"


def new_tasks(*slots: int, job: str = JOB) -> tuple[NewTask, ...]:
    return tuple(NewTask(task_id(s, job=job), s, REVISION, 0) for s in slots)


class Driver(ABC):
    """How a contract test makes its situations on one backend."""

    name: str
    #: ``on_change`` is called when a simulator ends by itself.
    notices_exits: bool
    #: ``close(stop_simulators=True)`` ends the simulators (they run in our processes).
    stops_on_close: bool
    #: ``request_counts`` counts requests (it is empty for backends that send none).
    sends_requests: bool
    #: the backend can hold pools and jobs simfleet did not create.
    has_foreign_objects: bool

    backend: Backend

    @property
    @abstractmethod
    def template(self) -> TaskTemplate:
        """A simulator that runs until :meth:`finish` ends it (or it is stopped)."""

    @abstractmethod
    async def settle(self) -> None:
        """Let a little time pass on the backend's side."""

    @abstractmethod
    async def finish(
        self, job: str, task: str, *, exit_code: int, stdout: str = "", stderr: str = ""
    ) -> None:
        """Make a running simulator write ``stdout``/``stderr`` and exit with ``exit_code``."""

    @abstractmethod
    async def add_foreign(self, pool: str, job: str) -> None:
        """Create a pool and a job on it the way someone other than simfleet would."""

    @abstractmethod
    async def reopen(self) -> Backend:
        """Another backend on the same state (what a restarted controller would open)."""

    async def close(self, *, stop_simulators: bool = False) -> None:
        """Close :attr:`backend`."""
        await self.backend.close(stop_simulators=stop_simulators)

    async def eventually(self, check: Callable[[Observed], bool], what: str) -> Observed:
        """Observe until ``check`` holds, letting time pass between looks."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            observed = await self.backend.observe()
            if check(observed):
                return observed
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: timed out waiting for {what}; last seen {observed}")
            await self.settle()

    async def pool_and_job(self, *, slots: int = 2, nodes: int = 1) -> None:
        """Pool ``sims`` of ``nodes`` × ``slots`` and job ``sim`` on it."""
        await self.backend.execute(CreatePool(POOL, pool_spec(slots), nodes, 0))
        await self.backend.execute(CreateJob(JOB, POOL))

    async def add(self, *slots: int, job: str = JOB) -> None:
        """Add one simulator per slot to ``job`` in one request."""
        await self.backend.execute(AddTasks(job, self.template, new_tasks(*slots, job=job)))

    async def running(self, *slots: int, job: str = JOB) -> Observed:
        """Wait until the simulators of these slots run."""
        ids = {task_id(s, job=job) for s in slots}

        def check(observed: Observed) -> bool:
            tasks = observed.jobs[job].tasks if job in observed.jobs else ()
            return {t.id for t in tasks if t.state.value == "running"} >= ids

        return await self.eventually(check, f"{sorted(ids)} to run")

    async def exited(self, *slots: int, job: str = JOB) -> Observed:
        """Wait until the simulators of these slots have exited."""
        ids = {task_id(s, job=job) for s in slots}

        def check(observed: Observed) -> bool:
            tasks = observed.jobs[job].tasks if job in observed.jobs else ()
            return {t.id for t in tasks if t.state.value == "exited"} >= ids

        return await self.eventually(check, f"{sorted(ids)} to exit")


def find(observed: Observed, slot: int, job: str = JOB) -> ObservedTask:
    """The task of ``slot`` (attempt 0) in a snapshot."""
    wanted = task_id(slot, job=job)
    return next(t for t in observed.jobs[job].tasks if t.id == wanted)


# ------------------------------------------------------------------------------ fake


class FakeDriver(Driver):
    name = "fake"
    notices_exits = True
    stops_on_close = True
    sends_requests = False
    has_foreign_objects = True

    def __init__(self) -> None:
        self.fake = FakeBackend()
        self.backend = self.fake

    @property
    def template(self) -> TaskTemplate:
        return TaskTemplate("sim/test:1", None, (), (), "", timedelta(days=1))

    async def settle(self) -> None:
        await asyncio.sleep(0)

    async def finish(
        self, job: str, task: str, *, exit_code: int, stdout: str = "", stderr: str = ""
    ) -> None:
        self.fake.crash(job, task, exit_code, stderr=stderr, stdout=stdout)

    async def add_foreign(self, pool: str, job: str) -> None:
        self.fake.pools[pool] = ObservedPool(pool, False, PoolConfig.of(pool_spec()))
        self.fake.add_foreign_job(job, pool)

    async def reopen(self) -> Backend:
        return self.fake  # the fake's state lives in the object itself


# ----------------------------------------------------------------------------- local

#: Waits for its task's control file, prints what it names, exits with its code.
WAITS_FOR_ITS_END = (
    'c="$SIMFLEET_CONTROL/$SIMFLEET_TASK_ID";'
    ' while [ ! -e "$c.code" ]; do sleep 0.02; done;'
    ' cat "$c.out"; cat "$c.err" >&2; exit "$(cat "$c.code")"'
)


class LocalDriver(Driver):
    name = "local"
    notices_exits = True
    stops_on_close = True
    sends_requests = False
    has_foreign_objects = False

    def __init__(self, root: Path) -> None:
        self.state_dir = root / "state"
        self.control = root / "control"
        self.control.mkdir(parents=True)
        self.opened: list[LocalBackend] = []

    async def open(self) -> LocalBackend:
        backend = LocalBackend(self.state_dir, stop_grace=1.0)
        await backend.open()
        self.opened.append(backend)
        self.backend = backend
        return backend

    @property
    def template(self) -> TaskTemplate:
        env = (("SIMFLEET_CONTROL", str(self.control)),)
        return TaskTemplate("local/test:1", WAITS_FOR_ITS_END, env, (), "", timedelta(days=1))

    async def settle(self) -> None:
        await asyncio.sleep(0.02)

    async def finish(
        self, job: str, task: str, *, exit_code: int, stdout: str = "", stderr: str = ""
    ) -> None:
        base = self.control / task
        base.with_suffix(".out").write_text(stdout)
        base.with_suffix(".err").write_text(stderr)
        scratch = base.with_suffix(".tmp")
        scratch.write_text(str(exit_code))
        os.replace(scratch, base.with_suffix(".code"))
        await self.eventually(
            lambda o: next(t for t in o.jobs[job].tasks if t.id == task).state.value == "exited",
            f"{task} to exit",
        )

    async def add_foreign(self, pool: str, job: str) -> None:
        raise NotImplementedError("everything in a local state directory is simfleet's")

    async def reopen(self) -> Backend:
        return await self.open()

    async def teardown(self) -> None:
        for backend in self.opened:
            with contextlib.suppress(Exception):
                await backend.close(stop_simulators=True)
        kill_strays(self.state_dir)


# ----------------------------------------------------------------------------- azure


class AzureDriver(Driver):
    name = "azure"
    notices_exits = False
    stops_on_close = False
    sends_requests = True
    has_foreign_objects = True

    def __init__(self, emulator: BatchEmulator) -> None:
        self.emulator = emulator
        self.opened: list[AzureBackend] = []
        self.closed: set[int] = set()

    def open(self) -> AzureBackend:
        settings = AzureSettings(self.emulator.endpoint, self.emulator.account, self.emulator.key)
        backend = AzureBackend(settings)
        self.opened.append(backend)
        self.backend = backend
        return backend

    @property
    def template(self) -> TaskTemplate:
        return TaskTemplate("sim/test:1", "run-simulator", (), (), "", timedelta(days=1))

    async def settle(self) -> None:
        self.emulator.advance(2)
        await asyncio.sleep(0)

    async def finish(
        self, job: str, task: str, *, exit_code: int, stdout: str = "", stderr: str = ""
    ) -> None:
        self.emulator.finish_task(job, task, exit_code=exit_code, stdout=stdout, stderr=stderr)

    async def add_foreign(self, pool: str, job: str) -> None:
        client: Any = AzureBackend(
            AzureSettings(self.emulator.endpoint, self.emulator.account, self.emulator.key)
        )._client
        async with client:
            body = azure_mapping.pool_create(CreatePool(pool, pool_spec(), 0, 0), DEFAULT_FLEET)
            body.metadata = None  # no ownership mark: not simfleet's
            await client.create_pool(body)
            await client.create_job(
                m.BatchJobCreateOptions(id=job, pool_info=m.BatchPoolInfo(pool_id=pool))
            )

    async def close(self, *, stop_simulators: bool = False) -> None:
        self.closed.add(id(self.backend))
        await self.backend.close(stop_simulators=stop_simulators)

    async def reopen(self) -> Backend:
        return self.open()

    async def teardown(self) -> None:
        for backend in self.opened:
            if id(backend) not in self.closed:
                await backend.close()


DRIVERS = ("fake", "local", "azure")


@pytest_asyncio.fixture(params=DRIVERS)
async def driver(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    make_batch_emulator: EmulatorFactory,  # noqa: F811
) -> AsyncIterator[Driver]:
    """Each contract test runs once per backend."""
    if request.param == "fake":
        yield FakeDriver()
    elif request.param == "local":
        local = LocalDriver(tmp_path)
        await local.open()
        try:
            yield local
        finally:
            await local.teardown()
    else:
        emulator = await make_batch_emulator(allocation_delay=2.0, node_start_delay=1.0)
        azure = AzureDriver(emulator)
        azure.open()
        try:
            yield azure
        finally:
            await azure.teardown()
