"""``simfleet plan`` renderings over real plans: the lines reviewers read, and no secrets."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from controller.cli._planview import RENDERERS
from controller.planner import Desired, DesiredSimulation, Plan, plan
from controller.spec import SimulationSpec
from controller.testing import FakeBackend, FakeClock
from tests.planner.conftest import desired, pool_spec, simulation

SECRET = "hunter2-never-printed"


def with_secret(image: str, simulators: int) -> DesiredSimulation:
    spec = SimulationSpec.model_validate(
        {
            "pool": "sims",
            "simulators": simulators,
            "image": image,
            "command": "run",
            "secretEnv": {"API_KEY": {"fromEnv": "API_KEY"}},
        }
    )
    return DesiredSimulation("cartpole", spec, {"API_KEY": SecretStr(SECRET)})


def converge(backend: FakeBackend, want: Desired, clock: FakeClock) -> None:
    for _ in range(10):
        for action in plan(want, backend.snapshot(), clock()).actions:
            backend.apply(action)


@pytest.fixture
def rollout_plan() -> Plan:
    """A fleet of 4 on image :1.0, and specs asking for 6 on :1.1 with a new secret."""
    clock = FakeClock()
    backend = FakeBackend(clock)
    converge(backend, desired(with_secret("sim:1.0", 4)), clock)
    return plan(desired(with_secret("sim:1.1", 6)), backend.snapshot(), clock())


def test_changes_say_scale_and_roll_out_with_images(rollout_plan: Plan) -> None:
    lines = [str(c) for c in rollout_plan.changes]
    assert "scale simulation cartpole: 4 → 6 simulators" in lines
    assert "roll out simulation cartpole: image sim:1.0 → sim:1.1 (4 simulators)" in lines


@pytest.mark.parametrize("output", sorted(RENDERERS))
def test_no_rendering_shows_a_secret(rollout_plan: Plan, output: str) -> None:
    text = RENDERERS[output](rollout_plan, (), "0123456789abcdef")
    assert SECRET not in text
    assert "sim:1.1" in text


def test_markdown_is_a_table_for_a_pull_request(rollout_plan: Plan) -> None:
    text = RENDERERS["markdown"](rollout_plan, (), "0123456789abcdef")
    assert text.startswith("### simfleet plan at `0123456789ab`")
    assert (
        "| ~ | simulation `cartpole` | roll out: image sim:1.0 → sim:1.1 (4 simulators) |" in text
    )


def test_json_lists_changes_with_their_actions(rollout_plan: Plan) -> None:
    document = json.loads(RENDERERS["json"](rollout_plan, (), None))
    verbs = {c["verb"] for c in document["changes"]}
    assert {"scale", "roll out"} <= verbs
    assert document["actions"] == len(rollout_plan.actions)


def test_create_prune_and_replacement_are_named() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock)
    converge(backend, desired(simulation("old", simulators=1)), clock)
    bigger = {
        "sims": pool_spec(vmSize="standard_d8s_v5", nodes={"dedicated": 2}, replacement="Hold")
    }
    result = plan(
        desired(simulation("new", simulators=2), pools=bigger), backend.snapshot(), clock()
    )
    lines = {str(c) for c in result.changes}
    assert "create simulation new: 2 simulators of cartpole:1.0" in lines
    assert "prune simulation old: no spec defines it any more; its 1 simulators stop" in lines
    replacement = next(c for c in result.changes if c.verb == "needs replacement")
    assert not replacement.applies
    assert "vmSize standard_d4s_v5 → standard_d8s_v5" in replacement.detail
    assert "! needs replacement pool sims" in RENDERERS["text"](result, (), None)


def test_a_pool_replacement_is_named_as_one() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock)
    converge(backend, desired(simulation("old", simulators=3)), clock)
    bigger = {"sims": pool_spec(vmSize="standard_d8s_v5", nodes={"dedicated": 2})}
    result = plan(
        desired(simulation("old", simulators=3), pools=bigger), backend.snapshot(), clock()
    )
    text = RENDERERS["text"](result, (), None)
    assert "~ replace pool sims-g" in text
    assert "create pool sims-g" in text
    assert "move 3 simulator(s), delete old pool sims" in text
    assert "~ replace simulation old: move 3 simulator(s) to pool sims-g" in text
    assert "needs replacement" not in text


def test_a_converged_fleet_has_nothing_to_say() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock)
    want = desired(simulation(simulators=3))
    converge(backend, want, clock)
    result = plan(want, backend.snapshot(), clock())
    assert result.changes == ()
    assert "No changes" in RENDERERS["text"](result, (), None)


def test_a_run_options_change_is_shown_in_full() -> None:
    """A pull-request comment must show what a container may now do to its host."""
    clock = FakeClock()
    backend = FakeBackend(clock)
    converge(backend, desired(simulation(containerRunOptions="--shm-size=1g")), clock)
    wider = "--privileged -v /:/host --health-cmd 'a | b'"
    result = plan(desired(simulation(containerRunOptions=wider)), backend.snapshot(), clock())
    lines = [str(c) for c in result.changes]
    assert (
        f"roll out simulation cartpole: run options `--shm-size=1g` → `{wider}` (3 simulators)"
        in lines
    )
    markdown = RENDERERS["markdown"](result, (), None)
    assert "`--privileged -v /:/host --health-cmd 'a \\| b'`" in markdown  # one table cell


def test_new_simulations_show_their_run_options() -> None:
    clock = FakeClock()
    result = plan(
        desired(simulation("new", simulators=2, containerRunOptions="--cpus 2")),
        FakeBackend(clock).snapshot(),
        clock(),
    )
    lines = {str(c) for c in result.changes}
    assert (
        "create simulation new: 2 simulators of cartpole:1.0 with run options `--cpus 2`" in lines
    )


@pytest.mark.parametrize(
    ("revision", "heading"),
    [
        pytest.param("0123456789abcdef0123", "### simfleet plan at `0123456789ab`", id="clean"),
        pytest.param(
            "0123456789abcdef0123-dirty",
            "### simfleet plan at `0123456789ab-dirty`",
            id="dirty",
        ),
    ],
)
def test_the_markdown_heading_keeps_the_dirty_mark(revision: str, heading: str) -> None:
    text = RENDERERS["markdown"](
        plan(desired(), FakeBackend().snapshot(), FakeClock()()), (), revision
    )
    assert text.splitlines()[0] == heading
