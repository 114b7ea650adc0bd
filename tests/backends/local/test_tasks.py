"""Tasks on the local backend as processes: groups, commands, exit codes and signals,
stops by SIGTERM/SIGKILL, lifetime, environment. The rules every backend shares (slots,
idempotent adds and stops, exit reasons) are in ``tests/backends/contract``."""

from __future__ import annotations

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

    async def test_task_times_come_from_the_backends_clock(
        self, open_backend: BackendFactory
    ) -> None:
        now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        backend = await open_backend(clock=lambda: now)
        await pool_and_job(backend)
        await add(backend, "sleep 30", "a")
        observed = await task(backend, "a")
        assert (observed.created_at, observed.started_at) == (now, now)

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


class TestExits:
    async def test_an_exit_is_described_and_drops_the_pid(self, backend: LocalBackend) -> None:
        await add(backend, "exit 3", "a")
        await wait_for(lambda: exited(backend, "a"))
        observed = await task(backend, "a")
        assert observed.exit is not None
        assert observed.exit.message == "exited with code 3"
        assert observed.pid is None

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
