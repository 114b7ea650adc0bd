"""``simfleet image``: init writes a Dockerfile; build and push use the real engine and a
real registry (Debian's docker-registry, started by the test on a loopback port)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.images import InitError, init
from tests.backends.local.test_docker import IMAGE, _engine_ready


class TestInit:
    def test_a_python_simulator_with_requirements(self, tmp_path: Path) -> None:
        (tmp_path / "main.py").write_text("print('hi')\n")
        (tmp_path / "requirements.txt").write_text("numpy\n")
        written = init(tmp_path)
        text = written.dockerfile.read_text()
        assert "FROM python:3.11-slim" in text
        assert "RUN pip install --no-cache-dir -r requirements.txt" in text
        assert text.rstrip().endswith('CMD ["python3", "main.py"]')
        assert ".simfleet" in (tmp_path / ".dockerignore").read_text()

    def test_the_single_script_is_the_command(self, tmp_path: Path) -> None:
        (tmp_path / "cartpole.py").write_text("")
        assert init(tmp_path).command == ("python3", "cartpole.py")

    def test_an_ambiguous_folder_asks_for_a_command(self, tmp_path: Path) -> None:
        (tmp_path / "a.py").write_text("")
        (tmp_path / "b.py").write_text("")
        with pytest.raises(InitError, match="pass --command"):
            init(tmp_path)
        assert init(tmp_path, command="python3 b.py --fast").command == (
            "python3",
            "b.py",
            "--fast",
        )

    def test_an_existing_dockerfile_is_kept_unless_forced(self, tmp_path: Path) -> None:
        (tmp_path / "main.py").write_text("")
        (tmp_path / "Dockerfile").write_text("FROM mine\n")
        with pytest.raises(InitError, match="--force"):
            init(tmp_path)
        assert (tmp_path / "Dockerfile").read_text() == "FROM mine\n"
        init(tmp_path, force=True)
        assert "FROM python:3.11-slim" in (tmp_path / "Dockerfile").read_text()


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def engine() -> None:
    why = _engine_ready()
    if why is None and shutil.which("docker-registry") is None:
        why = "no docker-registry to push to"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the image tests need a Docker Engine and docker-registry: {why}")
        pytest.skip(why)


@pytest.fixture
def registry(engine: None, tmp_path: Path) -> Iterator[str]:
    port = _port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    yield address
    process.terminate()
    process.wait(10)


def simfleet(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "image", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_init_build_push_a_simulator(registry: str, tmp_path: Path) -> None:
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "main.sh").write_text("echo hello from the simulator\n")
    tag = f"{registry}/sims/hello:1"

    written = simfleet(
        "init", str(folder), "--base", IMAGE, "--command", "sh main.sh", cwd=tmp_path
    )
    assert written.returncode == 0, written.stderr
    built = simfleet("build", str(folder), "--tag", tag, cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    assert f"built {tag}" in built.stdout
    ran = subprocess.run(["docker", "run", "--rm", tag], capture_output=True, text=True, check=True)
    assert ran.stdout == "hello from the simulator\n"

    pushed = simfleet("push", tag, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    with urllib.request.urlopen(f"http://{registry}/v2/sims/hello/tags/list") as response:
        assert json.load(response) == {"name": "sims/hello", "tags": ["1"]}
    subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def test_a_failing_build_says_why(engine: None, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN exit 7\n")
    built = simfleet("build", str(tmp_path), "--tag", "simfleet-test/broken:1", cwd=tmp_path)
    assert built.returncode == 1
    assert "build failed" in built.stderr
    assert "returned a non-zero code: 7" in built.stderr
