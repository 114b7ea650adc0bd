"""What a simulator leaves behind: bounded output, no descendant, no secret in a tail.

Regressions (issue 7): one simulator wrote 58 MB in 2 s with no bound (item 15); children
that called ``setsid`` survived a stop or prune (Low); a secret printed to stderr was
stored in the state file's exit information, and a multi-line one (a PEM) cut by the
tail was shown in status (item 9).
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from controller.backends import OutputStream
from controller.backends.local import LocalBackend
from controller.planner import (
    AddTasks,
    DeleteJob,
    ExitReason,
    SimulatorState,
    StopReason,
    StopTask,
)

from .conftest import (
    BackendFactory,
    alive,
    new_tasks,
    pool_and_job,
    secret,
    task,
    template,
    wait_for,
    wrappers_of,
)

MIB = 1024 * 1024
LINES = 3_333_334  # "%08d\n" each: 30,000,006 bytes
#: 30 MB of numbered lines, as fast as Python can write them.
CHATTY = (
    "python3",
    "-c",
    f"import sys\nsys.stdout.write(''.join('%08d\\n' % i for i in range({LINES})))\n",
)


async def exited(backend: LocalBackend, task_id: str) -> bool:
    return (await task(backend, task_id)).state is SimulatorState.EXITED


def stdout_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if re.fullmatch(r"stdout\.txt(\.\d+)?", p.name)]


def disk_usage(folder: Path) -> int:
    """Bytes of stdout kept (the writer's scratch file included)."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("stdout"))


class TestRotation:
    async def test_output_is_capped_and_read_across_the_rotation(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend(log_max_bytes=MIB, log_max_files=3)
        await pool_and_job(backend)
        await backend.execute(AddTasks("sim", template(CHATTY), new_tasks("a")))
        await wait_for(lambda: exited(backend, "a"), timeout=60, what="30 MB written")
        info = (await task(backend, "a")).exit
        assert info is not None
        assert info.reason is ExitReason.SUCCEEDED

        folder = state_dir / "local" / "jobs" / "sim" / "a"
        assert disk_usage(folder) <= 3 * MIB
        assert len(stdout_files(folder)) <= 3
        total = LINES * 9
        last = await backend.read_output("sim", "a", OutputStream.STDOUT, offset=-100)
        expected = "".join(f"{i:08d}\n" for i in range(LINES - 12, LINES)).encode()[-100:]
        assert (last.data, last.offset, last.size) == (expected, total - 100, total)
        everything = await backend.read_output("sim", "a", OutputStream.STDOUT)
        assert everything.size == total
        assert 2 * MIB < len(everything.data) <= 3 * MIB
        assert everything.offset + len(everything.data) == total
        first_line = everything.offset // 9 + (everything.offset % 9 > 0)
        cut = (9 - everything.offset % 9) % 9
        assert everything.data[cut : cut + 18] == b"%08d\n%08d\n" % (first_line, first_line + 1)

    async def test_follow_offsets_stay_valid_across_rotations(
        self, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend(log_max_bytes=4096, log_max_files=2)
        await pool_and_job(backend)
        # 3,000 lines in batches of 300 (3 KB), a pause between: each batch fits in what
        # is kept (2 files of 4 KiB), so a reader polling now and then misses nothing
        writes = (
            "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1));"
            " [ $((i % 300)) -eq 0 ] && sleep 0.2; done; sleep 30"
        )
        await backend.execute(AddTasks("sim", template(writes), new_tasks("a")))
        seen = b""
        offset = 0

        async def caught_up() -> bool:
            nonlocal seen, offset
            chunk = await backend.read_output("sim", "a", OutputStream.STDOUT, offset=offset)
            assert chunk.offset == offset  # read often enough: nothing skipped
            seen += chunk.data
            offset = chunk.offset + len(chunk.data)
            return seen.endswith(b"line-2999\n")

        await wait_for(caught_up, timeout=30)
        assert seen == b"".join(b"line-%d\n" % i for i in range(3000))

    async def test_the_simulator_keeps_writing_while_no_controller_runs(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        first = await open_backend(log_max_bytes=MIB, log_max_files=2)
        await pool_and_job(first)
        await first.execute(AddTasks("sim", template(CHATTY), new_tasks("a")))
        await wait_for((state_dir / "local/jobs/sim/a/pid").exists)
        await first.close(stop_simulators=False)  # no controller reads anything now
        exit_file = state_dir / "local" / "jobs" / "sim" / "a" / "exit"
        await wait_for(exit_file.exists, timeout=60, what="the simulator to finish alone")
        assert exit_file.read_text() == "0"
        assert disk_usage(exit_file.parent) <= 2 * MIB

    def test_fewer_than_two_files_are_refused(self, state_dir: Path) -> None:
        with pytest.raises(ValueError, match="log_max_files must be at least 2"):
            LocalBackend(state_dir, log_max_files=1)


class TestDescendants:
    @pytest.mark.parametrize(
        ("end", "command"),
        [
            pytest.param("stop", "setsid sleep 1000 & echo $! > child; exec sleep 300", id="stop"),
            pytest.param(
                "prune", "setsid sleep 1000 & echo $! > child; exec sleep 300", id="prune"
            ),
            pytest.param("own-exit", "setsid sleep 1000 & echo $! > child; exit 0", id="exit"),
        ],
    )
    async def test_children_that_left_the_group_end_with_the_simulator(
        self, backend: LocalBackend, tmp_path: Path, end: str, command: str
    ) -> None:
        workdir = tmp_path / "wd"
        workdir.mkdir()
        add = AddTasks("sim", template(command), new_tasks("a"), workdir=str(workdir))
        await backend.execute(add)
        await wait_for(lambda: (workdir / "child").exists() and (workdir / "child").read_text())
        child = int((workdir / "child").read_text())
        await wait_for(lambda: alive(child) and os.getsid(child) == child, what="setsid")
        if end == "stop":
            await backend.execute(StopTask("sim", "a", 0, StopReason.SCALE_DOWN))
        elif end == "prune":
            await backend.execute(DeleteJob("sim"))
        await wait_for(lambda: not alive(child), what="the setsid child to be ended")

    async def test_close_with_stop_ends_children_that_left_the_group(
        self, open_backend: BackendFactory, tmp_path: Path
    ) -> None:
        backend = await open_backend()
        await pool_and_job(backend)
        command = "setsid sh -c 'sleep 1000' & echo $! > child; exec sleep 300"
        add = AddTasks("sim", template(command), new_tasks("a"), workdir=str(tmp_path))
        await backend.execute(add)
        await wait_for(lambda: (tmp_path / "child").exists() and (tmp_path / "child").read_text())
        child = int((tmp_path / "child").read_text())
        await backend.close(stop_simulators=True)
        assert not alive(child)


PEM = "\n".join(
    [
        "-----BEGIN PRIVATE KEY-----",
        *(f"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC{i:03d}" for i in range(30)),
        "-----END PRIVATE KEY-----",
    ]
)


class TestStoredTails:
    async def test_no_line_of_a_secret_printed_to_stderr_is_stored(
        self, state_dir: Path, backend: LocalBackend
    ) -> None:
        printing = 'echo "starting"; printf "%s\\n" "$TLS_KEY" >&2; echo "bye" >&2; exit 1'
        tmpl = template(printing, secrets=(secret("TLS_KEY", "SIMFLEET_TEST_PEM", PEM),))
        await backend.execute(AddTasks("sim", tmpl, new_tasks("a")))
        await wait_for(lambda: exited(backend, "a"))
        info = (await task(backend, "a")).exit
        assert info is not None
        assert info.reason is ExitReason.FAILED
        assert info.stderr_tail.split("\n")[-1] == "bye"
        await backend.observe()  # written with the next pass
        stored = (state_dir / "local" / "state.json").read_text()
        tail = json.loads(stored)["tasks"][0]["exit"]["stderrTail"]
        for line in PEM.split("\n"):
            assert line not in info.stderr_tail
            assert line not in stored
        assert tail == info.stderr_tail
        assert "****" in tail

    async def test_a_secret_is_masked_after_a_restart_too(
        self, state_dir: Path, open_backend: BackendFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = await open_backend()
        await pool_and_job(first)
        waits = (
            "sh",
            "-c",
            'trap \'printf "%s\\n" "$TLS_KEY" >&2; exit 3\' TERM; : >trapped; sleep 300 & wait',
        )
        tmpl = template(waits, secrets=(secret("TLS_KEY", "SIMFLEET_TEST_PEM", PEM),))
        await first.execute(AddTasks("sim", tmpl, new_tasks("a")))
        # Its trap is set (the pid file alone says only that it is about to start).
        await wait_for((state_dir / "local/jobs/sim/a/trapped").exists)
        await first.close(stop_simulators=False)
        monkeypatch.delenv("SIMFLEET_TEST_PEM", raising=False)  # rotated away meanwhile

        second = await open_backend()  # reads the value back from the simulator itself
        await second.execute(StopTask("sim", "a", 0, StopReason.SCALE_DOWN))
        await wait_for(lambda: exited(second, "a"))
        info = (await task(second, "a")).exit
        assert info is not None
        assert "****" in info.stderr_tail
        for line in PEM.split("\n"):
            assert line not in info.stderr_tail

    async def test_a_tail_whose_secrets_are_unknown_after_a_restart_is_withheld(
        self, state_dir: Path, open_backend: BackendFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """It ended while no controller ran and its secret was rotated meanwhile: nothing
        can mask the old value, so the tail is not kept at all (the soak found this)."""
        first = await open_backend()
        await pool_and_job(first)
        prints = ("sh", "-c", 'sleep 1; printf "%s\\n" "$TLS_KEY" >&2; exit 3')
        tmpl = template(prints, secrets=(secret("TLS_KEY", "SIMFLEET_TEST_PEM", PEM),))
        await first.execute(AddTasks("sim", tmpl, new_tasks("a")))
        await wait_for((state_dir / "local/jobs/sim/a/pid").exists)
        await first.close(stop_simulators=False)
        monkeypatch.setenv("SIMFLEET_TEST_PEM", "a rotated value")
        exit_file = state_dir / "local/jobs/sim/a/exit"
        await wait_for(exit_file.exists, timeout=20)  # ended with no controller running
        await wait_for(lambda: not wrappers_of(state_dir), timeout=20)  # and its wrapper too

        second = await open_backend()
        info = (await task(second, "a")).exit
        assert info is not None
        assert info.exit_code == 3
        assert info.stderr_tail.startswith("(stderr tail withheld")
        await second.observe()
        stored = (state_dir / "local" / "state.json").read_text()
        for line in PEM.split("\n"):
            assert line not in stored

    async def test_a_simulator_killed_by_a_signal_still_gets_its_tail(
        self, backend: LocalBackend
    ) -> None:
        await backend.execute(
            AddTasks("sim", template("echo oops >&2; kill -9 $$"), new_tasks("a"))
        )
        await wait_for(lambda: exited(backend, "a"))
        info = (await task(backend, "a")).exit
        assert info is not None
        assert info.exit_code == 128 + signal.SIGKILL
        assert "oops" in info.stderr_tail.split("\n")
