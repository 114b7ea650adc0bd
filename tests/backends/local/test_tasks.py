"""Tasks on the local backend: starting, slots, exits, stops, lifetime, environment."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.backends import OutputStream, PermanentBackendError
from controller.backends.local import LocalBackend, _records
from controller.planner import (
    AddTasks,
    ExitReason,
    NewTask,
    ResizePool,
    SimulatorState,
    StopReason,
    StopTask,
)

from .conftest import (
    GRACE,
    BackendFactory,
    add,
    alive,
    new_tasks,
    pool_and_job,
    secret,
    task,
    template,
    wait_for,
)

IGNORES_SIGTERM = (
    "python3",
    "-c",
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)",
)


async def running(backend: LocalBackend, *ids: str) -> bool:
    observed = await backend.observe()
    by_id = {t.id: t for t in observed.jobs["sim"].tasks}
    return all(by_id[i].state is SimulatorState.RUNNING and by_id[i].pid is not None for i in ids)


async def exited(backend: LocalBackend, *ids: str) -> bool:
    observed = await backend.observe()
    by_id = {t.id: t for t in observed.jobs["sim"].tasks}
    return all(by_id[i].state is SimulatorState.EXITED for i in ids)


async def printed(backend: LocalBackend, task_id: str, text: bytes) -> bool:
    chunk = await backend.read_output("sim", task_id, OutputStream.STDOUT)
    return text in chunk.data


class TestAddTasks:
    async def test_each_task_runs_in_its_own_process_group(self, backend: LocalBackend) -> None:
        await add(backend, "sleep 30", "a", "b")
        await wait_for(lambda: running(backend, "a", "b"))
        pids = [(await task(backend, i)).pid for i in ("a", "b")]
        groups = set()
        for pid in pids:
            assert pid is not None
            assert alive(pid)
            pgid = os.getpgid(pid)
            assert pgid != os.getpgrp()
            assert os.getsid(pid) == pgid  # a session of its own, led by its wrapper
            groups.add(pgid)
        assert len(groups) == 2

    async def test_the_new_task_fields_are_reported_back(
        self, open_backend: BackendFactory
    ) -> None:
        now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        backend = await open_backend(clock=lambda: now)
        await pool_and_job(backend)
        new = NewTask(
            id="sim-s3-rabc-a2", slot=3, revision="abc", attempt=2, restarts=5, failures=1
        )
        await backend.execute(AddTasks(job="sim", template=template("sleep 30"), tasks=(new,)))
        observed = await task(backend, new.id)
        assert (observed.slot, observed.revision, observed.attempt) == (3, "abc", 2)
        assert (observed.restarts, observed.failures) == (5, 1)
        assert observed.created_at == now
        assert observed.started_at == now

    async def test_adding_an_existing_task_again_changes_nothing(
        self, backend: LocalBackend
    ) -> None:
        await add(backend, "sleep 30", "a")
        await wait_for(lambda: running(backend, "a"))
        pid = (await task(backend, "a")).pid
        await add(backend, "sleep 30", "a")
        observed = await backend.observe()
        assert [t.id for t in observed.jobs["sim"].tasks] == ["a"]
        assert observed.jobs["sim"].tasks[0].pid == pid

    async def test_adding_to_an_unknown_job_is_job_not_found(self, backend: LocalBackend) -> None:
        with pytest.raises(PermanentBackendError) as error:
            await add(backend, "true", "a", job="nope")
        assert error.value.code == "JobNotFound"

    async def test_an_id_that_is_not_a_batch_id_is_refused(self, backend: LocalBackend) -> None:
        with pytest.raises(PermanentBackendError) as error:
            await add(backend, "true", "../escape")
        assert error.value.code == "InvalidId"

    async def test_an_argv_tuple_runs_without_a_shell(self, backend: LocalBackend) -> None:
        await add(backend, ("python3", "-c", "import sys; sys.exit(4)"), "a")
        await wait_for(lambda: exited(backend, "a"))
        assert (await task(backend, "a")).exit.exit_code == 4  # type: ignore[union-attr]

    async def test_a_task_without_a_command_fails_at_once(self, backend: LocalBackend) -> None:
        await add(backend, None, "a")
        observed = await task(backend, "a")
        assert observed.state is SimulatorState.EXITED
        assert observed.exit is not None
        assert observed.exit.reason is ExitReason.FAILED
        assert "needs a command" in observed.exit.message

    async def test_the_command_runs_in_the_workdir_or_else_in_the_task_folder(
        self, backend: LocalBackend, tmp_path: Path
    ) -> None:
        tasks = new_tasks("a")
        await backend.execute(
            AddTasks("sim", template("pwd"), tasks, workdir=str(tmp_path)),
        )
        await add(backend, "pwd", "b")
        await wait_for(lambda: exited(backend, "a", "b"))
        a = await backend.read_output("sim", "a", OutputStream.STDOUT)
        b = await backend.read_output("sim", "b", OutputStream.STDOUT)
        assert a.data.decode().strip() == str(tmp_path)
        assert b.data.decode().strip().endswith("/local/jobs/sim/b")


class TestCapacity:
    async def test_tasks_beyond_the_slots_wait_and_start_in_order_as_slots_free(
        self, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend()
        await pool_and_job(backend, slots=2)
        await add(backend, "sleep 30", "a", "b", "c", "d")
        await wait_for(lambda: running(backend, "a", "b"))
        states = [(await task(backend, i)).state for i in ("c", "d")]
        assert states == [SimulatorState.PENDING, SimulatorState.PENDING]

        os.kill((await task(backend, "a")).pid or 0, signal.SIGKILL)
        await wait_for(lambda: running(backend, "c"))
        assert (await task(backend, "d")).state is SimulatorState.PENDING

    async def test_resizing_the_pool_up_starts_waiting_tasks(
        self, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend()
        await pool_and_job(backend, slots=1, nodes=1)
        await add(backend, "sleep 30", "a", "b")
        assert (await task(backend, "b")).state is SimulatorState.PENDING
        await backend.execute(ResizePool(name="sims", dedicated=2, spot=0))
        await wait_for(lambda: running(backend, "a", "b"))
        pool = (await backend.observe()).pools["sims"]
        assert (pool.target_dedicated, pool.current_dedicated) == (2, 2)

    async def test_a_job_whose_pool_does_not_exist_keeps_its_tasks_pending(
        self, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend()
        from controller.planner import CreateJob

        await backend.execute(CreateJob(name="sim", pool="later"))
        await add(backend, "sleep 30", "a")
        assert (await task(backend, "a")).state is SimulatorState.PENDING
        await pool_and_job(backend, pool="later")
        await wait_for(lambda: running(backend, "a"))


class TestExits:
    async def test_exit_code_and_stderr_tail_are_reported_with_a_change_notice(
        self, backend: LocalBackend
    ) -> None:
        notified = asyncio.Event()
        backend.on_change(notified.set)
        await add(backend, "for i in $(seq 1 15); do echo line$i >&2; done; exit 3", "a")
        await asyncio.wait_for(notified.wait(), timeout=10)
        observed = await task(backend, "a")
        assert observed.state is SimulatorState.EXITED
        assert observed.exit is not None
        assert observed.exit.reason is ExitReason.FAILED
        assert observed.exit.exit_code == 3
        assert observed.exit.message == "exited with code 3"
        assert observed.exit.stderr_tail == "\n".join(f"line{i}" for i in range(6, 16))
        assert observed.exited_at is not None
        assert observed.pid is None

    async def test_exit_code_zero_succeeds(self, backend: LocalBackend) -> None:
        await add(backend, "true", "a")
        await wait_for(lambda: exited(backend, "a"))
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert (exit_info.reason, exit_info.exit_code) == (ExitReason.SUCCEEDED, 0)

    async def test_kill_9_of_a_simulator_is_exit_137_failed(self, backend: LocalBackend) -> None:
        await add(backend, "sleep 30", "a")
        await wait_for(lambda: running(backend, "a"))
        os.kill((await task(backend, "a")).pid or 0, signal.SIGKILL)
        await wait_for(lambda: exited(backend, "a"))
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert exit_info.reason is ExitReason.FAILED
        assert exit_info.exit_code == 137
        assert exit_info.message.startswith("killed by signal 9")

    async def test_the_stderr_tail_is_at_most_2_kib(self, backend: LocalBackend) -> None:
        await add(backend, ("python3", "-c", "import sys; sys.stderr.write('x' * 5000)"), "a")
        await wait_for(lambda: exited(backend, "a"))
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert 0 < len(exit_info.stderr_tail.encode()) <= 2048

    async def test_what_a_simulator_left_in_the_background_is_killed_with_it(
        self, backend: LocalBackend
    ) -> None:
        await add(backend, "sleep 300 & echo $!; exit 0", "a")
        await wait_for(lambda: exited(backend, "a"))
        orphan = int((await backend.read_output("sim", "a", OutputStream.STDOUT)).data)
        await wait_for(lambda: not alive(orphan), what="the background sleep to be killed")


class TestStop:
    async def test_stop_sends_sigterm_and_reports_stopped(self, backend: LocalBackend) -> None:
        await add(backend, "sleep 30", "a")
        await wait_for(lambda: running(backend, "a"))
        await backend.execute(StopTask("sim", "a", 0, StopReason.SCALE_DOWN))
        await wait_for(lambda: exited(backend, "a"))
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert (exit_info.reason, exit_info.exit_code) == (ExitReason.STOPPED, 143)

    async def test_a_process_ignoring_sigterm_is_killed_after_the_grace(
        self, backend: LocalBackend
    ) -> None:
        await add(backend, IGNORES_SIGTERM, "a")
        await wait_for(lambda: printed(backend, "a", b"ready"))
        pid = (await task(backend, "a")).pid
        started = time.monotonic()
        await backend.execute(StopTask("sim", "a", 0, StopReason.ROLLOUT))
        assert time.monotonic() - started < GRACE / 2, "execute must not wait for the stop"
        observed = await task(backend, "a")
        assert observed.state is SimulatorState.RUNNING
        await wait_for(lambda: exited(backend, "a"))
        assert time.monotonic() - started >= GRACE
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert (exit_info.reason, exit_info.exit_code) == (ExitReason.STOPPED, 137)
        assert "killed" in exit_info.message
        assert pid is not None
        assert not alive(pid)

    async def test_stopping_a_pending_task_ends_it_at_once(
        self, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend()
        await pool_and_job(backend, slots=1)
        await add(backend, "sleep 30", "a", "b")
        await backend.execute(StopTask("sim", "b", 1, StopReason.SCALE_DOWN))
        observed = await task(backend, "b")
        assert observed.state is SimulatorState.EXITED
        assert observed.exit is not None
        assert observed.exit.reason is ExitReason.STOPPED

    async def test_stopping_again_or_after_the_exit_changes_nothing(
        self, backend: LocalBackend
    ) -> None:
        await add(backend, "sleep 30", "a")
        await wait_for(lambda: running(backend, "a"))
        stop = StopTask("sim", "a", 0, StopReason.SCALE_DOWN)
        await backend.execute(stop)
        await backend.execute(stop)
        await wait_for(lambda: exited(backend, "a"))
        before = await task(backend, "a")
        await backend.execute(stop)
        await backend.execute(StopTask("sim", "nope", 0, StopReason.SCALE_DOWN))
        assert await task(backend, "a") == before


class TestLifetime:
    async def test_a_task_past_its_wall_clock_limit_fails_as_max_wall_clock_time_exceeded(
        self, backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The limit is maxLifetime plus a recycling margin of at least a minute
        # (planner._lifetime); pin it to maxLifetime so the kill happens at 0.2 s.
        monkeypatch.setattr(_records, "wall_clock_limit", lambda lifetime: lifetime)
        short = template("sleep 30", max_lifetime=timedelta(seconds=0.2))
        await backend.execute(AddTasks("sim", short, new_tasks("a")))
        await wait_for(lambda: exited(backend, "a"))
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert exit_info.reason is ExitReason.FAILED
        assert exit_info.failure_code == "MaxWallClockTimeExceeded"


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _checks_secret(name: str, value: str) -> tuple[str, ...]:
    """A command exiting 0 only if ``$name`` holds ``value``; the value is not in it."""
    code = (
        "import hashlib, os, sys\n"
        f"value = os.environ.get({name!r}, '')\n"
        f"sys.exit(hashlib.sha256(value.encode()).hexdigest() != {_sha(value)!r})"
    )
    return ("python3", "-c", code)


def _grep(directory: Path, needle: str) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


class TestEnvironment:
    SECRET = "s3cr3t-value-that-must-not-reach-disk"

    async def test_a_secret_reaches_the_simulator_but_never_the_state_dir(
        self, backend: LocalBackend, state_dir: Path
    ) -> None:
        tmpl = template(
            _checks_secret("API_KEY", self.SECRET),
            secrets=(secret("API_KEY", "SIMFLEET_TEST_KEY", self.SECRET),),
        )
        await backend.execute(AddTasks("sim", tmpl, new_tasks("a")))
        await wait_for(lambda: exited(backend, "a"))
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert exit_info.reason is ExitReason.SUCCEEDED
        assert _grep(state_dir, self.SECRET) == []
        assert b"SIMFLEET_TEST_KEY" in (state_dir / "local" / "state.json").read_bytes()

    async def test_the_controllers_other_variables_are_not_passed(
        self, backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SIMFLEET_TEST_UNRELATED", "do-not-pass")
        tmpl = template("env | cut -d= -f1 | sort", env=(("SIM_MODE", "train"),))
        await backend.execute(AddTasks("sim", tmpl, new_tasks("a")))
        await wait_for(lambda: exited(backend, "a"))
        names = set((await backend.read_output("sim", "a", OutputStream.STDOUT)).data.split())
        expected = {b"SIMFLEET_SIMULATION", b"SIMFLEET_SLOT", b"SIMFLEET_TASK_ID"}
        expected |= {b"SIMFLEET_TASK_DIR"}  # marks every process of the task
        assert expected | {b"PYTHONUNBUFFERED", b"SIM_MODE"} <= names
        allowed = expected | {b"PYTHONUNBUFFERED", b"SIM_MODE", b"PATH", b"HOME", b"LANG"}
        allowed |= {b"LC_ALL", b"TZ", b"TMPDIR", b"PWD", b"SHLVL", b"_", b"OLDPWD"}
        assert names <= allowed

    async def test_a_task_pending_across_a_restart_takes_its_secret_from_the_environment(
        self, open_backend: BackendFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = await open_backend()
        await pool_and_job(first, slots=1)
        await add(first, "sleep 30", "blocker")
        for task_id, variable in (
            ("late", "SIMFLEET_TEST_KEY"),
            ("missing", "SIMFLEET_TEST_ABSENT"),
        ):
            tmpl = template(
                _checks_secret("API_KEY", self.SECRET),
                secrets=(secret("API_KEY", variable, self.SECRET),),
            )
            await first.execute(AddTasks("sim", tmpl, new_tasks(task_id)))
        await first.close(stop_simulators=False)

        monkeypatch.setenv("SIMFLEET_TEST_KEY", self.SECRET)
        monkeypatch.delenv("SIMFLEET_TEST_ABSENT", raising=False)
        second = await open_backend()
        await second.execute(StopTask("sim", "blocker", 0, StopReason.SCALE_DOWN))
        await wait_for(lambda: exited(second, "late", "missing"))
        late = (await task(second, "late")).exit
        assert late is not None
        assert late.reason is ExitReason.SUCCEEDED
        missing = (await task(second, "missing")).exit
        assert missing is not None
        assert missing.reason is ExitReason.FAILED
        assert "SIMFLEET_TEST_ABSENT" in missing.message
        assert self.SECRET not in missing.message
