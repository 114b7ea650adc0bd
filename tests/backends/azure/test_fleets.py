"""Fleets on Azure: what a controller creates carries its fleet, what it observes is
classified by owner, and objects made before fleets existed are adopted by ``default``
without a single write.

Objects "of today's version" and of other owners are made here with the SDK directly,
exactly as that version (or that owner) makes them, so nothing depends on the code under
test to set them up.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.batch import models as m

from controller.backends import LeaseTimings
from controller.backends.azure import (
    AzureBackend,
    AzureLease,
    AzureSettings,
    _mapping,
    lease_job_id,
)
from controller.planner import (
    AddTasks,
    CreateJob,
    CreatePool,
    Desired,
    Observed,
    SimulatorState,
    plan,
)
from controller.reconcile import run_pass
from tests.batch_emulator._emulator import BatchEmulator
from tests.batch_emulator._writes import writes
from tests.batch_emulator.fixtures import client_for
from tests.planner.conftest import desired, pool_spec, simulation

from .conftest import clock_of, settings_for

MANAGED = m.BatchMetadataItem(name="simfleet-managed", value="true")
POOLS = {"sims": pool_spec(nodes={"dedicated": 2})}


def meta(**items: str) -> list[m.BatchMetadataItem]:
    return [m.BatchMetadataItem(name=k.replace("_", "-"), value=v) for k, v in items.items()]


def metadata_of(obj: Any) -> dict[str, str]:
    return {item.name: item.value for item in obj.metadata or ()}


@pytest.fixture
async def logged(make_batch_emulator: Any) -> BatchEmulator:
    emulator: BatchEmulator = await make_batch_emulator(
        allocation_delay=5.0, node_start_delay=1.0, request_log=True
    )
    return emulator


async def converge(backend: AzureBackend, want: Desired, emulator: BatchEmulator) -> Any:
    result = None
    for _ in range(12):
        result = await run_pass(want, backend, clock_of(emulator))
        if not result.plan.actions and all(s.ready == s.desired for s in result.status.simulations):
            return result
        emulator.advance(5)
    raise AssertionError(f"not converged: {result.status if result else None}")


async def test_what_a_fleet_creates_carries_its_fleet(logged: BatchEmulator) -> None:
    backend = AzureBackend(settings_for(logged), fleet="blue")
    try:
        await converge(backend, desired(simulation(simulators=2), pools=POOLS), logged)
    finally:
        await backend.close()
    async with client_for(logged) as client:
        pool = metadata_of(await client.get_pool("sims"))
        job = metadata_of(await client.get_job("cartpole"))
    for items in (pool, job):
        assert items["simfleet-managed"] == "true"
        assert items["simfleet-fleet"] == "blue"


async def other_owners(emulator: BatchEmulator) -> None:
    """Objects of fleet ``b``, of nobody, a lease job, and one of today's version, each
    job with a task in it."""
    spec = pool_spec()
    async with client_for(emulator) as client:
        body = _mapping.pool_create(CreatePool("b-pool", spec, 1, 0), "b")
        await client.create_pool(body)
        jobs = {
            "b-job": meta(simfleet_managed="true", simfleet_fleet="b"),
            "nobodys": None,
            "simfleet-lease-b": meta(simfleet_lease="b", simfleet_holder="host-1"),
            "legacy": [MANAGED],
        }
        for name, items in jobs.items():
            await client.create_job(
                m.BatchJobCreateOptions(
                    id=name, pool_info=m.BatchPoolInfo(pool_id="b-pool"), metadata=items
                )
            )
            await client.create_task(
                name, m.BatchTaskCreateOptions(id=f"{name}-s0-r0123456789-a0", command_line="x")
            )


async def test_observation_names_whose_each_object_is_and_lists_only_our_tasks(
    logged: BatchEmulator,
) -> None:
    await other_owners(logged)
    backend = AzureBackend(settings_for(logged), fleet="a")
    try:
        logged.requests.clear()
        observed = await backend.observe()
    finally:
        await backend.close()
    owners = {name: (job.owned, job.owner, job.tasks) for name, job in observed.jobs.items()}
    assert owners == {
        "b-job": (False, "fleet 'b'", ()),
        "nobodys": (False, "", ()),
        "simfleet-lease-b": (False, "the lease of fleet 'b'", ()),
        "legacy": (False, "fleet 'default'", ()),
    }
    pool = observed.pools["b-pool"]
    assert (pool.owned, pool.owner) == (False, "fleet 'b'")
    # neither task counts nor task listings of any job that is not ours
    sent = Counter(e.operation for e in logged.requests.entries)
    assert sent["Jobs_ListJobs"] == 1
    assert sent["Jobs_GetJobTaskCounts"] == sent["Tasks_ListTasks"] == 0


async def test_the_default_fleet_owns_what_today_s_version_made(logged: BatchEmulator) -> None:
    await other_owners(logged)
    backend = AzureBackend(settings_for(logged))
    try:
        observed = await backend.observe()
    finally:
        await backend.close()
    assert observed.jobs["legacy"].owned
    assert [t.id for t in observed.jobs["legacy"].tasks] == ["legacy-s0-r0123456789-a0"]
    assert observed.jobs["b-job"].owner == "fleet 'b'"


async def test_another_fleets_objects_are_never_written_to(logged: BatchEmulator) -> None:
    """Fleet ``a``'s specs name b's pool and job, and nothing else remains of b's in them:
    passes hold both conflicts (owner named), prune nothing of b's and write nothing to it."""
    await other_owners(logged)
    want = desired(
        simulation("b-job", pool="sims"),
        simulation("mine", pool="b-pool"),
        simulation("ours", pool="sims", simulators=1),
        pools={"sims": pool_spec(nodes={"dedicated": 1}), "b-pool": pool_spec()},
    )
    backend = AzureBackend(settings_for(logged), fleet="a")
    try:
        logged.requests.clear()
        for _ in range(4):
            result = await run_pass(want, backend, clock_of(logged))
            logged.advance(5)
    finally:
        await backend.close()
    messages = {s.name: s.message for s in result.status.simulations}
    assert messages["b-job"] == "a job named b-job belongs to fleet 'b'; leaving it alone"
    assert "its pool b-pool belongs to fleet 'b'" in messages["mine"]
    pools = {p.name: p.message for p in result.status.pools}
    assert pools["b-pool"] == "a pool named b-pool belongs to fleet 'b'; leaving it alone"
    written = writes((e.operation, e.path) for e in logged.requests.entries)
    touched = {name for (_, name, _) in written if name}
    assert touched == {"ours"}, written  # tasks added to our own job, nothing else named
    assert written[("job", "", "Jobs_CreateJob")] == 1  # only "ours": no job on b's pool
    assert written[("pool", "", "Pools_CreatePool")] == 1


async def test_objects_of_today_s_version_are_adopted_with_no_write(
    logged: BatchEmulator,
) -> None:
    """The migration: a pool, a job and tasks made exactly as the version without fleets
    makes them (ownership mark, no fleet item) keep running, untouched, under a
    default-fleet controller."""
    want = desired(simulation(simulators=3), pools=POOLS)
    now = datetime.fromtimestamp(logged.now, UTC)
    async with client_for(logged) as client:
        for action in plan(want, Observed(), now).actions:
            match action:
                case CreatePool():
                    body = _mapping.pool_create(action, "default")
                    body.metadata = [i for i in body.metadata or () if i.name != "simfleet-fleet"]
                    await client.create_pool(body)
                case CreateJob(name, pool):
                    await client.create_job(
                        m.BatchJobCreateOptions(
                            id=name, pool_info=m.BatchPoolInfo(pool_id=pool), metadata=[MANAGED]
                        )
                    )
                case AddTasks(job, template, tasks):
                    bodies = [_mapping.task_create(job, template, t) for t in tasks]
                    await client.create_task_collection(job, m.BatchTaskGroup(task_values=bodies))
                case other:
                    raise AssertionError(other)
        for _ in range(3):
            logged.advance(5)
        listed = [t async for t in client.list_tasks("cartpole")]
    before = {t.id for t in listed if t.state == m.BatchTaskState.RUNNING}
    assert len(before) == 3

    logged.requests.clear()
    backend = AzureBackend(settings_for(logged))
    try:
        for _ in range(3):
            result = await run_pass(want, backend, clock_of(logged))
            assert result.plan.actions == ()
            logged.advance(5)
    finally:
        await backend.close()
    assert writes((e.operation, e.path) for e in logged.requests.entries) == Counter()
    (sim,) = result.status.simulations
    assert (sim.ready, sim.up_to_date, sim.message) == (3, 3, "")
    running = result.observed.jobs["cartpole"].tasks
    assert {t.id for t in running if t.state is SimulatorState.RUNNING} == before


async def test_a_real_lease_job_is_nobody_s_to_plan_and_its_tasks_are_never_listed(
    logged: BatchEmulator,
) -> None:
    """The lease job :class:`AzureLease` keeps is reported as the lease, even to its own
    fleet's controller, which therefore never prunes or lists it."""
    timings = LeaseTimings(duration=15, renew_deadline=10, retry_period=2)
    lease = AzureLease(settings_for(logged), fleet="default", identity="one", timings=timings)
    backend = AzureBackend(settings_for(logged), lease=lease)
    try:
        assert (await lease.round()).leading
        logged.requests.clear()
        result = await run_pass(desired(pools={}), backend, clock_of(logged))
    finally:
        await backend.close()
        await lease.close()
    job = result.observed.jobs[lease_job_id("default")]
    assert (job.owned, job.owner) == (False, "the lease of fleet 'default'")
    assert result.plan.actions == ()
    assert result.status.simulations == ()
    sent = Counter(e.operation for e in logged.requests.entries)
    assert sent["Jobs_GetJobTaskCounts"] == sent["Tasks_ListTasks"] == 0


def test_a_backend_is_never_fenced_by_another_fleet_s_lease() -> None:
    settings = AzureSettings("http://127.0.0.1:9", "acct", "a2V5")
    timings = LeaseTimings(duration=15, renew_deadline=10, retry_period=2)
    lease = AzureLease(settings, fleet="b", identity="one", timings=timings)
    with pytest.raises(ValueError, match="the lease of fleet 'b' cannot fence fleet 'a'"):
        AzureBackend(settings, fleet="a", lease=lease)
    with pytest.raises(ValueError, match="cannot name a fleet"):
        AzureBackend(settings, fleet="A")
