"""A spec author must not own the controller's host: every escape of issue 7, tried for real.

Each escape is tried twice, as the issue found them:

- through ``simfleet validate`` (what a GitOps pipeline runs on a pull request): it exits 1
  with ``file:line:col`` and no traceback;
- forced through the local backend with the ``docker`` runtime and the real engine, as if
  validation had been skipped: the container never runs with it. Each simulator's command
  *detects* its escape (writes a file on the host through a mount, prints ``ESCAPED`` when it
  sees the engine's socket, the host's processes or network, full capabilities, a host
  file's variables), so a regression shows as the escape itself, not as a changed message.

Spec ``env`` values named like the docker CLI's own settings (``DOCKER_HOST``,
``DOCKER_CONFIG``) are legitimate for a container; the escape was that they steered the CLI
itself. So they are not refused: they must reach the container and nothing else — the CLI
still talks to the local engine, and a credential helper committed next to the spec never
runs.

The last test runs the daemon over the fake backend: a refused edit holds its simulation
(error at the field, its simulators untouched) while an edit elsewhere is still applied.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from controller.backends import OutputStream
from controller.backends.local import DockerRuntime, LocalBackend
from controller.daemon import Controller, DaemonConfig, utc_now
from controller.planner import AddTasks, NewTask, ObservedTask, SimulatorState, TaskTemplate
from controller.testing import FakeBackend
from tests.backends.local.conftest import kill_strays, pool_and_job, task, wait_for
from tests.backends.local.test_docker import IMAGE, _engine_ready

#: What an escape's detector prints when it got out.
ESCAPED = "ESCAPED"


@dataclass(frozen=True)
class Escape:
    """One way out of the container, and how its simulator would notice it worked."""

    run_options: str
    detector: str  # a shell command that prints ESCAPED (or writes MARKER) if it got out
    refused: str  # what validate's message says


def host_interface() -> str:
    """A network interface the host has and a container's own namespace does not."""
    names = [
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    ]
    others = [n for n in names if n not in ("lo", "eth0")]
    return "docker0" if "docker0" in others else others[0] if others else "no-such-interface"


def escapes(marker: Path, host_file: Path) -> dict[str, Escape]:
    """Every run-option escape of the issue, keyed by a test id."""
    full = f"echo {ESCAPED}"
    return {
        "volume-root": Escape("-v /:/host", f": > /host{marker}", "-v (--volume)"),
        "docker-socket": Escape(
            "-v /var/run/docker.sock:/var/run/docker.sock",
            f"test -S /var/run/docker.sock && {full}",
            "-v (--volume)",
        ),
        "env-file": Escape(f"--env-file {host_file}", f'[ -n "$STOLEN" ] && {full}', "--env-file"),
        "pid-host": Escape("--pid=host", f"test -e /proc/{os.getpid()}/status && {full}", "--pid"),
        "network-host": Escape(
            "--network=host",
            f'case "$(cat /proc/net/dev)" in *{host_interface()}:*) {full};; esac',
            "--network host",
        ),
        "privileged": Escape(
            "--privileged",
            # CAP_SYS_ADMIN is bit 21 of the effective capabilities
            'while read -r k v; do [ "$k" = CapEff: ] && '
            f"[ $(( (0x$v >> 21) & 1 )) = 1 ] && {full}; done < /proc/self/status",
            "--privileged",
        ),
    }


def spec_text(name: str, image: str, options: str) -> str:
    return (
        "apiVersion: simfleet/v1\n"
        "kind: Simulation\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  pool: sims\n"
        f"  image: {image}\n"
        "  command: [sh, -c, 'true']\n"
        f"  containerRunOptions: {options}\n"
    )


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ------------------------------------------------------------------------- validate

VALIDATE_CASES = {
    **{key: (e.run_options, e.refused) for key, e in escapes(Path("/m"), Path("/f")).items()},
    "env-file-shadow": ("--env-file /etc/shadow", "--env-file"),
    "name": ("--name keep-me-running", "--name"),
    "privileged-and-root": ("--privileged -v /:/host", "--privileged"),
}


@pytest.mark.parametrize(("options", "refused"), VALIDATE_CASES.values(), ids=VALIDATE_CASES)
def test_validate_refuses_each_run_option_escape(
    tmp_path: Path, options: str, refused: str
) -> None:
    path = tmp_path / "sneaky.yaml"
    path.write_text(spec_text("sneaky", "sim:1", options))
    result = validate(path)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith(f"{path}:8:24: spec.containerRunOptions: {refused}")
    assert "Traceback" not in result.stderr


def test_validate_refuses_an_option_as_image(tmp_path: Path) -> None:
    path = tmp_path / "sneaky.yaml"
    path.write_text(spec_text("sneaky", "--volume=/:/host", "''"))
    result = validate(path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}:6:10: spec.image: ")
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------ forced through the backend


@pytest.fixture(scope="module")
def engine() -> None:
    why = _engine_ready()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the docker escape tests need a Docker Engine on CI: {why}")
        pytest.skip(why)


@pytest.fixture
async def backend(engine: None, tmp_path: Path) -> AsyncIterator[LocalBackend]:
    """The local backend with the docker runtime as ``simfleet run --runtime docker``
    builds it by default."""
    local = LocalBackend(tmp_path / "state", runtime=DockerRuntime(), stop_grace=5)
    await local.open()
    await pool_and_job(local)
    yield local
    await local.close(stop_simulators=True)
    kill_strays(tmp_path / "state")


def template(
    command: tuple[str, ...],
    *,
    image: str = IMAGE,
    run_options: str = "",
    env: tuple[tuple[str, str], ...] = (),
) -> TaskTemplate:
    return TaskTemplate(
        image=image,
        command=command,
        env=env,
        secret_env=(),
        container_run_options=run_options,
        max_lifetime=timedelta(days=1),
    )


async def run_to_end(
    local: LocalBackend, spec: TaskTemplate, task_id: str, workdir: str | None = None
) -> tuple[ObservedTask, bytes]:
    """Add one task, wait until it exited (generous deadline), return it and its stdout."""
    new = (NewTask(id=task_id, slot=0, revision="r1", attempt=0),)
    await local.execute(AddTasks("sim", spec, new, workdir=workdir))

    async def exited() -> bool:
        return (await task(local, task_id)).state is SimulatorState.EXITED

    await wait_for(exited, timeout=90, what=f"{task_id} to end")
    out = await local.read_output("sim", task_id, OutputStream.STDOUT)
    return await task(local, task_id), out.data


def labelled(task_id: str) -> list[str]:
    """Containers (running or not) carrying simfleet's label for ``task_id``."""
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=simfleet.task={task_id}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


RUNTIME_CASES = sorted(escapes(Path("/m"), Path("/f")))


@pytest.mark.parametrize("key", RUNTIME_CASES)
async def test_the_runtime_never_runs_a_run_option_escape(
    backend: LocalBackend, tmp_path: Path, key: str
) -> None:
    marker = tmp_path / "escaped-marker"
    host_file = tmp_path / "host-secrets.env"
    host_file.write_text("STOLEN=host-only-value\n")
    escape = escapes(marker, host_file)[key]
    task_id = f"esc-{key}"
    spec = template(("sh", "-c", escape.detector), run_options=escape.run_options)
    done, out = await run_to_end(backend, spec, task_id)
    assert ESCAPED.encode() not in out
    assert b"host-only-value" not in out
    assert not marker.exists()
    assert done.exit is not None
    assert done.exit.exit_code is None  # no container ever ran: nothing exited with a code
    assert "containerRunOptions" in done.exit.message
    assert labelled(task_id) == []


async def test_a_container_name_from_the_spec_never_appears(backend: LocalBackend) -> None:
    name = f"simfleet-escape-{uuid.uuid4().hex[:8]}"
    spec = template(("sleep", "300"), run_options=f"--name {name}")
    try:
        new = (NewTask(id="esc-name", slot=0, revision="r1", attempt=0),)
        await backend.execute(AddTasks("sim", spec, new))

        def named() -> bool:
            return bool(
                subprocess.run(
                    ["docker", "ps", "-aq", "--filter", f"name=^{name}$"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            )

        async def exited_or_named() -> bool:
            gone = (await task(backend, "esc-name")).state is SimulatorState.EXITED
            return gone or named()

        await wait_for(exited_or_named, timeout=60, what="the task to end or the container")
        assert not named()
        info = (await task(backend, "esc-name")).exit
        assert info is not None
        assert "--name is not allowed" in info.message
    finally:
        remove = ["docker", "rm", "-f", name]
        await asyncio.to_thread(subprocess.run, remove, capture_output=True, check=False)


async def test_an_option_as_image_never_reaches_the_engine_as_an_option(
    backend: LocalBackend, tmp_path: Path
) -> None:
    marker = tmp_path / "escaped-marker"
    spec = template((IMAGE, "sh", "-c", f": > /host{marker}"), image="--volume=/:/host")
    done, _ = await run_to_end(backend, spec, "esc-image")
    assert not marker.exists()
    assert done.exit is not None
    assert done.exit.exit_code != 0


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP port on loopback that records every connection (a stand-in other engine)."""
    seen: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    seen.append(conn.recv(1024) or b"(connected)")
                except OSError:
                    seen.append(b"(connected)")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(timeout=5)
    server.close()


@pytest.mark.skipif("DOCKER_HOST" in os.environ, reason="the host sets DOCKER_HOST itself")
async def test_a_spec_docker_host_never_steers_the_cli(
    backend: LocalBackend, listener: tuple[int, list[bytes]]
) -> None:
    port, seen = listener
    value = f"tcp://127.0.0.1:{port}"
    spec = template(
        ("sh", "-c", 'echo "container sees $DOCKER_HOST"'), env=(("DOCKER_HOST", value),)
    )
    done, out = await run_to_end(backend, spec, "esc-docker-host")
    assert seen == []  # the docker CLI never went to the spec's engine
    assert done.exit is not None
    assert done.exit.exit_code == 0, done.exit.stderr_tail  # it ran on the local engine
    assert f"container sees {value}".encode() in out  # and the container got the value


@pytest.mark.skipif("DOCKER_CONFIG" in os.environ, reason="the host sets DOCKER_CONFIG itself")
async def test_a_credential_helper_next_to_the_spec_never_runs(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """The issue's attack: a spec repository holding a docker config whose credential
    helper is a script in the same repository (found relative to the CLI's working
    directory, the spec's folder), and ``env: {DOCKER_CONFIG: …}``. Pulling an image
    that is not there locally asks the helper for credentials."""
    marker = tmp_path / "helper-ran"
    repo = tmp_path / "specs"
    (repo / "docker-credential-x").mkdir(parents=True)
    helper = repo / "evil"
    helper.write_text(f"#!/bin/sh\ntouch {marker}\necho '{{}}'\n")
    helper.chmod(0o755)
    config = repo / "dotdocker"
    config.mkdir()
    (config / "config.json").write_text('{"credsStore": "x/../evil"}')
    spec = template(
        ("true",), image="127.0.0.1:1/simfleet-escape:1", env=(("DOCKER_CONFIG", str(config)),)
    )
    done, _ = await run_to_end(backend, spec, "esc-docker-config", workdir=str(repo))
    assert done.exit is not None
    assert not marker.exists()


# ------------------------------------------------------------------------ the daemon

POOL = (
    "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: sims}\n"
    "spec: {vmSize: standard_d2s_v5, taskSlotsPerNode: 8, nodes: {dedicated: 2}}\n"
)


def daemon_spec(name: str, simulators: int, options: str) -> str:
    return (
        f"apiVersion: simfleet/v1\nkind: Simulation\nmetadata: {{name: {name}}}\n"
        f"spec:\n  pool: sims\n  simulators: {simulators}\n  image: sim:1\n"
        f"  command: sleep 1000\n  containerRunOptions: {options}\n"
    )


async def until(predicate: object, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_the_daemon_holds_a_refused_simulation_and_goes_on_with_the_rest(
    tmp_path: Path,
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(POOL)
    (specs / "alpha.yaml").write_text(daemon_spec("alpha", 2, "--shm-size=1g"))
    (specs / "beta.yaml").write_text(daemon_spec("beta", 1, "''"))
    fake = FakeBackend(clock=utc_now)
    controller = Controller(DaemonConfig(specs=specs, port=0, resync=0.5), fake)
    running = asyncio.create_task(controller.run())
    try:

        def ids(name: str) -> set[str]:
            job = fake.snapshot().jobs.get(name)
            return {t.id for t in job.tasks if t.live} if job is not None else set()

        await until(lambda: len(ids("alpha")) == 2 and len(ids("beta")) == 1)
        before = ids("alpha")
        (specs / "alpha.yaml").write_text(daemon_spec("alpha", 2, "--privileged -v /:/host"))
        (specs / "beta.yaml").write_text(daemon_spec("beta", 3, "''"))
        await until(lambda: len(ids("beta")) == 3)  # an edit elsewhere is applied

        def refused() -> list[dict[str, object]]:
            errors = controller.status()["errors"]
            return [e for e in errors if e["path"] == "spec.containerRunOptions"]

        await until(lambda: bool(refused()))
        error = refused()[0]
        assert (error["file"], error["line"], error["column"]) == (
            str(specs / "alpha.yaml"),
            9,
            24,
        )
        assert ids("alpha") == before  # never rolled onto the refused template
    finally:
        controller.stop()
        await asyncio.wait_for(running, 20)
