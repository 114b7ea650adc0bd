"""``--max-in-flight`` / ``SIMFLEET_MAX_IN_FLIGHT``: the one limit on requests in flight,
for ``run`` and ``apply``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import apply as apply_module
from controller.cli import main
from controller.reconcile import MAX_IN_FLIGHT, Reconciler


@pytest.mark.parametrize("command", ["run", "apply"])
def test_the_limit_must_allow_one_request(command: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, [command, "--specs", str(tmp_path)], env={"SIMFLEET_MAX_IN_FLIGHT": "0"}
    )
    assert result.exit_code == 2
    assert "--max-in-flight" in result.output


@pytest.mark.parametrize(
    ("env", "expected"), [({}, MAX_IN_FLIGHT), ({"SIMFLEET_MAX_IN_FLIGHT": "5"}, 5)]
)
def test_apply_hands_the_limit_to_its_reconciler(
    env: dict[str, str], expected: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = apply_module.reconciler

    def spy(*args: object) -> Reconciler:
        made = real(*args)  # type: ignore[arg-type]
        seen.append(made.settings.max_in_flight)
        return made

    monkeypatch.setattr(apply_module, "reconciler", spy)
    specs = tmp_path / "specs"
    specs.mkdir()
    result = CliRunner().invoke(
        main,
        ["apply", "--specs", str(specs), "--state-dir", str(tmp_path / "state")],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert seen == [expected]
