"""Scoped observation: ``observe(jobs=…)`` reports every pool but only the named jobs.

A pass woken by a spec edit observes only the simulations the edit changed (the
reconciler merges the answer with its cached view of the rest), so a scoped snapshot must
leave nothing out of the named jobs and must not forget what it keeps for the others.
"""

from __future__ import annotations

import pytest

from controller.backends.local import LocalBackend
from controller.planner import CreateJob, CreatePool, ResizePool
from tests.planner.conftest import pool_spec

from .conftest import BackendFactory, add


@pytest.fixture
async def two_jobs(backend: LocalBackend) -> LocalBackend:
    """Jobs ``sim`` and ``other`` on pool ``sims``, two waiting tasks each (no slots)."""
    await backend.execute(ResizePool("sims", 0, 0, 1, 0))
    await backend.execute(CreateJob("other", "sims"))
    await add(backend, "true", "a0", "a1")
    await add(backend, "true", "b0", "b1", job="other")
    return backend


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        pytest.param(None, {"sim", "other"}, id="none-means-every-job"),
        pytest.param(frozenset({"other"}), {"other"}, id="one-job"),
        pytest.param(frozenset(), set(), id="empty-means-pools-only"),
        pytest.param(frozenset({"other", "gone"}), {"other"}, id="missing-jobs-are-left-out"),
    ],
)
async def test_a_scoped_snapshot_has_every_pool_and_only_the_named_jobs(
    two_jobs: LocalBackend, jobs: frozenset[str] | None, expected: set[str]
) -> None:
    observed = await two_jobs.observe(jobs=jobs)
    assert set(observed.pools) == {"sims"}
    assert set(observed.jobs) == expected
    for name in expected:
        assert len(observed.jobs[name].tasks) == 2


async def test_a_scoped_snapshot_keeps_the_values_of_the_other_jobs_for_the_next_one(
    two_jobs: LocalBackend,
) -> None:
    before = await two_jobs.observe()
    await two_jobs.observe(jobs=frozenset({"sim"}))
    after = await two_jobs.observe()
    # Unchanged tasks of the job left out are the very same values, not rebuilt ones.
    for job in ("other", "sim"):
        pairs = zip(before.jobs[job].tasks, after.jobs[job].tasks, strict=True)
        assert all(a is b for a, b in pairs)


async def test_a_replacement_pool_and_job_keep_their_marks_across_a_restart(
    open_backend: BackendFactory,
) -> None:
    """The spec pool of a replacement pool and the simulation of its job are written down,
    so a restarted controller still knows which generation belongs to which spec pool,
    and a scoped observation of the simulation includes its job on the new pool."""
    backend = await open_backend()
    await backend.execute(CreatePool("sims-g0123456789", pool_spec(), 1, 0, spec_pool="sims"))
    await backend.execute(CreateJob("sim-p0123456789", "sims-g0123456789", "sim"))
    await backend.close()
    again = await open_backend()
    observed = await again.observe(jobs=frozenset({"sim"}))
    assert observed.pools["sims-g0123456789"].spec_pool == "sims"
    assert observed.jobs["sim-p0123456789"].simulation == "sim"
