"""The ``docker`` runtime: each simulator is a container, supervised like a process.

A container is started as ``docker run --rm --init …`` *inside* the process runtime's
wrapper. Everything the process runtime guarantees carries over unchanged: the wrapper's
pid and start time find the simulator again after ``kill -9`` of the controller, its exit
file records the container's exit code (``docker run`` exits with it), the attached output
lands in ``stdout.txt`` / ``stderr.txt``, and SIGTERM to the wrapper's group reaches the
simulator through the CLI's signal proxy and ``--init``.

The container gets exactly the spec's variables plus simfleet's own, nothing of the
host's. Secret values never appear on a command line: they go as ``-e NAME`` and the CLI
takes each value from its environment (the engine itself keeps them in the container's
configuration while it exists, as ``docker inspect`` shows). The CLI keeps the host's
``PATH``, ``HOME`` and ``DOCKER_*`` settings, so it reaches the same engine as always.

A ``docker run`` killed before its container ended (SIGKILL after the grace) would leave
the container behind, so :meth:`DockerRuntime.collect` removes it with the same CLI, off
the event loop; and each start first clears a stale container of the same name.
Container names carry a hash of the host and state directory, so two controllers sharing
an engine never touch each other's containers.

Not covered: a pool's ``registries`` (the local engine pulls with its own credentials).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

from controller.backends.local._processes import ProcessRuntime
from controller.backends.local._runtime import Ending, Handle, Launch, LaunchError

#: The CLI's own settings, always the host's; a container gets them only if the spec
#: sets them (as plain values, so never from ``secretEnv``).
CLI_ENVIRONMENT = (
    "PATH", "HOME", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
)  # fmt: skip
LABEL = "simfleet.task"
#: Clears a stale container of the same name, then becomes ``docker run`` (same pid).
START = 'cli="$1"; name="$2"; shift 2; "$cli" rm -f "$name" >/dev/null 2>&1; exec "$cli" "$@"'


def container_name(task_dir: Path) -> str:
    """``simfleet-<8 hex of host and state dir>-<task id>``."""
    owner = f"{socket.gethostname()}:{task_dir.parent.parent.parent.absolute()}"
    return f"simfleet-{hashlib.sha256(owner.encode()).hexdigest()[:8]}-{task_dir.name}"


def docker_argv(launch: Launch, docker: str) -> tuple[str, ...]:
    """The ``docker run`` arguments that run ``launch`` as a container.

    Raises:
        LaunchError: a secret would have to be written out, or bad run options.
    """
    variables: list[str] = []
    for name in launch.container_env:
        if name not in CLI_ENVIRONMENT:
            variables += ["-e", name]  # the value comes from the CLI's environment
        elif name in launch.secret_names:
            raise LaunchError(f"secretEnv {name}: the docker runtime cannot pass this name")
        else:
            variables += ["-e", f"{name}={launch.env[name]}"]
    if isinstance(launch.command, str):
        command: tuple[str, ...] = ("/bin/sh", "-c", launch.command)
    else:
        command = launch.command or ()  # None: the image's own entrypoint and command
    try:
        options = shlex.split(launch.run_options)
    except ValueError as error:
        raise LaunchError(f"containerRunOptions: {error}") from error
    return (
        "run", "--rm", "--init",
        "--name", container_name(launch.task_dir),
        "--label", f"{LABEL}={launch.task_dir.name}",
        *variables, *options, launch.image, *command,
    )  # fmt: skip


def cli_environment(launch: Launch) -> dict[str, str]:
    """The docker CLI's environment: the container's values, then the host's settings."""
    env = {k: v for k, v in launch.env.items() if k in launch.container_env}
    env.update({k: os.environ[k] for k in CLI_ENVIRONMENT if k in os.environ})
    return env


class DockerRuntime(ProcessRuntime):
    """Runs simulators as containers of the local Docker Engine (see the module docstring).

    It is the process runtime with a different command: finding, watching and signalling
    the wrapper are inherited unchanged.
    """

    name = "docker"

    def spawn(self, launch: Launch) -> Handle:
        """Start ``docker run`` for the simulator under the process wrapper.

        Raises:
            LaunchError: no docker CLI, a secret that cannot be passed, bad run options.
        """
        docker = shutil.which("docker", path=os.environ.get("PATH"))
        if docker is None:
            raise LaunchError("the docker runtime needs the docker CLI on PATH")
        name = container_name(launch.task_dir)
        start = ("/bin/sh", "-c", START, "simfleet-docker", docker, name)
        return super().spawn(
            Launch(
                task_dir=launch.task_dir,
                image=launch.image,
                command=(*start, *docker_argv(launch, docker)),
                env=cli_environment(launch),
                cwd=launch.cwd,
            )
        )

    def collect(self, task_dir: Path, handle: Handle | None) -> Ending:
        """Read the exit code, then make sure no container outlives its ``docker run``."""
        ending = super().collect(task_dir, handle)
        remove_in_background(container_name(task_dir))
        return ending


def remove_container(name: str, environ: Mapping[str, str] | None = None) -> None:
    """``docker rm -f NAME`` with the host's CLI settings; quiet when already gone."""
    docker = shutil.which("docker")
    if docker is None:
        return
    env = {k: v for k, v in (environ or os.environ).items() if k in CLI_ENVIRONMENT}
    subprocess.run(
        [docker, "rm", "-f", name], env=env, capture_output=True, timeout=60, check=False
    )


def remove_in_background(name: str) -> None:
    """Remove a container without blocking the event loop (an exit is handled on it)."""
    threading.Thread(target=remove_container, args=(name,), daemon=True).start()
