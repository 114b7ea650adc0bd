"""The ``docker`` runtime against the real Docker Engine, with an image built locally.

No registry is reachable, so the image is a busybox root filesystem imported with
``docker import``. On CI (``CI=true``) a missing engine fails these tests instead of
skipping them: ``.ci/run`` installs and starts one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from controller.backends.local import DockerRuntime, LocalBackend
from controller.backends.local._docker import container_name, docker_argv
from controller.backends.local._runtime import Launch, LaunchError
from controller.planner import (
    AddTasks,
    ExitReason,
    SecretEnv,
    SimulatorState,
    StopReason,
    StopTask,
    TaskTemplate,
)

from .conftest import kill_strays, new_tasks, pool_and_job, task, wait_for

IMAGE = "simfleet-test/busybox:2"
SECRET = "docker-s3cr3t-value"


def _engine_ready() -> str | None:
    """None when an engine answers and the test image exists (built if needed), else why."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "no Docker Engine answers"
    if (
        subprocess.run(
            ["docker", "image", "inspect", IMAGE], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return None
    busybox = shutil.which("busybox")
    if busybox is None:
        return "no busybox to build the test image from"
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "bin").mkdir()
        shutil.copy(busybox, Path(root) / "bin" / "busybox")
        for tool in (
            "sh",
            "sleep",
            "echo",
            "cat",
            "env",
            "test",
            "[",
            "printf",
            "sha256sum",
            "cut",
            "true",
        ):
            (Path(root) / "bin" / tool).symlink_to("busybox")
        tar = subprocess.run(["tar", "-C", root, "-c", "."], capture_output=True, check=True)
        subprocess.run(
            ["docker", "import", "-", IMAGE], input=tar.stdout, check=True, capture_output=True
        )
    return None


@pytest.fixture(scope="module")
def engine() -> None:
    why = _engine_ready()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the docker runtime tests need a Docker Engine on CI: {why}")
        pytest.skip(why)


@pytest.fixture
async def docker_backend(engine: None, tmp_path: Path) -> AsyncIterator[LocalBackend]:
    backend = LocalBackend(tmp_path / "state", runtime=DockerRuntime(), stop_grace=5)
    await backend.open()
    await pool_and_job(backend)
    yield backend
    await backend.close(stop_simulators=True)
    kill_strays(tmp_path / "state")


def container_template(
    command: tuple[str, ...] | str | None, image: str = IMAGE, secret: bool = False
) -> TaskTemplate:
    return TaskTemplate(
        image=image,
        command=command,
        env=(("SIM_MODE", "train"), ("TZ", "Etc/UTC")),
        secret_env=(SecretEnv("API_KEY", "TEST_API_KEY", SecretStr(SECRET)),) if secret else (),
        container_run_options="--memory=64m",
        max_lifetime=timedelta(days=1),
    )


def containers(name: str) -> str:
    return subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


async def exited(backend: LocalBackend, task_id: str) -> bool:
    return (await task(backend, task_id)).state is SimulatorState.EXITED


class TestDockerRuntime:
    async def test_a_container_gets_its_env_and_secret_and_its_output_is_kept(
        self, docker_backend: LocalBackend, tmp_path: Path
    ) -> None:
        digest = hashlib.sha256(SECRET.encode()).hexdigest()  # the value is in no command
        command = (
            "sh",
            "-c",
            f'test "$(printf %s "$API_KEY" | sha256sum | cut -c1-64)" = {digest} '
            '&& echo "mode=$SIM_MODE tz=$TZ" && echo "not a host var: $HOME." && sleep 30',
        )
        template = container_template(command, secret=True)
        await docker_backend.execute(AddTasks("sim", template, new_tasks("c1")))

        async def printed() -> bool:
            out = await docker_backend.read_output("sim", "c1", _stdout())
            return b"mode=train" in out.data

        await wait_for(printed, timeout=30, what="the container's output")
        running = await task(docker_backend, "c1")
        assert running.state is SimulatorState.RUNNING
        out = (await docker_backend.read_output("sim", "c1", _stdout())).data
        assert b"mode=train tz=Etc/UTC" in out  # a spec variable the host also has
        host_home = os.environ.get("HOME", "/nonexistent-home")
        assert f"not a host var: {host_home}.".encode() not in out  # no host variables
        assert running.pid is not None
        cmdline = Path(f"/proc/{running.pid}/cmdline").read_bytes()
        assert b"docker" in cmdline
        assert SECRET.encode() not in cmdline  # passed as -e NAME, never as a value
        for path in (tmp_path / "state").rglob("*"):
            if path.is_file() and path.name != "stdout.txt":
                assert SECRET.encode() not in path.read_bytes(), path

    async def test_the_container_exit_code_is_reported(self, docker_backend: LocalBackend) -> None:
        await docker_backend.execute(
            AddTasks("sim", container_template(("sh", "-c", "exit 3")), new_tasks("c2"))
        )
        await wait_for(lambda: exited(docker_backend, "c2"), timeout=30)
        info = (await task(docker_backend, "c2")).exit
        assert info is not None
        assert (info.reason, info.exit_code) == (ExitReason.FAILED, 3)

    async def test_a_stop_ends_the_container(self, docker_backend: LocalBackend) -> None:
        await docker_backend.execute(
            AddTasks("sim", container_template(("sleep", "300")), new_tasks("c3"))
        )
        name = container_name(docker_backend._store.task_dir(("sim", "c3")))
        await wait_for(lambda: bool(containers(name)), timeout=30, what="the container")
        await docker_backend.execute(StopTask("sim", "c3", 0, StopReason.SCALE_DOWN))
        await wait_for(lambda: exited(docker_backend, "c3"), timeout=20)
        info = (await task(docker_backend, "c3")).exit
        assert info is not None
        assert info.reason is ExitReason.STOPPED
        await wait_for(lambda: not containers(name), timeout=10, what="the container gone")

    async def test_a_killed_docker_cli_does_not_leave_its_container(
        self, docker_backend: LocalBackend
    ) -> None:
        await docker_backend.execute(
            AddTasks("sim", container_template(("sleep", "300")), new_tasks("c4"))
        )
        name = container_name(docker_backend._store.task_dir(("sim", "c4")))
        await wait_for(lambda: bool(containers(name)), timeout=30, what="the container")
        pid = (await task(docker_backend, "c4")).pid
        assert pid is not None
        os.kill(pid, 9)
        await wait_for(lambda: exited(docker_backend, "c4"), timeout=20)
        await wait_for(lambda: not containers(name), timeout=20, what="the container removed")

    async def test_an_unknown_image_fails_with_dockers_message(
        self, docker_backend: LocalBackend
    ) -> None:
        template = container_template(("true",), image="simfleet-test/missing:0")
        await docker_backend.execute(AddTasks("sim", template, new_tasks("c5")))
        await wait_for(lambda: exited(docker_backend, "c5"), timeout=60)
        info = (await task(docker_backend, "c5")).exit
        assert info is not None
        assert info.reason is ExitReason.FAILED
        assert "simfleet-test/missing:0" in info.stderr_tail


def _stdout():  # type: ignore[no-untyped-def]
    from controller.backends import OutputStream

    return OutputStream.STDOUT


class TestDockerArgv:
    """What ``docker run`` is given, without an engine."""

    @staticmethod
    def launch(tmp_path: Path, **overrides: object) -> Launch:
        values: dict[str, object] = {
            "task_dir": tmp_path / "state" / "local" / "jobs" / "sim" / "t1",
            "image": "img:1",
            "command": ("python3", "main.py"),
            "env": {
                "PATH": "/host/bin",
                "HOME": "/root",
                "SIMFLEET_SLOT": "0",
                "TZ": "UTC",
                "API_KEY": "s3cr3t",
            },
            "cwd": tmp_path,
            "container_env": ("SIMFLEET_SLOT", "TZ", "API_KEY"),
            "secret_names": frozenset({"API_KEY"}),
        }
        values.update(overrides)
        return Launch(**values)  # type: ignore[arg-type]

    def test_the_container_gets_the_spec_variables_and_no_secret_value(
        self, tmp_path: Path
    ) -> None:
        argv = docker_argv(self.launch(tmp_path), "/usr/bin/docker")
        assert argv[:3] == ("run", "--rm", "--init")
        pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
        assert pairs == ["SIMFLEET_SLOT", "TZ", "API_KEY"]  # values via the CLI's env
        assert not any("s3cr3t" in a for a in argv)
        assert argv[-3:] == ("img:1", "python3", "main.py")

    def test_a_spec_variable_named_like_a_cli_setting_is_passed_by_value(
        self, tmp_path: Path
    ) -> None:
        launch = self.launch(tmp_path, container_env=("HOME",), secret_names=frozenset())
        argv = docker_argv(launch, "docker")
        assert "HOME=/root" in argv

    def test_a_secret_with_such_a_name_is_refused(self, tmp_path: Path) -> None:
        launch = self.launch(tmp_path, container_env=("HOME",), secret_names=frozenset({"HOME"}))
        with pytest.raises(LaunchError, match="secretEnv HOME"):
            docker_argv(launch, "docker")

    def test_names_differ_between_state_directories(self, tmp_path: Path) -> None:
        a = container_name(tmp_path / "a" / "local" / "jobs" / "sim" / "t1")
        b = container_name(tmp_path / "b" / "local" / "jobs" / "sim" / "t1")
        assert a != b
        assert a.endswith("-t1")
