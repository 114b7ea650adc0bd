"""The ``docker`` runtime: each simulator is a container, supervised like a process.

A container is started as ``docker run --rm --init …`` *inside* the process runtime's
wrapper. Everything the process runtime guarantees carries over unchanged: the wrapper's
pid and start time find the simulator again after ``kill -9`` of the controller, its exit
file records the container's exit code (``docker run`` exits with it), the attached output
lands in ``stdout.txt`` / ``stderr.txt``, and SIGTERM to the wrapper's group reaches the
simulator through the CLI's signal proxy and ``--init``.

The trust boundary. A spec's author must not own the controller's host, so:

- ``containerRunOptions`` are checked against the operator's policy
  (:class:`~controller.spec.RunOptionsPolicy`) again here, right before the start, so a
  task that reached the backend some other way is refused too; simfleet's own options come
  *after* the spec's (for repeated options the last wins) and ``--`` ends the options
  before the image, so neither the options nor the image can turn into something else.
- Spec values never reach the docker CLI's own environment, where ``DOCKER_HOST``,
  ``DOCKER_CONFIG`` (credential helpers are programs!), ``PATH``, ``HOME`` and many more
  would steer the CLI itself. The CLI runs with the controller's own settings for it
  (:func:`cli_environment`) and nothing else. The container's variables, secrets included,
  reach it through ``--env-file /dev/fd/3``: a pipe the controller fills before the start
  and closes, which the CLI reads (client-side) once. So values are on no command line, in
  no file and in no environment but the container's (the engine itself keeps them in the
  container's configuration while it exists, as ``docker inspect`` shows). The env-file
  format cannot carry a line break in a value (a PEM key), a trailing carriage return or a
  line over 64 KiB; such a value goes as ``-e NAME`` with the value in the CLI's
  environment instead (:func:`container_variables`) — never on the command line, and only
  under a name the CLI does not read itself; under such a name it fails the start with a
  message naming the variable.
- Containers are found and removed by the labels simfleet sets (:func:`labels`), never by a
  name, which a spec could otherwise choose. The owner label is a hash of the host and the
  state directory, so two controllers sharing an engine never touch each other's.

A ``docker run`` killed before its container ended (SIGKILL after the grace) would leave
the container behind, so :meth:`DockerRuntime.collect` removes it with the same CLI, off
the event loop; and each start first clears a stale container of the same task.

Not covered: a pool's ``registries`` (the local engine pulls with its own credentials).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

from controller.backends._errors import PermanentBackendError
from controller.backends.local._processes import ProcessRuntime
from controller.backends.local._runtime import PASSED_FD, Ending, Handle, Launch, LaunchError
from controller.spec import RunOptionsPolicy, image_reference_problem

#: The controller's variables the docker CLI runs with (plus every ``DOCKER_*`` one):
#: what it needs to find the engine, its config, proxies and an ssh agent. Never a spec's.
CLI_ENVIRONMENT = (
    "PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "SSH_AUTH_SOCK",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)  # fmt: skip
OWNER_LABEL = "simfleet.owner"
JOB_LABEL = "simfleet.job"
TASK_LABEL = "simfleet.task"
#: Where the CLI reads the container's variables: the pipe the wrapper inherits.
ENV_FILE = f"/dev/fd/{PASSED_FD}"
#: ``docker run``'s own failure (the engine cannot be reached, no container was created),
#: as opposed to the container's exit code.
RUN_FAILED = 125
#: Seconds the start-up check waits for the engine to answer.
ENGINE_TIMEOUT = 30.0
#: The docker CLI reads an env file line by line with Go's default scanner limit.
ENV_LINE_LIMIT = 64 * 1024 - 1
#: Clears a stale container of the same task (found by its labels), then becomes
#: ``docker run`` (same pid). Arguments: the CLI, its two ``--filter`` values, then argv.
START = """\
cli=$1 owner=$2 task=$3; shift 3
ids=$("$cli" ps -aq --filter "label=$owner" --filter "label=$task" 2>/dev/null)
[ -z "$ids" ] || "$cli" rm -f $ids >/dev/null 2>&1
exec "$cli" "$@"
"""


def owner(task_dir: Path) -> str:
    """8 hex digits of the host and the state directory ``task_dir`` belongs to."""
    state = task_dir.parent.parent.parent.absolute()
    return hashlib.sha256(f"{socket.gethostname()}:{state}".encode()).hexdigest()[:8]


def labels(task_dir: Path) -> tuple[str, str, str]:
    """``simfleet.owner=…``, ``simfleet.job=…``, ``simfleet.task=…`` of a task's container."""
    return (
        f"{OWNER_LABEL}={owner(task_dir)}",
        f"{JOB_LABEL}={task_dir.parent.name}",
        f"{TASK_LABEL}={task_dir.name}",
    )


def docker_argv(launch: Launch, inherited: Sequence[str] = ()) -> tuple[str, ...]:
    """The ``docker run`` arguments that run ``launch`` as a container.

    The spec's options come first, simfleet's after them (the last of a repeated option
    wins), then ``--`` and the image: nothing the spec wrote is read as anything else.
    ``inherited`` names the variables the container takes from the CLI's environment
    (``-e NAME``, no value: see :func:`container_variables`).

    Raises:
        LaunchError: run options that cannot be split into words.
    """
    if isinstance(launch.command, str):
        command: tuple[str, ...] = ("/bin/sh", "-c", launch.command)
    else:
        command = launch.command or ()  # None: the image's own entrypoint and command
    try:
        options = shlex.split(launch.run_options)
    except ValueError as error:
        raise LaunchError(f"containerRunOptions: {error}") from error
    marks = [item for label in labels(launch.task_dir) for item in ("--label", label)]
    passed = [item for name in inherited for item in ("-e", name)]
    return (
        "run", *options, "--rm", "--init", *marks, "--env-file", ENV_FILE, *passed,
        "--", launch.image, *command,
    )  # fmt: skip


#: Names a process on the host reads before it runs anything: the dynamic loader's and
#: libc's (glibc's own unsecure list), the wrapper shell's, the Go runtime's and TLS's. A
#: value under one of them could make the CLI load or trust a file the spec provides.
_HOST_READS: Final = frozenset(
    {
        "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN",
        "LOCPATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR", "TZ",
        "IFS", "ENV", "BASH_ENV", "CDPATH", "PS4", "SHELLOPTS", "BASHOPTS",
        "SSL_CERT_FILE", "SSL_CERT_DIR",
    }
)  # fmt: skip
_HOST_PREFIXES: Final = ("DOCKER_", "BUILDKIT_", "LD_", "MALLOC_", "GO", "BASH_FUNC_")


def _read_by_the_host(name: str) -> bool:
    """Whether the docker CLI (or the wrapper shell, or the loader) reads ``name``."""
    return name in CLI_ENVIRONMENT or name in _HOST_READS or name.startswith(_HOST_PREFIXES)


def container_variables(launch: Launch) -> tuple[bytes, dict[str, str]]:
    """The container's variables: env-file lines, and those the env file cannot carry.

    A value with a line break, a trailing carriage return or over 64 KiB cannot be an
    env-file line; it reaches the container through the CLI's environment (``-e NAME``),
    unless the CLI would read that name itself.

    Raises:
        LaunchError: a NUL character, or such a value under a name the CLI reads (named,
            the value never shown).
    """
    lines: list[bytes] = []
    inherited: dict[str, str] = {}
    for name in launch.container_env:
        value = launch.env[name]
        what = "secretEnv" if name in launch.secret_names else "env"
        if "\0" in value:
            raise LaunchError(f"{what} {name}: a value cannot hold a NUL character")
        line = f"{name}={value}".encode()
        if "\n" not in value and not value.endswith("\r") and len(line) <= ENV_LINE_LIMIT:
            lines.append(line + b"\n")
        elif _read_by_the_host(name):
            raise LaunchError(
                f"{what} {name}: a multi-line or very long value cannot be passed under a"
                " name the docker CLI or its host process reads itself; rename the variable"
            )
        else:
            inherited[name] = value
    return b"".join(lines), inherited


def filled_pipe(data: bytes) -> int:
    """A pipe's read end holding ``data`` (write end closed): close-on-exec, above 9.

    The whole content goes in at once, so nothing waits for the reader: the pipe is made
    big enough, or the start fails.

    Raises:
        LaunchError: ``data`` is larger than a pipe may be made.
    """
    read, write = os.pipe()
    try:
        if len(data) > fcntl.fcntl(write, fcntl.F_GETPIPE_SZ):
            try:
                fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, len(data))
            except OSError as error:
                raise LaunchError(
                    f"the container's variables ({len(data)} bytes) do not fit in a pipe: "
                    f"{error.strerror}"
                ) from error
        os.set_blocking(write, False)
        if data and os.write(write, data) != len(data):  # cannot happen: empty and big enough
            raise LaunchError("the container's variables could not be written to a pipe")
        # Not 3: the spawn's dup2 onto PASSED_FD would keep close-on-exec on the same fd.
        return fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, 10)
    finally:
        os.close(read)
        os.close(write)


def cli_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The docker CLI's environment: the controller's settings for it, never a spec's."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if k in CLI_ENVIRONMENT or k.startswith("DOCKER_")}


class DockerRuntime(ProcessRuntime):
    """Runs simulators as containers of the local Docker Engine (see the module docstring).

    It is the process runtime with a different command: finding, watching and signalling
    the wrapper are inherited unchanged.
    """

    name = "docker"

    def __init__(self, run_options: RunOptionsPolicy | None = None) -> None:
        """Check run options with ``run_options`` (the default allow-list when None)."""
        super().__init__()
        self.run_options = run_options if run_options is not None else RunOptionsPolicy()

    def spawn(self, launch: Launch) -> Handle:
        """Start ``docker run`` for the simulator under the process wrapper.

        Raises:
            LaunchError: no docker CLI, run options or an image the policy refuses, a
                value the env file cannot carry.
        """
        docker = shutil.which("docker", path=os.environ.get("PATH"))
        if docker is None:
            raise LaunchError("the docker runtime needs the docker CLI on PATH")
        refused = self.run_options.problems(launch.run_options)
        if refused:
            raise LaunchError("containerRunOptions: " + "; ".join(refused))
        problem = image_reference_problem(launch.image)
        if problem is not None:
            raise LaunchError(f"image: {problem}")
        lines, inherited = container_variables(launch)
        argv = docker_argv(launch, tuple(inherited))
        mine, _, task = labels(launch.task_dir)
        start = ("/bin/sh", "-c", START, "simfleet-docker", docker, mine, task)
        pipe = filled_pipe(lines)
        try:
            return super().spawn(
                Launch(
                    task_dir=launch.task_dir,
                    image=launch.image,
                    command=(*start, *argv),
                    env={**cli_environment(), **inherited},
                    cwd=launch.cwd,
                    pass_fd=pipe,
                    pool=launch.pool,
                    output=launch.output,
                )
            )
        finally:
            os.close(pipe)

    def collect(self, task_dir: Path, handle: Handle | None) -> Ending:
        """Read the exit code, then make sure no container outlives its ``docker run``.

        Exit code 125 is ``docker run`` failing (no engine, say), not the container."""
        ending = super().collect(task_dir, handle)
        remove_in_background(task_dir)
        if ending.code == RUN_FAILED:
            return replace(ending, runtime_failed=True)
        return ending

    def check(self) -> None:
        """Make sure a Docker Engine answers, before anything is started on it.

        Raises:
            PermanentBackendError: no docker CLI, or no engine answers it (the CLI's
                reason in one line).
        """
        problem = engine_problem()
        if problem is not None:
            raise PermanentBackendError(f"the docker runtime needs a Docker Engine: {problem}")


def engine_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """None when a Docker Engine answers the docker CLI, else why, in one line."""
    docker = shutil.which("docker", path=(environ or os.environ).get("PATH"))
    if docker is None:
        return "no docker CLI on PATH"
    try:
        answered = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            env=cli_environment(environ),
            capture_output=True,
            text=True,
            timeout=ENGINE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the engine did not answer within {ENGINE_TIMEOUT:g}s"
    except OSError as error:
        return f"the docker CLI could not be run: {error.strerror}"
    if answered.returncode == 0:
        return None
    lines = [line.strip() for line in answered.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"docker version exited with code {answered.returncode}"


def containers_of(task_dir: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """Ids of the containers (running or not) labelled as ``task_dir``'s."""
    docker = shutil.which("docker")
    if docker is None:
        return []
    mine, _, task = labels(task_dir)
    filters = ("--filter", f"label={mine}", "--filter", f"label={task}")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listed = subprocess.run(
            [docker, "ps", "-aq", *filters],
            env=cli_environment(environ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return listed.stdout.split()
    return []


def remove_containers(task_dir: Path, environ: Mapping[str, str] | None = None) -> None:
    """``docker rm -f`` every container labelled as ``task_dir``'s; quiet when none."""
    docker = shutil.which("docker")
    ids = containers_of(task_dir, environ)
    if docker is None or not ids:
        return
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [docker, "rm", "-f", *ids],
            env=cli_environment(environ),
            capture_output=True,
            timeout=60,
            check=False,
        )


def remove_in_background(task_dir: Path) -> None:
    """Remove a task's containers without blocking the event loop (an exit is handled
    on it)."""
    threading.Thread(target=remove_containers, args=(task_dir,), daemon=True).start()
