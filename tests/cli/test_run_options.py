"""The operator's run-options policy on the command line: ``validate``, ``plan``, ``apply``.

``--allow-run-option`` (repeatable, or ``SIMFLEET_ALLOW_RUN_OPTION`` with several names),
``--unsafe-run-options`` and ``--run-options-policy``; the default depends on the backend.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from controller.cli import main

POOL = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {name: sims}
spec: {vmSize: local, taskSlotsPerNode: 4, nodes: {dedicated: 1}}
"""


def simulation(name: str, options: str) -> str:
    return (
        "apiVersion: simfleet/v1\n"
        "kind: Simulation\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  pool: sims\n"
        "  image: sim:1\n"
        "  command: sleep 100\n"
        f"  containerRunOptions: {options}\n"
    )


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "pool.yaml").write_text(POOL)
    (folder / "good.yaml").write_text(simulation("good", "--shm-size=1g"))
    (folder / "bad.yaml").write_text(simulation("bad", "--privileged -v /:/host"))
    return folder


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


class TestValidate:
    def test_refused_options_exit_1_with_file_line_column(self, specs: Path) -> None:
        result = invoke("validate", str(specs))
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        assert len(lines) == 2
        assert all(
            line.startswith(f"{specs / 'bad.yaml'}:8:24: spec.containerRunOptions:")
            for line in lines
        )
        assert "--privileged is not allowed" in lines[0]
        assert "-v (--volume) is not allowed" in lines[1]
        assert "Traceback" not in result.output

    def test_the_operator_widens_the_policy_by_option(self, specs: Path) -> None:
        result = invoke(
            "validate", str(specs), "--allow-run-option", "privileged", "--allow-run-option", "-v"
        )
        assert result.exit_code == 0, result.output

    def test_the_operator_widens_the_policy_by_variable(self, specs: Path) -> None:
        result = invoke(
            "validate", str(specs), env={"SIMFLEET_ALLOW_RUN_OPTION": "privileged, volume"}
        )
        assert result.exit_code == 0, result.output

    def test_a_partial_widening_still_refuses_the_rest(self, specs: Path) -> None:
        result = invoke("validate", str(specs), "--allow-run-option", "volume")
        assert result.exit_code == 1
        assert "--privileged is not allowed" in result.stderr
        assert "--volume" not in result.stderr

    def test_unsafe_passes_anything_with_a_warning(self, specs: Path) -> None:
        result = invoke("validate", str(specs), "--unsafe-run-options")
        assert result.exit_code == 0
        assert result.stderr.startswith("warning: --unsafe-run-options")

    def test_what_simfleet_relies_on_cannot_be_allowed(self, specs: Path) -> None:
        result = invoke("validate", str(specs), "--allow-run-option", "env")
        assert result.exit_code == 2
        assert "--env cannot be allowed" in result.stderr

    def test_unsafe_and_strict_contradict_each_other(self, specs: Path) -> None:
        result = invoke(
            "validate", str(specs), "--unsafe-run-options", "--run-options-policy", "strict"
        )
        assert result.exit_code == 2
        assert "contradicts" in result.stderr

    def test_on_azure_run_options_pass_through_by_default(self, specs: Path) -> None:
        assert invoke("validate", str(specs), "--backend", "azure").exit_code == 0

    @pytest.mark.parametrize(
        "extra",
        [
            pytest.param(("--run-options-policy", "strict"), id="strict"),
            pytest.param(("--allow-run-option", "volume"), id="allow-list"),
        ],
    )
    def test_on_azure_the_operator_can_ask_for_the_policy(
        self, specs: Path, extra: tuple[str, ...]
    ) -> None:
        result = invoke("validate", str(specs), "--backend", "azure", *extra)
        assert result.exit_code == 1
        assert "--privileged is not allowed" in result.stderr


class TestPlanAndApply:
    def test_plan_reports_the_error_and_holds_the_simulation(
        self, specs: Path, tmp_path: Path
    ) -> None:
        state = str(tmp_path / "state")
        result = invoke("plan", "--specs", str(specs), "--state-dir", state, "--output", "json")
        assert result.exit_code == 1
        document = json.loads(result.stdout)
        (error,) = {(e["line"], e["column"], e["path"]) for e in document["errors"]}
        assert error == (8, 24, "spec.containerRunOptions")
        created = {c["name"] for c in document["changes"] if c["verb"] == "create"}
        assert created == {"sims", "good"}  # "bad" is held, the rest goes on

    def test_apply_starts_nothing_of_a_refused_simulation(
        self, specs: Path, tmp_path: Path
    ) -> None:
        state = tmp_path / "state"
        (specs / "good.yaml").unlink()
        result = invoke("apply", "--specs", str(specs), "--state-dir", str(state))
        assert result.exit_code == 1
        assert "--privileged is not allowed" in result.stderr
        assert "bad" not in result.stdout
        assert not (state / "local" / "jobs" / "bad").exists()


def test_the_daemon_warns_at_start_when_run_options_are_unsafe(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    command = [sys.executable, "-m", "controller", "run", "--specs", "specs", "--listen"]
    daemon = subprocess.Popen(
        [*command, "127.0.0.1:0", "--unsafe-run-options", "--log-format", "json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert daemon.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = daemon.stdout.readline()
            if not line:
                break
            lines.append(line)
            if '"started"' in line:
                break
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
    events = [json.loads(line) for line in lines if line.startswith("{")]
    warning = next(e for e in events if e["event"] == "unsafe_run_options")
    assert warning["level"] == "warning"
    assert "take over this host" in warning["detail"]
