"""The local backend's pure parts, table-driven: slots, exit reasons, environment, output."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.backends.local import _exits, _launching, _output, _scheduler
from controller.backends.local._records import (
    JobRecord,
    PoolRecord,
    SecretRef,
    StopIntent,
    TaskPhase,
    TaskRecord,
    TemplateRecord,
)
from controller.backends.local._runtime import Ending, LaunchError
from controller.planner import ExitReason, PoolConfig
from controller.spec import PoolSpec

T0 = datetime(2030, 1, 1, tzinfo=UTC)
TEMPLATE = TemplateRecord("img", "true", (("SIM_MODE", "train"),), (), 3600.0)


def pool(name: str, nodes: int, slots: int, *, deleting: bool = False) -> PoolRecord:
    config = PoolConfig.of(PoolSpec(vm_size="local", task_slots_per_node=slots))
    return PoolRecord(name, config, nodes, 0, T0, deleting)


def record(job: str, task_id: str, seq: int, phase: TaskPhase, **fields: object) -> TaskRecord:
    base = TaskRecord(
        job=job,
        id=task_id,
        seq=seq,
        slot=seq,
        revision="r",
        attempt=0,
        restarts=0,
        failures=0,
        template=TEMPLATE,
        workdir=None,
        created_at=T0,
        phase=phase,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


P, R, L, X = TaskPhase.PENDING, TaskPhase.RUNNING, TaskPhase.LAUNCHING, TaskPhase.EXITED


class TestStartable:
    @pytest.mark.parametrize(
        ("pools", "jobs", "tasks", "expected"),
        [
            pytest.param(
                [pool("p", 1, 2)],
                [("j", "p")],
                [("j", "a", 1, P), ("j", "b", 2, P), ("j", "c", 3, P)],
                ["a", "b"],
                id="two-slots-three-tasks",
            ),
            pytest.param(
                [pool("p", 1, 2)],
                [("j", "p")],
                [("j", "a", 1, R), ("j", "b", 2, L), ("j", "c", 3, P)],
                [],
                id="running-and-launching-hold-slots",
            ),
            pytest.param(
                [pool("p", 1, 2)],
                [("j", "p")],
                [("j", "a", 1, X), ("j", "c", 3, P), ("j", "b", 2, P)],
                ["b", "c"],
                id="exited-frees-a-slot-fifo-by-creation",
            ),
            pytest.param(
                [pool("p", 2, 1)],
                [("j", "p"), ("k", "p")],
                [("k", "z", 1, R), ("j", "a", 2, P), ("k", "b", 3, P)],
                ["a"],
                id="slots-are-shared-by-the-jobs-of-a-pool",
            ),
            pytest.param(
                [],
                [("j", "missing")],
                [("j", "a", 1, P)],
                [],
                id="no-pool-keeps-pending",
            ),
            pytest.param(
                [pool("p", 1, 4, deleting=True)],
                [("j", "p")],
                [("j", "a", 1, P)],
                [],
                id="deleting-pool",
            ),
            pytest.param(
                [pool("p", 0, 4)],
                [("j", "p")],
                [("j", "a", 1, P)],
                [],
                id="zero-nodes",
            ),
        ],
    )
    def test_pending_tasks_start_while_slots_are_free(
        self,
        pools: list[PoolRecord],
        jobs: list[tuple[str, str]],
        tasks: list[tuple[str, str, int, TaskPhase]],
        expected: list[str],
    ) -> None:
        chosen = _scheduler.startable(
            {p.name: p for p in pools},
            {name: JobRecord(name, p, T0) for name, p in jobs},
            [record(*t) for t in tasks],
        )
        assert [task_id for _, task_id in chosen] == expected

    def test_a_deleting_job_starts_nothing(self) -> None:
        chosen = _scheduler.startable(
            {"p": pool("p", 1, 4)},
            {"j": JobRecord("j", "p", T0, deleting=True)},
            [record("j", "a", 1, P)],
        )
        assert chosen == []


class TestDescribe:
    @pytest.mark.parametrize(
        ("ending", "intent", "killed", "expected"),
        [
            pytest.param(
                Ending(0),
                None,
                False,
                (ExitReason.SUCCEEDED, 0, None, "exited with code 0"),
                id="zero",
            ),
            pytest.param(
                Ending(3),
                None,
                False,
                (ExitReason.FAILED, 3, None, "exited with code 3"),
                id="three",
            ),
            pytest.param(
                Ending(137),
                None,
                False,
                (ExitReason.FAILED, 137, None, "killed by signal 9 (SIGKILL)"),
                id="sigkill",
            ),
            pytest.param(
                Ending(None, signal=9),
                None,
                False,
                (ExitReason.FAILED, 137, None, "killed by signal 9 (SIGKILL)"),
                id="wrapper-killed",
            ),
            pytest.param(
                Ending(143),
                StopIntent.STOP,
                False,
                (ExitReason.STOPPED, 143, None, "stopped by simfleet"),
                id="stopped",
            ),
            pytest.param(
                Ending(0),
                StopIntent.SHUTDOWN,
                False,
                (ExitReason.STOPPED, 0, None, "stopped by simfleet"),
                id="stopped-clean",
            ),
            pytest.param(
                Ending(None),
                StopIntent.STOP,
                True,
                (
                    ExitReason.STOPPED,
                    137,
                    None,
                    "stopped by simfleet (killed: it did not exit within the grace period)",
                ),
                id="stopped-killed",
            ),
            pytest.param(
                Ending(143),
                StopIntent.LIFETIME,
                False,
                (
                    ExitReason.FAILED,
                    143,
                    "MaxWallClockTimeExceeded",
                    "ran longer than its maxLifetime and was ended",
                ),
                id="lifetime",
            ),
            pytest.param(
                Ending(None),
                None,
                False,
                (ExitReason.LOST, None, None, "the process vanished without an exit code"),
                id="lost",
            ),
        ],
    )
    def test_raw_facts_become_exit_information(
        self,
        ending: Ending,
        intent: StopIntent | None,
        killed: bool,
        expected: tuple[ExitReason, int | None, str | None, str],
    ) -> None:
        info = _exits.describe(ending, intent, killed=killed, stderr_tail="tail")
        assert (info.reason, info.exit_code, info.failure_code, info.message) == expected
        assert info.stderr_tail == "tail"

    @pytest.mark.parametrize(
        ("tail", "message"),
        [
            pytest.param(
                "docker: Cannot connect to the Docker daemon at unix:///x.sock. Is the docker "
                "daemon running?\n\nRun 'docker run --help' for more information\n",
                "the container did not start: Cannot connect to the Docker daemon at "
                "unix:///x.sock. Is the docker daemon running?",
                id="no engine: the docker line, not the hint after it",
            ),
            pytest.param("oops\n", "the container did not start: oops", id="the last line"),
            pytest.param(
                "", "the container did not start: docker run failed without a word", id="silent"
            ),
        ],
    )
    def test_a_failed_docker_run_says_the_container_did_not_start(
        self, tail: str, message: str
    ) -> None:
        ending = Ending(125, runtime_failed=True)
        info = _exits.describe(ending, None, killed=False, stderr_tail=tail)
        assert (info.reason, info.exit_code, info.message) == (ExitReason.FAILED, 125, message)
        assert _exits.describe(Ending(125), None, killed=False).message == "exited with code 125"


class TestChildEnvironment:
    TASK = record("sim", "sim-s2-rx-a0", 2, P)

    def test_only_the_listed_controller_variables_pass_through(self) -> None:
        environ = {"PATH": "/bin", "HOME": "/root", "AZURE_BATCH_ACCESS_KEY": "k", "TZ": "UTC"}
        env = _launching.child_environment(self.TASK, None, environ)
        assert env == {
            "PATH": "/bin",
            "HOME": "/root",
            "TZ": "UTC",
            "SIMFLEET_SIMULATION": "sim",
            "SIMFLEET_SLOT": "2",
            "SIMFLEET_TASK_ID": "sim-s2-rx-a0",
            "PYTHONUNBUFFERED": "1",
            "SIM_MODE": "train",
        }

    def test_template_env_and_secrets_win_in_that_order(self) -> None:
        template = TemplateRecord(
            "img", "true", (("PATH", "/opt"), ("KEY", "plain")), (SecretRef("KEY", "SRC"),), 1.0
        )
        task = record("sim", "t", 0, P, template=template)
        env = _launching.child_environment(
            task, {"KEY": "from-memory"}, {"PATH": "/bin", "SRC": "x"}
        )
        assert (env["PATH"], env["KEY"]) == ("/opt", "from-memory")
        env = _launching.child_environment(task, None, {"SRC": "from-env"})
        assert env["KEY"] == "from-env"

    def test_a_missing_secret_source_names_the_variable(self) -> None:
        template = TemplateRecord("img", "true", (), (SecretRef("KEY", "SRC_VAR"),), 1.0)
        task = record("sim", "t", 0, P, template=template)
        with pytest.raises(LaunchError, match="SRC_VAR"):
            _launching.child_environment(task, None, {})


class TestOutputFiles:
    @pytest.mark.parametrize(
        ("offset", "length", "expected"),
        [
            pytest.param(0, None, (b"0123456789", 0), id="all"),
            pytest.param(-4, None, (b"6789", 6), id="from-the-end"),
            pytest.param(-40, 2, (b"01", 0), id="before-the-start"),
            pytest.param(8, 10, (b"89", 8), id="past-the-end"),
            pytest.param(20, None, (b"", 10), id="beyond"),
        ],
    )
    def test_chunks_are_cut_from_the_file(
        self, tmp_path: Path, offset: int, length: int | None, expected: tuple[bytes, int]
    ) -> None:
        (tmp_path / "out").write_bytes(b"0123456789")
        chunk = _output.read_stream(tmp_path, "out", offset, length)
        assert (chunk.data, chunk.offset, chunk.size) == (*expected, 10)

    @pytest.mark.parametrize(
        ("offset", "length", "expected"),
        [
            pytest.param(0, None, (b"efghijklm", 4), id="from-the-start-gives-what-is-kept"),
            pytest.param(-3, None, (b"klm", 10), id="from-the-end"),
            pytest.param(6, 3, (b"ghi", 6), id="across-a-rotation"),
            pytest.param(9, None, (b"jklm", 9), id="from-the-current-file"),
            pytest.param(13, None, (b"", 13), id="at-the-end"),
        ],
    )
    def test_rotated_files_read_as_one_stream(
        self, tmp_path: Path, offset: int, length: int | None, expected: tuple[bytes, int]
    ) -> None:
        # 4-byte files, 0-3 rotated away: "efgh" at 4, "ijkl" at 8, current "m" at 12.
        (tmp_path / "out.4").write_bytes(b"efgh")
        (tmp_path / "out.8").write_bytes(b"ijkl")
        (tmp_path / "out").write_bytes(b"m")
        (tmp_path / "out.next").write_bytes(b"x")  # the writer's scratch file: not a part
        chunk = _output.read_stream(tmp_path, "out", offset, length)
        assert (chunk.data, chunk.offset, chunk.size) == (*expected, 13)

    def test_the_tail_keeps_the_last_ten_lines(self, tmp_path: Path) -> None:
        (tmp_path / "err").write_text("".join(f"{i}\n" for i in range(30)))
        assert _output.tail(tmp_path, "err") == "\n".join(str(i) for i in range(20, 30))

    def test_the_tail_of_a_missing_file_is_empty(self, tmp_path: Path) -> None:
        assert _output.tail(tmp_path, "nothing") == ""

    def test_the_tail_masks_each_line_of_a_secret_before_cutting(self, tmp_path: Path) -> None:
        pem = "\n".join(["-----BEGIN KEY-----", *(f"line{i:02d}secretpart" for i in range(20))])
        (tmp_path / "err").write_text(f"starting\n{pem}\n-----END KEY-----\n")
        tail = _output.tail(tmp_path, "err", [pem + "\n-----END KEY-----"])
        assert "secretpart" not in tail
        assert tail.split("\n") == ["****"] * 10

    def test_the_tail_never_keeps_a_line_cut_by_the_window(self, tmp_path: Path) -> None:
        secret = "s3cr3t-" * 3000  # one line longer than the window
        (tmp_path / "err").write_text(f"{secret}\nlast\n")
        assert _output.tail(tmp_path, "err", [secret]) == "last"
        assert _output.tail(tmp_path, "err") == "last"  # the unmasked cut line is dropped too
