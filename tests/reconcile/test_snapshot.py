"""The reconciler's cached view between steps, for a simulation with two jobs.

A pool replacement gives a simulation a job on the new pool, with an id of its own and
the simulation's name as its mark (see ``controller.planner._replacement``). A scoped
step of that simulation must treat both jobs as in scope: a job in scope that the
backend no longer reports is gone, not kept from the cache.
"""

from __future__ import annotations

from controller.planner import CreateJob, CreatePool, Observed, ObservedJob
from controller.reconcile._snapshot import merged, with_effects
from controller.testing import EPOCH
from tests.planner.conftest import pool_spec

OLD = ObservedJob("sim", "sims", True)
NEW = ObservedJob("sim-p0123456789", "sims-g0123456789", True, simulation="sim")
OTHER = ObservedJob("other", "sims", True)


def test_a_scoped_step_drops_a_cached_job_of_its_simulation_the_backend_no_longer_has() -> None:
    cached = Observed(jobs={j.name: j for j in (OLD, NEW, OTHER)})
    fresh = Observed(jobs={"sim": OLD})  # its job on the new pool was deleted meanwhile
    assert set(merged(cached, fresh, frozenset({"sim"})).jobs) == {"sim", "other"}


def test_created_pool_and_job_carry_their_marks_into_the_view() -> None:
    actions = (
        CreatePool("sims-g0123456789", pool_spec(), 1, 0, spec_pool="sims"),
        CreateJob("sim-p0123456789", "sims-g0123456789", "sim"),
    )
    view = with_effects(Observed(), actions, EPOCH)
    assert view.pools["sims-g0123456789"].spec_pool == "sims"
    assert view.jobs["sim-p0123456789"].simulation == "sim"
