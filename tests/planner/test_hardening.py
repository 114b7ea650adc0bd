"""Planner rules from the hardening issue: the prune delay, per-simulation isolation,
case-insensitive ids and revisions that reveal nothing about secret values."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import timedelta

import pytest
from pydantic import SecretStr

from controller.planner import (
    CreateJob,
    DeleteJob,
    DeletePool,
    DesiredSimulation,
    PlannerConfig,
    plan,
    revision,
    template_of,
)
from controller.spec import SimulationSpec
from controller.testing import EPOCH

from .conftest import desired, simulation, task
from .test_plan import job, observed, summary

CART = simulation()
DELAY = PlannerConfig(prune_delay=timedelta(seconds=10))


class TestPruneDelay:
    def test_a_vanished_definition_is_not_pruned_before_the_delay(self) -> None:
        first = plan(desired(pools={}), observed(job(task(CART, 0))), EPOCH, DELAY)
        assert first.actions == ()
        assert first.absent == {("simulation", "cartpole"): EPOCH, ("pool", "sims"): EPOCH}
        assert first.requeue_after == EPOCH + timedelta(seconds=10)
        assert "will be pruned in 10s" in first.status.simulations[0].message
        assert any(c.verb == "prune" and not c.applies for c in first.changes)
        assert not first.converged

        later = EPOCH + timedelta(seconds=9)
        second = plan(
            desired(pools={}), observed(job(task(CART, 0))), later, DELAY, None, first.absent
        )
        assert second.actions == ()
        assert "will be pruned in 1s" in second.status.simulations[0].message

        due = EPOCH + timedelta(seconds=10)
        third = plan(
            desired(pools={}), observed(job(task(CART, 0))), due, DELAY, None, second.absent
        )
        assert [summary(a) for a in third.actions] == [
            ("delete-job", "cartpole"),
            ("delete-pool", "sims"),
        ]

    def test_a_definition_that_comes_back_resets_the_clock(self) -> None:
        gone = plan(desired(pools={}), observed(job(task(CART, 0))), EPOCH, DELAY)
        back = plan(desired(CART), observed(job(task(CART, 0))), EPOCH, DELAY, None, gone.absent)
        assert back.absent == {}
        again = EPOCH + timedelta(seconds=30)
        gone_again = plan(
            desired(pools={}), observed(job(task(CART, 0))), again, DELAY, None, back.absent
        )
        assert gone_again.actions == ()  # counted afresh from the second disappearance

    def test_no_clock_runs_while_pruning_is_held(self) -> None:
        held = plan(
            desired(pools={}, prune_allowed=False), observed(job(task(CART, 0))), EPOCH, DELAY
        )
        assert held.absent == {}
        assert held.actions == ()

    def test_a_zero_delay_prunes_at_once(self) -> None:
        result = plan(desired(pools={}), observed(job(task(CART, 0))), EPOCH)
        assert {type(a) for a in result.actions} == {DeleteJob, DeletePool}


class TestIsolation:
    def test_one_simulation_that_cannot_be_planned_does_not_stop_the_others(self) -> None:
        # Skips validation the way an unforeseen value would: a deadline that overflows
        # date arithmetic (before specs were bounded, every pass raised OverflowError).
        broken_spec = SimulationSpec.model_validate(
            {"pool": "sims", "simulators": 2, "image": "x:1", "command": "sleep 1"}
        )
        broken_spec = broken_spec.model_copy(
            update={
                "rollout": broken_spec.rollout.model_copy(
                    update={"progress_deadline": timedelta(days=900_000_000)}
                )
            }
        )
        broken = DesiredSimulation("broken", broken_spec)
        other = simulation("other", simulators=2)
        result = plan(desired(broken, other), observed(job(task(broken, 0), name="broken")), EPOCH)
        assert ("create-job", "other", "sims") in [summary(a) for a in result.actions]
        assert not any(
            getattr(a, "job", getattr(a, "name", "")) == "broken" for a in result.actions
        )
        row = next(s for s in result.status.simulations if s.name == "broken")
        assert "cannot plan this simulation" in row.message
        assert "OverflowError" in row.message
        assert row.ready == 1
        assert set(result.failures) == {("simulation", "broken")}
        assert not result.converged


class TestCaseInsensitiveIds:
    def test_renaming_a_simulation_in_letter_case_changes_nothing(self) -> None:
        renamed = dataclasses.replace(CART, name="CartPole")
        fleet = [task(CART, s) for s in range(3)]
        result = plan(desired(renamed), observed(job(*fleet)), EPOCH)
        assert result.actions == ()
        assert [s.name for s in result.status.simulations] == ["cartpole"]

    def test_a_pool_renamed_in_letter_case_is_not_recreated_or_pruned(self) -> None:
        base = desired(CART)
        upper = dataclasses.replace(
            base,
            pools={"SIMS": base.pools["sims"]},
            simulations={
                "cartpole": dataclasses.replace(
                    CART, spec=CART.spec.model_copy(update={"pool": "SIMS"})
                )
            },
        )
        result = plan(upper, observed(job(*[task(CART, s) for s in range(3)])), EPOCH)
        assert result.actions == ()
        assert not any(isinstance(a, CreateJob) for a in result.actions)


class TestKeyedRevision:
    def sim(self, key: bytes, secret: str = "hunter2") -> DesiredSimulation:
        spec = SimulationSpec.model_validate(
            {
                "pool": "sims",
                "image": "x:1",
                "command": "sleep 1",
                "secretEnv": {"KEY": {"fromEnv": "SIM_KEY"}},
            }
        )
        return DesiredSimulation("s", spec, {"KEY": SecretStr(secret)}, None, key)

    def test_the_revision_changes_with_the_secret(self) -> None:
        key = b"k" * 32
        assert revision(template_of(self.sim(key))) != revision(template_of(self.sim(key, "x2")))

    def test_a_guess_cannot_be_checked_without_the_key(self) -> None:
        """The unsalted hash of main let anyone confirm a guess from a task id."""
        key = b"k" * 32
        rev = revision(template_of(self.sim(key)))
        template = template_of(self.sim(key))
        unkeyed = json.dumps(
            {
                "image": template.image,
                "command": template.command,
                "env": [],
                "secretEnv": [["KEY", "hunter2"]],
                "containerRunOptions": "",
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        assert hashlib.sha256(unkeyed.encode()).hexdigest()[:10] != rev
        for other_key in (b"", b"k" * 31 + b"j"):
            assert revision(template_of(self.sim(other_key))) != rev

    @pytest.mark.parametrize("key", [b"a" * 32, b"b" * 32])
    def test_templates_without_secrets_do_not_depend_on_the_key(self, key: bytes) -> None:
        plain = dataclasses.replace(CART, revision_key=key)
        assert revision(template_of(plain)) == revision(template_of(CART))
