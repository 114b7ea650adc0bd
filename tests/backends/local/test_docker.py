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
from click.testing import CliRunner
from pydantic import SecretStr

from controller.backends import OutputStream, PermanentBackendError
from controller.backends.local import DockerRuntime, LocalBackend
from controller.backends.local._docker import (
    ENV_FILE,
    cli_environment,
    container_variables,
    containers_of,
    docker_argv,
    labels,
)
from controller.backends.local._runtime import Launch, LaunchError
from controller.cli import main
from controller.planner import (
    AddTasks,
    ExitReason,
    ObservedTask,
    SecretEnv,
    SimulatorState,
    StopReason,
    StopTask,
    TaskTemplate,
)
from controller.spec import RunOptionsPolicy

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
    command: tuple[str, ...] | str | None,
    image: str = IMAGE,
    secret: bool = False,
    env: tuple[tuple[str, str], ...] = (("SIM_MODE", "train"), ("TZ", "Etc/UTC")),
    run_options: str = "--memory=64m",
) -> TaskTemplate:
    return TaskTemplate(
        image=image,
        command=command,
        env=env,
        secret_env=(SecretEnv("API_KEY", "TEST_API_KEY", SecretStr(SECRET)),) if secret else (),
        container_run_options=run_options,
        max_lifetime=timedelta(days=1),
    )


def containers(backend: LocalBackend, task_id: str) -> list[str]:
    """Ids of the containers carrying the labels of one task (running or not)."""
    return containers_of(backend._store.task_dir(("sim", task_id)))


async def exited(backend: LocalBackend, task_id: str) -> bool:
    return (await task(backend, task_id)).state is SimulatorState.EXITED


async def output(backend: LocalBackend, task_id: str) -> bytes:
    return (await backend.read_output("sim", task_id, OutputStream.STDOUT)).data


async def ended(backend: LocalBackend, task_id: str) -> ObservedTask:
    """The task once it exited (within a generous deadline)."""
    await wait_for(lambda: exited(backend, task_id), timeout=60, what=f"{task_id} exited")
    return await task(backend, task_id)


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
            return b"mode=train" in await output(docker_backend, "c1")

        await wait_for(printed, timeout=30, what="the container's output")
        running = await task(docker_backend, "c1")
        assert running.state is SimulatorState.RUNNING
        out = await output(docker_backend, "c1")
        assert b"mode=train tz=Etc/UTC" in out  # a spec variable the host also has
        host_home = os.environ.get("HOME", "/nonexistent-home")
        assert f"not a host var: {host_home}.".encode() not in out  # no host variables
        assert running.pid is not None
        cmdline = Path(f"/proc/{running.pid}/cmdline").read_bytes()
        assert b"docker" in cmdline
        assert SECRET.encode() not in cmdline  # in an env-file pipe, never on a command line
        environ = Path(f"/proc/{running.pid}/environ").read_bytes()
        assert SECRET.encode() not in environ  # nor in the docker CLI's environment
        assert b"SIM_MODE" not in environ
        for path in (tmp_path / "state").rglob("*"):
            if path.is_file() and path.name != "stdout.txt":
                assert SECRET.encode() not in path.read_bytes(), path

    async def test_spec_variables_named_like_cli_settings_reach_only_the_container(
        self, docker_backend: LocalBackend
    ) -> None:
        """``DOCKER_HOST`` pointing nowhere and ``PATH`` set by the spec: the CLI still
        reaches the local engine with its own PATH, and the container sees the values."""
        env = (("DOCKER_HOST", "tcp://127.0.0.1:1"), ("PATH", "/bin:/spec/bin"), ("HOME", "/x"))
        command = ("sh", "-c", 'echo "host=$DOCKER_HOST path=$PATH home=$HOME"')
        template = container_template(command, env=env)
        await docker_backend.execute(AddTasks("sim", template, new_tasks("c6")))
        done = await ended(docker_backend, "c6")
        assert done.exit is not None
        assert done.exit.exit_code == 0, done.exit.stderr_tail
        expected = b"host=tcp://127.0.0.1:1 path=/bin:/spec/bin home=/x"
        assert expected in await output(docker_backend, "c6")

    async def test_a_secret_named_like_a_cli_setting_reaches_the_container(
        self, docker_backend: LocalBackend
    ) -> None:
        template = TaskTemplate(
            image=IMAGE,
            command=("sh", "-c", 'test "$HOME" = "$EXPECTED" && echo same'),
            env=(("EXPECTED", SECRET),),
            secret_env=(SecretEnv("HOME", "TEST_HOME", SecretStr(SECRET)),),
            container_run_options="",
            max_lifetime=timedelta(days=1),
        )
        await docker_backend.execute(AddTasks("sim", template, new_tasks("c7")))
        done = await ended(docker_backend, "c7")
        assert done.exit is not None
        assert done.exit.exit_code == 0, done.exit.stderr_tail
        assert b"same" in await output(docker_backend, "c7")

    async def test_a_multi_line_value_reaches_the_container_whole(
        self, docker_backend: LocalBackend
    ) -> None:
        """A PEM key cannot be an env-file line; it goes through the CLI's environment."""
        check = '[ "$PEM" = "$(printf \'line one\\nline two\')" ] && echo same'
        template = container_template(("sh", "-c", check), env=(("PEM", "line one\nline two"),))
        await docker_backend.execute(AddTasks("sim", template, new_tasks("c8")))
        done = await ended(docker_backend, "c8")
        assert done.exit is not None
        assert done.exit.exit_code == 0, done.exit.stderr_tail
        assert b"same" in await output(docker_backend, "c8")

    async def test_a_multi_line_value_under_a_name_the_host_reads_fails_by_name(
        self, docker_backend: LocalBackend
    ) -> None:
        template = container_template(("true",), env=(("LD_PRELOAD", "/x.so\n/y.so"),))
        await docker_backend.execute(AddTasks("sim", template, new_tasks("c9")))
        done = await ended(docker_backend, "c9")
        assert done.exit is not None
        assert done.exit.reason is ExitReason.FAILED
        assert "env LD_PRELOAD" in done.exit.message
        assert "/x.so" not in done.exit.message

    async def test_the_container_exit_code_is_reported(self, docker_backend: LocalBackend) -> None:
        await docker_backend.execute(
            AddTasks("sim", container_template(("sh", "-c", "exit 3")), new_tasks("c2"))
        )
        info = (await ended(docker_backend, "c2")).exit
        assert info is not None
        assert (info.reason, info.exit_code) == (ExitReason.FAILED, 3)

    async def test_a_stop_ends_the_container(self, docker_backend: LocalBackend) -> None:
        await docker_backend.execute(
            AddTasks("sim", container_template(("sleep", "300")), new_tasks("c3"))
        )
        await wait_for(lambda: bool(containers(docker_backend, "c3")), timeout=30)
        await docker_backend.execute(StopTask("sim", "c3", 0, StopReason.SCALE_DOWN))
        await wait_for(lambda: exited(docker_backend, "c3"), timeout=20)
        info = (await task(docker_backend, "c3")).exit
        assert info is not None
        assert info.reason is ExitReason.STOPPED
        await wait_for(lambda: not containers(docker_backend, "c3"), timeout=10)

    async def test_a_killed_docker_cli_does_not_leave_its_container(
        self, docker_backend: LocalBackend
    ) -> None:
        await docker_backend.execute(
            AddTasks("sim", container_template(("sleep", "300")), new_tasks("c4"))
        )
        await wait_for(lambda: bool(containers(docker_backend, "c4")), timeout=30)
        pid = (await task(docker_backend, "c4")).pid
        assert pid is not None
        os.kill(pid, 9)
        await wait_for(lambda: exited(docker_backend, "c4"), timeout=20)
        await wait_for(lambda: not containers(docker_backend, "c4"), timeout=20)

    async def test_an_unknown_image_fails_with_dockers_message(
        self, docker_backend: LocalBackend
    ) -> None:
        template = container_template(("true",), image="simfleet-test/missing:0")
        await docker_backend.execute(AddTasks("sim", template, new_tasks("c5")))
        info = (await ended(docker_backend, "c5")).exit
        assert info is not None
        assert info.reason is ExitReason.FAILED
        assert "simfleet-test/missing:0" in info.stderr_tail
        assert info.message.startswith("the container did not start: ")


class TestWithoutAnEngine:
    """What the docker runtime says when no engine answers (the docker CLI is enough)."""

    @pytest.fixture(autouse=True)
    def no_engine(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        if shutil.which("docker") is None:
            pytest.skip("no docker CLI")
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")

    def test_the_check_names_the_missing_engine(self) -> None:
        with pytest.raises(PermanentBackendError) as raised:
            DockerRuntime().check()
        assert str(raised.value).startswith("the docker runtime needs a Docker Engine: ")
        assert "no-engine.sock" in str(raised.value)

    async def test_an_engine_gone_later_is_the_reason_in_status(self, tmp_path: Path) -> None:
        backend = LocalBackend(tmp_path / "state", runtime=DockerRuntime(), stop_grace=5)
        await backend.open()
        try:
            await pool_and_job(backend)
            await backend.execute(AddTasks("sim", container_template(("true",)), new_tasks("g1")))
            info = (await ended(backend, "g1")).exit
        finally:
            await backend.close(stop_simulators=True)
        assert info is not None
        assert (info.reason, info.exit_code) == (ExitReason.FAILED, 125)
        assert info.message.startswith("the container did not start: Cannot connect to the")

    @pytest.mark.parametrize("command", ["run", "apply"])
    def test_commands_that_start_simulators_end_with_one_line(
        self, tmp_path: Path, command: str
    ) -> None:
        specs = tmp_path / "specs"
        specs.mkdir()
        argv = [command, "--specs", str(specs), "--state-dir", str(tmp_path / "state")]
        argv += ["--runtime", "docker"] + (["--listen", "127.0.0.1:0"] if command == "run" else [])
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith("Error: the docker runtime needs a Docker Engine: Cannot")


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

    def test_the_variables_go_in_the_env_file_and_nowhere_in_the_arguments(
        self, tmp_path: Path
    ) -> None:
        launch = self.launch(tmp_path)
        argv = docker_argv(launch)
        assert "-e" not in argv
        assert not any("s3cr3t" in a for a in argv)
        assert argv[argv.index("--env-file") + 1] == ENV_FILE
        assert container_variables(launch) == (b"SIMFLEET_SLOT=0\nTZ=UTC\nAPI_KEY=s3cr3t\n", {})

    def test_options_come_first_then_simfleets_then_the_image_after_a_double_dash(
        self, tmp_path: Path
    ) -> None:
        launch = self.launch(tmp_path, run_options="--memory=64m --init=false")
        argv = docker_argv(launch)
        assert argv[:3] == ("run", "--memory=64m", "--init=false")
        assert argv.index("--init") > argv.index("--init=false")  # simfleet's own wins
        assert argv[-4:] == ("--", "img:1", "python3", "main.py")
        for label in labels(launch.task_dir):
            assert argv[argv.index(label) - 1] == "--label"
        assert "--name" not in argv

    def test_an_image_that_looks_like_an_option_stays_the_image(self, tmp_path: Path) -> None:
        argv = docker_argv(self.launch(tmp_path, image="--volume=/:/host", command=None))
        assert argv[-2:] == ("--", "--volume=/:/host")

    def test_the_cli_environment_holds_the_controllers_settings_only(self) -> None:
        controller = {"PATH": "/usr/bin", "DOCKER_HOST": "unix:///d.sock", "AZ_KEY": "k"}
        assert cli_environment(controller) == {"PATH": "/usr/bin", "DOCKER_HOST": "unix:///d.sock"}

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("a\nb", id="newline"),
            pytest.param("ab\r", id="trailing-cr"),
            pytest.param("x" * 70_000, id="too-long"),
        ],
    )
    def test_a_value_the_env_file_cannot_carry_goes_by_name_only(
        self, tmp_path: Path, value: str
    ) -> None:
        launch = self.launch(tmp_path, env={"SIMFLEET_SLOT": "0", "TZ": "", "API_KEY": value})
        lines, inherited = container_variables(launch)
        assert inherited == {"API_KEY": value}
        assert b"API_KEY" not in lines
        argv = docker_argv(launch, tuple(inherited))
        assert argv[argv.index("API_KEY") - 1] == "-e"
        assert not any(value in a for a in argv)

    @pytest.mark.parametrize("name", ["HOME", "DOCKER_CONFIG", "LD_PRELOAD", "BASH_ENV", "GODEBUG"])
    def test_such_a_value_under_a_name_the_host_reads_is_refused(
        self, tmp_path: Path, name: str
    ) -> None:
        launch = self.launch(
            tmp_path, env={"SIMFLEET_SLOT": "0", "TZ": "", name: "a\nb"},
            container_env=("SIMFLEET_SLOT", "TZ", name),
        )  # fmt: skip
        with pytest.raises(LaunchError, match=f"env {name}: .*rename the variable") as caught:
            container_variables(launch)
        assert "a\nb" not in str(caught.value)

    def test_labels_differ_between_state_directories(self, tmp_path: Path) -> None:
        a = labels(tmp_path / "a" / "local" / "jobs" / "sim" / "t1")
        b = labels(tmp_path / "b" / "local" / "jobs" / "sim" / "t1")
        assert a[0] != b[0]
        assert a[1:] == b[1:] == ("simfleet.job=sim", "simfleet.task=t1")

    def test_the_runtime_checks_the_policy_again(self, tmp_path: Path) -> None:
        runtime = DockerRuntime()
        with pytest.raises(LaunchError, match="--privileged is not allowed"):
            runtime.spawn(self.launch(tmp_path, run_options="--privileged"))
        with pytest.raises(LaunchError, match="image: "):
            runtime.spawn(self.launch(tmp_path, image="--volume=/:/host"))
        assert not (tmp_path / "state").exists()  # nothing was started

    def test_an_unsafe_policy_passes_anything_to_the_arguments(self, tmp_path: Path) -> None:
        assert RunOptionsPolicy.unsafe().problems("--privileged -v /:/host") == []
