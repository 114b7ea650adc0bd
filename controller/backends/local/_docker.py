"""The ``docker`` runtime: each simulator is a container, supervised like a process.

A container is started as ``docker run --rm --init …`` *inside* the process runtime's
wrapper. Everything the process runtime guarantees carries over unchanged: the wrapper's
pid and start time find the simulator again after ``kill -9`` of the controller, its exit
file records the container's exit code (``docker run`` exits with it), the attached output
lands in ``stdout.txt`` / ``stderr.txt``, and SIGTERM to the wrapper's group reaches the
simulator through the CLI's signal proxy and ``--init``.

Secrets never appear on a command line or on disk: the container's variables are passed
as ``-e NAME`` (the CLI takes each value from its own environment, which the wrapper
inherits). If the CLI is killed before its container ends (SIGKILL after the grace), the
container would outlive it, so :meth:`DockerRuntime.collect` force-removes it by name.

The image must be on the local engine (or pullable by it); an unknown image fails the
simulator with Docker's own message in its stderr tail.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

from controller.backends.local._launching import PASSED_THROUGH
from controller.backends.local._processes import ProcessRuntime
from controller.backends.local._runtime import Ending, Handle, Launch, LaunchError

#: Variables the docker CLI itself needs to reach the engine; never given to containers.
CLI_ENVIRONMENT = ("DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
LABEL = "simfleet.task"


def container_name(task_dir: Path) -> str:
    """``simfleet-<8 hex of the state dir>-<task id>``: unique per state dir and task."""
    digest = hashlib.sha256(str(task_dir.parent.parent.parent).encode()).hexdigest()[:8]
    return f"simfleet-{digest}-{task_dir.name}"


def docker_argv(launch: Launch, docker: str) -> tuple[str, ...]:
    """The ``docker run`` command that runs ``launch`` as a container."""
    names = sorted(k for k in launch.env if k not in PASSED_THROUGH)
    if isinstance(launch.command, str):
        command: tuple[str, ...] = ("/bin/sh", "-c", launch.command)
    else:
        command = launch.command or ()  # None: the image's own entrypoint and command
    return (
        docker, "run", "--rm", "--init",
        "--name", container_name(launch.task_dir),
        "--label", f"{LABEL}={launch.task_dir.name}",
        *(arg for name in names for arg in ("-e", name)),
        *shlex.split(launch.run_options),
        launch.image,
        *command,
    )  # fmt: skip


class DockerRuntime:
    """Runs simulators as containers of the local Docker Engine (see the module docstring)."""

    name = "docker"

    def __init__(self, process: ProcessRuntime | None = None) -> None:
        self._process = process or ProcessRuntime()

    def spawn(self, launch: Launch) -> Handle:
        """Start ``docker run`` for the simulator under the process wrapper.

        Raises:
            LaunchError: no docker CLI, or bad run options.
        """
        docker = shutil.which("docker", path=launch.env.get("PATH"))
        if docker is None:
            raise LaunchError("the docker runtime needs the docker CLI on PATH")
        try:
            argv = docker_argv(launch, docker)
        except ValueError as error:
            raise LaunchError(f"containerRunOptions: {error}") from error
        cli = {k: os.environ[k] for k in CLI_ENVIRONMENT if k in os.environ}
        return self._process.spawn(
            Launch(
                task_dir=launch.task_dir,
                image=launch.image,
                command=argv,
                env={**launch.env, **cli},
                cwd=launch.cwd,
            )
        )

    def find(self, task_dir: Path) -> Handle | None:
        return self._process.find(task_dir)

    def alive(self, handle: Handle) -> bool:
        return self._process.alive(handle)

    def watch(self, handle: Handle, on_gone: Callable[[], None]) -> Callable[[], None]:
        return self._process.watch(handle, on_gone)

    def signal(self, handle: Handle, signum: int) -> None:
        self._process.signal(handle, signum)

    def collect(self, task_dir: Path, handle: Handle | None) -> Ending:
        """Read the exit code, then make sure no container outlives its ``docker run``."""
        ending = self._process.collect(task_dir, handle)
        remove_container(container_name(task_dir))
        return ending

    def simulator_pid(self, task_dir: Path) -> int | None:
        """The pid of ``docker run`` (the container's own pids live in its namespace)."""
        return self._process.simulator_pid(task_dir)


def remove_container(name: str) -> None:
    """Force-remove a container if it still exists; quiet when it is already gone."""
    import docker
    from docker.errors import DockerException

    with contextlib.suppress(DockerException):
        client = docker.from_env(timeout=10)
        try:
            client.containers.get(name).remove(force=True)
        finally:
            client.close()
