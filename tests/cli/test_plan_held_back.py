"""``simfleet plan`` never says "No changes: the fleet matches the specs." while it holds
something back: it lists what and why, in every output format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main
from controller.cli._planview import RENDERERS, held_back
from controller.planner import Desired, Plan, plan
from controller.spec import SpecError
from controller.testing import FakeBackend, FakeClock
from tests.planner.conftest import desired, pool_spec, simulation

MATCHES = "No changes: the fleet matches the specs."


def converged(want: Desired) -> tuple[FakeBackend, FakeClock]:
    clock = FakeClock()
    backend = FakeBackend(clock)
    for _ in range(10):
        for action in plan(want, backend.snapshot(), clock()).actions:
            backend.apply(action)
    return backend, clock


def plan_after(before: Desired, after: Desired) -> Plan:
    """The plan for ``after`` over a fleet converged on ``before``."""
    backend, clock = converged(before)
    return plan(after, backend.snapshot(), clock())


RUNNING = desired(simulation("alpha", simulators=2))


def undefined_pool() -> Plan:
    return plan_after(RUNNING, desired(simulation("alpha", simulators=2, pool="nosuch")))


def orphans_kept() -> Plan:
    empty = Desired(prune_held_because="the specs directory is empty")
    return plan_after(RUNNING, empty)


def suspended_drift() -> Plan:
    return plan_after(RUNNING, desired(simulation("alpha", simulators=3, suspend=True)))


def held_shrink() -> Plan:
    auto = {"sims": pool_spec(nodes={"dedicated": "auto"})}
    return plan_after(
        desired(simulation("alpha", simulators=16), pools=auto),
        desired(simulation("alpha", simulators=2), pools=auto),
    )


CASES = [
    pytest.param(held_shrink, "if demand stays lower", id="held-shrink"),
    pytest.param(undefined_pool, "pool nosuch is not defined", id="undefined-pool"),
    pytest.param(orphans_kept, "not pruned because the specs directory is empty", id="orphans"),
    pytest.param(suspended_drift, "suspended", id="suspended-drift"),
]


@pytest.mark.parametrize(("make", "reason"), CASES)
@pytest.mark.parametrize("output", sorted(RENDERERS))
def test_what_is_held_back_is_said_with_its_reason(make: object, reason: str, output: str) -> None:
    assert callable(make)
    result: Plan = make()
    text = RENDERERS[output](result, (), None)
    assert MATCHES not in text
    assert reason in text


def test_a_suspended_simulation_that_matches_holds_nothing_back() -> None:
    suspended = desired(simulation("alpha", simulators=2, suspend=True))
    result = plan_after(RUNNING, suspended)
    assert held_back(result) == []
    assert MATCHES in RENDERERS["text"](result, (), None)


def test_spec_errors_alone_are_not_a_match() -> None:
    backend, clock = converged(RUNNING)
    result = plan(RUNNING, backend.snapshot(), clock())
    error = SpecError("specs/bad.yaml", 2, 1, "", "expected the node content")
    text = RENDERERS["text"](result, (error,), None)
    assert MATCHES not in text
    assert "1 spec error(s)" in text
    document = json.loads(RENDERERS["json"](result, (error,), None))
    assert document["errors"][0]["file"] == "specs/bad.yaml"


def test_json_lists_held_objects() -> None:
    document = json.loads(RENDERERS["json"](undefined_pool(), (), None))
    assert document["heldBack"] == [
        {"kind": "simulation", "name": "alpha", "message": "pool nosuch is not defined in any spec"}
    ]


def test_a_file_that_fails_to_load_exits_1_and_claims_no_match(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(
        "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: p}\nspec: {vmSize: d2}\n"
    )
    (specs / "bad.yaml").write_text("apiVersion: [\n")
    env = {"SIMFLEET_SPECS": str(specs), "SIMFLEET_STATE_DIR": str(tmp_path / "state")}
    result = CliRunner().invoke(main, ["plan", "--detailed-exitcode"], env=env)
    assert result.exit_code == 1, result.output
    assert "bad.yaml:" in result.output
    assert MATCHES not in result.output


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_a_missing_specs_directory_is_an_error_not_a_match(tmp_path: Path, command: str) -> None:
    env = {"SIMFLEET_SPECS": str(tmp_path / "spec"), "SIMFLEET_STATE_DIR": str(tmp_path / "s")}
    result = CliRunner().invoke(main, [command], env=env)
    assert result.exit_code == 1
    assert f"the specs directory {tmp_path / 'spec'} does not exist" in result.output
    assert MATCHES not in result.output


def test_apply_says_what_it_holds_back_too(capsys: pytest.CaptureFixture[str]) -> None:
    """A conflict with another fleet's job is left alone by ``apply`` as by ``plan``, and
    ``apply`` says so instead of ending as if all were done."""
    from datetime import timedelta

    from controller.cli.apply import held_back as apply_held_back
    from controller.reconcile import PassResult

    want = desired(simulation("alpha", simulators=2))
    backend, clock = converged(desired())
    backend.add_foreign_job("alpha", "sims", owner="fleet 'b'")
    decided = plan(want, backend.snapshot(), clock())
    result = PassResult(
        decided, backend.snapshot(), (), (), None, clock(), timedelta(0), desired=want
    )
    apply_held_back(result)
    assert "held back: simulation alpha: a job named alpha belongs to fleet 'b'" in (
        capsys.readouterr().err
    )
