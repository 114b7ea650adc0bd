"""A relative ``--state-dir`` (the default ``.simfleet``) with simulators started elsewhere.

Regression: the wrapper changes into the simulator's working directory before writing its
pid and exit files, so a relative task folder pointed nowhere and pids and exit codes were
lost under ``make run``.
"""

from __future__ import annotations

from pathlib import Path

from controller.backends.local import LocalBackend
from controller.planner import AddTasks, ExitReason, SimulatorState

from .conftest import kill_strays, new_tasks, pool_and_job, task, template, wait_for


async def test_pid_and_exit_code_survive_a_relative_state_dir(in_tmp: Path) -> None:
    workdir = in_tmp / "specs" / "sim"
    workdir.mkdir(parents=True)
    backend = LocalBackend(Path(".simfleet"), stop_grace=2)
    await backend.open()
    try:
        await pool_and_job(backend)
        add = AddTasks(
            "sim",
            template(("sh", "-c", "sleep 0.5; exit 4")),
            new_tasks("t1"),
            workdir=str(workdir),
        )
        await backend.execute(add)

        async def has_pid() -> bool:
            return (await task(backend, "t1")).pid is not None

        await wait_for(has_pid, timeout=5, what="the simulator's pid")

        async def exited() -> bool:
            return (await task(backend, "t1")).state is SimulatorState.EXITED

        await wait_for(exited, timeout=10)
        done = await task(backend, "t1")
        assert done.exit is not None
        assert (done.exit.reason, done.exit.exit_code) == (ExitReason.FAILED, 4)
    finally:
        await backend.close(stop_simulators=True)
        kill_strays(in_tmp / ".simfleet")
