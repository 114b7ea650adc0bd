"""Shared helpers for the local backend's tests: real processes, awaited with deadlines.

Nothing here sleeps a fixed time to wait for something: :func:`wait_for` polls a
condition until a deadline. Every process a test starts is killed in teardown, even if
the test failed half-way: the ``backend`` fixtures close with ``stop_simulators=True``
and :func:`kill_strays` then kills any process group still tied to the state directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from controller.backends.local import LocalBackend
from controller.planner import (
    AddTasks,
    CreateJob,
    CreatePool,
    NewTask,
    Observed,
    ObservedTask,
    SecretEnv,
    TaskTemplate,
)
from controller.spec import NodeCounts, PoolSpec

GRACE = 1.0


async def wait_for(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = ""
) -> None:
    """Poll ``predicate`` (plain or async) until it is true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (this sandbox's pid 1 does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def comm(pid: int) -> str:
    """The process's command name ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def wrappers_of(state_dir: Path) -> list[int]:
    """Live wrapper processes started for ``state_dir``: their argv names the task folder
    and they lead their process group (their output writers are subshells with the same
    argv that do not)."""
    marker = os.fsencode(str(state_dir))
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            try:
                ours = marker in (entry / "cmdline").read_bytes()
                if ours and alive(pid) and os.getpgid(pid) == pid:
                    found.append(pid)
            except OSError:
                continue
    return found


def template(
    command: str | tuple[str, ...] | None,
    *,
    env: tuple[tuple[str, str], ...] = (),
    secrets: tuple[SecretEnv, ...] = (),
    max_lifetime: timedelta = timedelta(days=150),
) -> TaskTemplate:
    """A task template for the process runtime."""
    return TaskTemplate(
        image="local/test:1",
        command=command,
        env=env,
        secret_env=secrets,
        container_run_options="",
        max_lifetime=max_lifetime,
    )


def secret(name: str, from_env: str, value: str) -> SecretEnv:
    """A ``secretEnv`` entry with its resolved value."""
    return SecretEnv(name=name, from_env=from_env, value=SecretStr(value))


def new_tasks(*ids: str) -> tuple[NewTask, ...]:
    """Tasks with the given ids, slots 0, 1, 2, … in order."""
    return tuple(NewTask(id=i, slot=n, revision="r1", attempt=0) for n, i in enumerate(ids))


async def pool_and_job(
    backend: LocalBackend, *, slots: int = 4, nodes: int = 1, pool: str = "sims", job: str = "sim"
) -> None:
    """Create a pool of ``nodes`` × ``slots`` and a job on it."""
    spec = PoolSpec(vm_size="local", task_slots_per_node=slots, nodes=NodeCounts(dedicated=nodes))
    await backend.execute(CreatePool(name=pool, spec=spec, dedicated=nodes, spot=0))
    await backend.execute(CreateJob(name=job, pool=pool))


async def add(
    backend: LocalBackend, command: str | tuple[str, ...] | None, *ids: str, job: str = "sim"
) -> None:
    """Add tasks running ``command`` to ``job``."""
    await backend.execute(AddTasks(job=job, template=template(command), tasks=new_tasks(*ids)))


def task_in(observed: Observed, task_id: str, job: str = "sim") -> ObservedTask:
    """One task of a snapshot."""
    return next(t for t in observed.jobs[job].tasks if t.id == task_id)


async def task(backend: LocalBackend, task_id: str, job: str = "sim") -> ObservedTask:
    """One task, freshly observed."""
    return task_in(await backend.observe(), task_id, job)


def kill_strays(state_dir: Path) -> None:
    """SIGKILL every process group whose wrapper or simulator belongs to ``state_dir``."""
    marker = os.fsencode(str(state_dir))
    groups: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                groups.add(os.getpgid(int(entry.name)))
    for pid_file in state_dir.glob("local/jobs/*/*/pid"):
        with contextlib.suppress(OSError, ValueError):
            groups.add(os.getpgid(int(pid_file.read_text())))
    for pgid in groups - {os.getpgrp()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


BackendFactory = Callable[..., Awaitable[LocalBackend]]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """An empty state directory."""
    return tmp_path / "state"


@pytest.fixture
async def open_backend(state_dir: Path) -> AsyncIterator[BackendFactory]:
    """Open controlling backends on ``state_dir``; all are closed and their processes
    killed at teardown."""
    opened: list[LocalBackend] = []

    async def factory(**kwargs: object) -> LocalBackend:
        kwargs.setdefault("stop_grace", GRACE)
        backend = LocalBackend(state_dir, **kwargs)  # type: ignore[arg-type]
        await backend.open()
        opened.append(backend)
        return backend

    try:
        yield factory
    finally:
        for backend in opened:
            await backend.close(stop_simulators=True)
        kill_strays(state_dir)


@pytest.fixture
async def backend(open_backend: BackendFactory) -> LocalBackend:
    """An open backend with pool ``sims`` (1 node × 4 slots) and job ``sim``."""
    backend = await open_backend()
    await pool_and_job(backend)
    return backend


REPO = Path(__file__).resolve().parents[3]


async def killed_controller_pids(script: str, *args: str) -> dict[str, int]:
    """Run a controller ``script`` in a process of its own until it prints the pids of its
    simulators as one JSON line, then ``kill -9`` it (as an operator's kill would)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args, cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    finally:
        process.kill()
        await process.wait()
    pids: dict[str, int] = json.loads(line)
    return pids


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Run the test with ``tmp_path`` as the current directory."""
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)
