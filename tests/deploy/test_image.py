"""The controller image (top-level ``Dockerfile``), built and run with the real Docker Engine.

The base comes from Debian packages (``deploy/make-base``), the project from wheels built
here, so nothing needs an image registry. The container runs against a standalone Batch
emulator on this machine's loopback: both share the host's network namespace
(``--network host``), so no address but 127.0.0.1 is ever used. It runs read-only, as the
image's unprivileged user, with the state directory a bind mount and the specs read-only.

Skipped when no Docker Engine answers (or no base can be made); on CI, where ``.ci/run``
starts dockerd and builds the base, those are failures instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.scenarios.conftest import EmulatorDriver, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
BASE = "simfleet-base:bookworm"
UID = 10001
SECRET = "image-test-secret-value-7f3a"

pytestmark = pytest.mark.slow


def _docker(
    *args: str, check: bool = True, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


def _unavailable() -> str | None:
    """Why the image cannot be built here, or None."""
    if shutil.which("docker") is None or _docker("info", check=False).returncode != 0:
        return "no Docker Engine answers (start dockerd; .ci/run does)"
    if _docker("image", "inspect", BASE, check=False).returncode == 0:
        return None
    if shutil.which("mmdebstrap") is None:
        return f"no {BASE} image and no mmdebstrap to make it (apt-get install mmdebstrap)"
    made = subprocess.run(
        [str(REPO / "deploy" / "make-base"), BASE], capture_output=True, text=True, check=False
    )
    return None if made.returncode == 0 else f"deploy/make-base failed: {made.stderr[-500:]}"


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build context: the Dockerfile, the health check and fresh wheels of the project."""
    why = _unavailable()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the controller image tests need a Docker Engine on CI: {why}")
        pytest.skip(why)
    made = tmp_path_factory.mktemp("context")
    for name in ("Dockerfile", ".dockerignore", "deploy/healthcheck.py"):
        (made / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, made / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--wheel-dir", str(made / "build" / "wheels"), str(REPO), "pip"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return made


def _build(context: Path, tag: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _docker(
        "build", "--quiet", "--force-rm", "--build-arg", f"BASE={BASE}", "--tag", tag, str(context),
        timeout=900, check=check,
    )  # fmt: skip


@pytest.fixture(scope="module")
def image(context: Path) -> Iterator[str]:
    """The controller image."""
    tag = f"simfleet-test/controller:{uuid.uuid4().hex[:8]}"
    _build(context, tag)
    size = int(_docker("image", "inspect", "--format", "{{.Size}}", tag).stdout)
    print(f"\ncontroller image {tag}: {size / 1e6:.0f} MB (base {BASE})")
    yield tag
    _docker("image", "rm", "--force", tag, check=False)
    _docker("image", "prune", "--force", "--filter", "label=simfleet.stage=builder", check=False)


def test_wheels_for_another_python_are_named(context: Path, tmp_path: Path) -> None:
    """Not pip's "no matching distribution" for some dependency: which wheel, and why."""
    other = tmp_path / "context"
    shutil.copytree(context, other)
    wheels = other / "build" / "wheels"
    native = next(wheels.glob("pyyaml-*-cp3*.whl"))
    native.rename(wheels / "pyyaml-6.0-cp399-cp399-manylinux_2_17_x86_64.whl")
    done = _build(other, f"simfleet-test/controller:{uuid.uuid4().hex[:8]}", check=False)
    _docker("image", "prune", "--force", "--filter", "label=simfleet.stage=builder", check=False)
    assert done.returncode != 0
    assert "pyyaml-6.0-cp399-cp399-manylinux_2_17_x86_64.whl is not for this base" in done.stderr


@dataclass
class Controller:
    """One container of the image, driving the emulator's account."""

    name: str
    port: int
    specs: Path
    state: Path

    def status(self) -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=5) as r:
            result: dict[str, object] = json.load(r)
            return result

    def converged(self, simulators: int) -> bool:
        try:
            sims = self.status()["simulations"]
        except OSError:
            return False
        assert isinstance(sims, list)
        return [(s["desired"], s["ready"], s["upToDate"]) for s in sims] == [(simulators,) * 3]

    def inspect(self, template: str) -> str:
        return _docker("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        done = _docker("logs", self.name, check=False)
        return done.stdout + done.stderr


SPEC = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {name: sims}
spec: {vmSize: standard_d2s_v5, taskSlotsPerNode: 4, nodes: {dedicated: 1}}
---
apiVersion: simfleet/v1
kind: Simulation
metadata: {name: cartpole}
spec:
  pool: sims
  simulators: 3
  image: scenario/sim:1
  command: ["sleep", "600"]
  secretEnv: {SIM_TOKEN: {fromEnv: SIM_TOKEN}}
"""


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorDriver]:
    driver = EmulatorDriver(tmp_path)
    yield driver
    driver.stop()


@pytest.fixture
def controller(image: str, emulator: EmulatorDriver, tmp_path: Path) -> Iterator[Controller]:
    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir(mode=0o755)
    state.mkdir(mode=0o700)
    os.chown(state, UID, UID)
    (specs / "fleet.yaml").write_text(SPEC)
    made = Controller(f"simfleet-test-{uuid.uuid4().hex[:8]}", free_port(), specs, state)
    yield made
    print(made.logs()[-4000:])
    _docker("rm", "--force", made.name, check=False)


def _start(image: str, emulator: EmulatorDriver, controller: Controller) -> None:
    """``docker run`` the image; secrets reach it by name from the CLI's environment."""
    secrets = {**emulator.env(), "SIM_TOKEN": SECRET}
    _docker(
        "run", "--detach", "--name", controller.name, "--network", "host",
        "--read-only", "--tmpfs", "/tmp",
        "--volume", f"{controller.specs}:/specs:ro",
        "--volume", f"{controller.state}:/var/lib/simfleet",
        "--env", f"SIMFLEET_LISTEN=127.0.0.1:{controller.port}",
        *(arg for key in secrets for arg in ("--env", key)),
        "--health-interval", "1s", "--health-start-period", "60s",
        image, "--backend", "azure", "--settle", "0", "--resync", "2",
        env=secrets,
    )  # fmt: skip


def test_the_image_converges_a_fleet_read_only_as_non_root_and_stops_cleanly(
    image: str, emulator: EmulatorDriver, controller: Controller
) -> None:
    _start(image, emulator, controller)
    wait_until(lambda: controller.converged(3), timeout=120, what="the fleet to converge")
    wait_until(
        lambda: controller.inspect("{{.State.Health.Status}}") == "healthy",
        timeout=60,
        what="docker to report the container healthy",
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{controller.port}/healthz", timeout=5) as r:
        assert r.status == 200

    # The image's own health check said so (run only shortened its interval), and tini
    # is PID 1, handing signals on and reaping orphans.
    assert "/opt/simfleet/healthcheck.py" in controller.inspect("{{json .Config.Healthcheck}}")
    assert _docker("exec", controller.name, "cat", "/proc/1/comm").stdout.strip() == "tini"

    # Non-root, on a read-only root file system, and it still did its work.
    assert controller.inspect("{{.Config.User}}") == f"{UID}:{UID}"
    assert _docker("exec", controller.name, "id", "-u").stdout.strip() == str(UID)
    assert controller.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    refused = _docker("exec", controller.name, "touch", "/opt/simfleet/x", check=False)
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr
    assert (controller.state / "revision.key").is_file()  # the state volume is written
    tasks = emulator.tasks()

    # docker stop: SIGTERM through tini, a clean exit within the grace period.
    started = time.monotonic()
    _docker("stop", "--time", "30", controller.name, timeout=60)
    took = time.monotonic() - started
    print(f"\ndocker stop took {took:.2f}s (grace period 30s)")
    assert controller.inspect("{{.State.ExitCode}}") == "0"
    assert '"signal": "SIGTERM"' in controller.logs()
    assert SECRET not in controller.logs()

    # Nothing lost: the tasks run on, the lease was released (an apply beside it takes it
    # at once instead of naming a leader), and a new container with the same state volume
    # takes the fleet over without replacing a single simulator (the revision key of the
    # secretEnv simulation survived).
    assert emulator.tasks() == tasks
    apply = subprocess.run(
        [sys.executable, "-m", "controller", "apply", "--backend", "azure",
         "--specs", str(controller.specs), "--state-dir", str(controller.state.parent / "ci"),
         "--revision-key-file", str(controller.state / "revision.key")],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
        env={**os.environ, **emulator.env(), "SIM_TOKEN": SECRET},
    )  # fmt: skip
    assert apply.returncode == 0, apply.stdout + apply.stderr
    assert "led by" not in apply.stdout + apply.stderr
    _docker("rm", controller.name)
    _start(image, emulator, controller)
    wait_until(lambda: controller.converged(3), timeout=120, what="the restarted controller")
    assert emulator.tasks() == tasks


def test_listening_beyond_loopback_takes_the_operators_consent(image: str) -> None:
    """The image listens on loopback; 0.0.0.0 needs SIMFLEET_LISTEN_PUBLIC=1, as outside
    a container. ``--network none``: the container's all-interfaces is its own loopback."""
    config = json.loads(_docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert "SIMFLEET_LISTEN=127.0.0.1:9120" in config["Env"]
    assert set(config["Volumes"]) == {"/specs", "/var/lib/simfleet"}
    public = ("--network", "none", "--env", "SIMFLEET_LISTEN=0.0.0.0:9120")

    refused = _docker("run", "--rm", *public, image, "--backend", "local", check=False)
    assert refused.returncode == 2
    assert "pass --listen-public" in refused.stderr

    name = f"simfleet-test-{uuid.uuid4().hex[:8]}"
    try:
        _docker(
            "run", "--detach", "--name", name, *public, "--env", "SIMFLEET_LISTEN_PUBLIC=1",
            "--health-interval", "1s", image, "--backend", "local",
        )  # fmt: skip
        wait_until(
            lambda: (
                _docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
                == "healthy"
            ),
            timeout=60,
            what="the consenting container to report healthy",
        )
        assert "listening_publicly" in _docker("logs", name).stderr  # the log is on stderr
    finally:
        _docker("rm", "--force", "--volumes", name, check=False)
