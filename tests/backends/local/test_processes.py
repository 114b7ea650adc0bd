"""The process runtime alone: wrapper, identity by start time, finding, collecting."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.backends.local import _processes
from controller.backends.local._processes import NO_COMMAND, ProcessRuntime
from controller.backends.local._runtime import Handle, Launch, LaunchError

from .conftest import alive, kill_strays, wait_for


def launch(task_dir: Path, command: str | tuple[str, ...] | None) -> Launch:
    return Launch(task_dir, "img", command, {"PATH": os.environ["PATH"]}, task_dir)


def in_proc(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ProcessRuntime]:
    yield ProcessRuntime()
    kill_strays(tmp_path)


class TestProcessRuntime:
    async def test_the_wrapper_leads_a_new_session_and_records_the_exit_code(
        self, runtime: ProcessRuntime, tmp_path: Path
    ) -> None:
        handle = runtime.spawn(launch(tmp_path / "t", "exit 7"))
        assert os.getsid(handle.pid) == handle.pid
        await wait_for((tmp_path / "t" / "exit").exists)
        await wait_for(lambda: not runtime.alive(handle))
        ending = runtime.collect(tmp_path / "t", handle)
        assert (ending.code, ending.signal) == (7, None)
        assert not in_proc(handle.pid)  # reaped: it was our child

    async def test_a_signal_to_the_group_is_recorded_as_128_plus_n(
        self, runtime: ProcessRuntime, tmp_path: Path
    ) -> None:
        handle = runtime.spawn(launch(tmp_path / "t", ("sleep", "30")))
        await wait_for(lambda: runtime.simulator_pid(tmp_path / "t") is not None)
        runtime.signal(handle, signal.SIGTERM)
        await wait_for(lambda: not runtime.alive(handle))
        assert runtime.collect(tmp_path / "t", handle).code == 143

    async def test_a_pid_with_another_start_time_is_not_ours(
        self, runtime: ProcessRuntime, tmp_path: Path
    ) -> None:
        handle = runtime.spawn(launch(tmp_path / "t", ("sleep", "30")))
        assert runtime.alive(handle)
        impostor = Handle(handle.pid, handle.start_ticks + 1)
        assert not runtime.alive(impostor)
        runtime.signal(impostor, signal.SIGKILL)  # refused: the group is not ours
        assert runtime.alive(handle)

    async def test_a_wrapper_is_found_by_its_task_folder(
        self, runtime: ProcessRuntime, tmp_path: Path
    ) -> None:
        handle = runtime.spawn(launch(tmp_path / "a" / "t", ("sleep", "30")))
        other = runtime.spawn(launch(tmp_path / "b" / "t", ("sleep", "30")))
        found = runtime.scan(tmp_path / "a")
        assert {d: f.handle for d, f in found.items()} == {tmp_path / "a" / "t": handle}
        assert runtime.scan(tmp_path)[tmp_path / "b" / "t"].handle == other
        assert runtime.scan(tmp_path / "nothing") == {}

    async def test_the_simulator_pid_is_the_command_itself(
        self, runtime: ProcessRuntime, tmp_path: Path
    ) -> None:
        handle = runtime.spawn(launch(tmp_path / "t", ("sleep", "30")))
        await wait_for(lambda: runtime.simulator_pid(tmp_path / "t") is not None)
        pid = runtime.simulator_pid(tmp_path / "t")
        assert pid is not None
        assert pid != handle.pid
        # the pid is written just before the exec: the command shows a moment later
        await wait_for(lambda: cmdline(pid) == b"sleep\x0030\x00")
        assert alive(pid)

    @pytest.mark.parametrize(
        ("command", "message"),
        [
            pytest.param(None, NO_COMMAND, id="no-command"),
            pytest.param((), "empty", id="empty-argv"),
        ],
    )
    def test_what_cannot_start_is_a_launch_error(
        self,
        runtime: ProcessRuntime,
        tmp_path: Path,
        command: tuple[str, ...] | None,
        message: str,
    ) -> None:
        with pytest.raises(LaunchError, match=message.replace("(", r"\(").replace(")", r"\)")):
            runtime.spawn(launch(tmp_path / "t", command))

    def test_a_missing_working_directory_is_a_launch_error(
        self, runtime: ProcessRuntime, tmp_path: Path
    ) -> None:
        missing = Launch(tmp_path / "t", "img", "true", {}, tmp_path / "missing")
        with pytest.raises(LaunchError, match="does not exist"):
            runtime.spawn(missing)

    def test_descriptors_of_the_controller_are_not_inherited(
        self, runtime: ProcessRuntime, tmp_path: Path
    ) -> None:
        assert_spawn_inherits_no_open_pipe(runtime, tmp_path / "t")


def assert_spawn_inherits_no_open_pipe(runtime: ProcessRuntime, task_dir: Path) -> None:
    """Spawn a simulator while this process holds an inheritable pipe end; the pipe must
    read end-of-file once this process closes its end (no simulator holds a copy)."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        runtime.spawn(launch(task_dir, ("sleep", "30")))
        os.close(write_end)
        os.set_blocking(read_end, False)  # a leak raises BlockingIOError, not a hang
        assert os.read(read_end, 1) == b""  # end of file: no simulator holds it
    finally:
        os.close(read_end)


class TestDescriptorListing:
    """Which descriptors a simulator must not inherit is listed once per turn of the event
    loop: listing per start cost one step per open pidfd, N² for N simulators."""

    @pytest.fixture
    def listings(self, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        calls: list[int] = []
        original = _processes._inheritable_fds

        def counted() -> list[int]:
            calls.append(1)
            return original()

        monkeypatch.setattr(_processes, "_inheritable_fds", counted)
        return calls

    async def test_the_starts_of_one_turn_of_the_loop_list_descriptors_once(
        self, runtime: ProcessRuntime, tmp_path: Path, listings: list[int]
    ) -> None:
        for i in range(5):
            runtime.spawn(launch(tmp_path / f"t{i}", ("sleep", "30")))
        assert len(listings) == 1
        await asyncio.sleep(0)
        runtime.spawn(launch(tmp_path / "next", ("sleep", "30")))
        assert len(listings) == 2  # a new turn looks again

    async def test_a_descriptor_made_inheritable_in_a_later_turn_is_not_inherited(
        self, runtime: ProcessRuntime, tmp_path: Path, listings: list[int]
    ) -> None:
        runtime.spawn(launch(tmp_path / "first", ("sleep", "30")))
        await asyncio.sleep(0)
        assert_spawn_inherits_no_open_pipe(runtime, tmp_path / "t")

    async def test_a_listing_naming_a_descriptor_reused_since_is_made_again(
        self, runtime: ProcessRuntime, tmp_path: Path, listings: list[int]
    ) -> None:
        fillers = []  # take every number below 10, so the pipes below get the lowest above
        while (fd := os.dup(0)) < 10:
            fillers.append(fd)
        os.close(fd)
        read_end, write_end = os.pipe()
        os.set_inheritable(write_end, True)
        try:
            runtime.spawn(launch(tmp_path / "first", ("sleep", "30")))
            os.close(write_end)  # both numbers become the next start's first pipe
            os.close(read_end)
            handle = runtime.spawn(launch(tmp_path / "t", "echo hello"))
        finally:
            for fd in fillers:
                os.close(fd)
        assert len(listings) == 2
        await wait_for(lambda: not runtime.alive(handle))  # gone, its output written
        assert (tmp_path / "t" / "stdout.txt").read_text() == "hello\n"
