"""Every command ends with one clear line when the backend cannot be reached: no
traceback, and a refused connection or a name that does not resolve is said to be
unreachable, never "busy".

Only loopback and ``.invalid`` names are used: a closed loopback port refuses at once, and
``.invalid`` is a reserved name no resolver answers for, so nothing leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.scenarios.conftest import REPO, EmulatorDriver, free_port

POOL = "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: sims}\nspec: {vmSize: d2}\n"


def azure(endpoint: str, *args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a command against the azure backend at ``endpoint``; also how long it took."""
    env = {
        **os.environ,
        "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO)),
        "AZURE_BATCH_ENDPOINT": endpoint,
        "AZURE_BATCH_ACCOUNT": "simfleettest",
        "AZURE_BATCH_ACCESS_KEY": "bm90LWEtcmVhbC1rZXk=",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "controller", *args, "--backend", "azure"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, time.monotonic() - started


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "pool.yaml").write_text(POOL)
    return tmp_path


def first_request(command: tuple[str, ...]) -> str:
    """What a command asks the backend first: apply reads its fleet's lease before all."""
    return "read the lease of fleet default" if command[0] == "apply" else "observe"


COMMANDS = [
    pytest.param(("plan",), id="plan"),
    pytest.param(("plan", "--output", "json"), id="plan-json"),
    pytest.param(("apply",), id="apply"),
    pytest.param(("logs", "alpha"), id="logs"),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_closed_port_is_one_line_saying_the_backend_is_unreachable(
    workdir: Path, command: tuple[str, ...]
) -> None:
    port = free_port()  # nothing listens there
    done, _ = azure(f"http://127.0.0.1:{port}", *command, cwd=workdir)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"Error: cannot reach the backend: {first_request(command)}: cannot connect to "
        f"127.0.0.1:{port}: connection refused"
    ], done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("command", COMMANDS[:3])
def test_a_name_that_does_not_resolve_is_a_dns_problem_not_a_busy_backend(
    workdir: Path, command: tuple[str, ...]
) -> None:
    done, seconds = azure("http://batch.simfleet-test.invalid", *command, cwd=workdir)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"Error: cannot reach the backend: {first_request(command)}: cannot resolve "
        "batch.simfleet-test.invalid"
    )
    assert "DNS" in lines[0]
    assert "busy" not in done.stderr
    assert seconds < 30  # resolution fails locally; nothing hangs


def test_apply_wait_says_unreachable_while_it_retries(workdir: Path) -> None:
    port = free_port()
    done, _ = azure(f"http://127.0.0.1:{port}", "apply", "--wait", "--timeout", "3", cwd=workdir)
    assert done.returncode == 1
    assert "busy" not in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: cannot reach the backend")


@pytest.mark.parametrize("command", [("plan",), ("apply",)], ids=["plan", "apply"])
def test_arm_with_only_a_shared_key_is_one_line_saying_what_to_set(
    workdir: Path, command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ARM (pools with identities) takes only tokens: refused before any request."""
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "rg")
    done, _ = azure(f"http://127.0.0.1:{free_port()}", *command, cwd=workdir)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP send")
    assert "unset AZURE_BATCH_ACCESS_KEY" in lines[0]


def test_a_key_batch_refuses_is_one_line_that_says_to_check_it(
    workdir: Path, tmp_path: Path
) -> None:
    driver = EmulatorDriver(tmp_path)  # its account and key are not the ones `azure` sends
    try:
        done, _ = azure(driver.url, "plan", cwd=workdir)
    finally:
        driver.stop()
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: observe: 403 AuthenticationFailed: Batch refused the shared key: check "
        "AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY (a key of that account, as "
        "`az batch account keys list` shows it)"
    ], done.stderr
