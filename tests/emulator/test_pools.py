"""Pools through the real SDK: allocation over emulator time, resizing, quotas, deletion."""

from __future__ import annotations

import pytest
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.batch_emulator import BatchEmulator
from tests.batch_emulator.fixtures import EmulatorFactory, client_for

from .helpers import pool_options, prepare, ready_pool, settle_pool


async def test_pool_allocates_nodes_after_the_delay(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_pool(pool_options(dedicated=2, spot=1))

    pool = await batch_client.get_pool("pool-1")
    assert pool.allocation_state == m.AllocationState.RESIZING
    assert pool.state == m.BatchPoolState.ACTIVE
    assert [n.state async for n in batch_client.list_nodes("pool-1")] == [
        m.BatchNodeState.CREATING
    ] * 3

    batch_emulator.advance(batch_emulator.config.allocation_delay)
    pool = await batch_client.get_pool("pool-1")
    assert pool.allocation_state == m.AllocationState.STEADY
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (2, 1)
    assert pool.resize_errors is None
    assert {n.state async for n in batch_client.list_nodes("pool-1")} == {m.BatchNodeState.STARTING}

    batch_emulator.advance(batch_emulator.config.node_start_delay)
    nodes = [n async for n in batch_client.list_nodes("pool-1")]
    assert {n.state for n in nodes} == {m.BatchNodeState.IDLE}
    assert sorted(n.is_dedicated for n in nodes) == [False, True, True]
    node = await batch_client.get_node("pool-1", nodes[0].id)
    assert node.vm_size == "Standard_D2s_v3"


async def test_pool_reads_back_what_was_created(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_pool(pool_options(slots=4))
    pool = await batch_client.get_pool("POOL-1")  # ids are case-insensitive
    assert pool.id == "pool-1"
    assert pool.task_slots_per_node == 4
    assert pool.metadata[0].name == "simfleet/owner"
    assert pool.virtual_machine_configuration.container_configuration.type == "dockerCompatible"
    assert pool.etag.startswith("0x")
    assert pool.last_modified == pool.creation_time
    assert await batch_client.pool_exists("pool-1") is True
    with pytest.raises(ResourceNotFoundError):  # the SDK raises instead of returning False
        await batch_client.pool_exists("nope")

    listed = [
        p
        async for p in batch_client.list_pools(
            filter="startswith(id,'pool')", select=["id", "state"]
        )
    ]
    assert [(p.id, p.state, p.vm_size) for p in listed] == [("pool-1", "active", None)]


async def test_duplicate_pool_is_409_pool_exists(batch_client: BatchClient) -> None:
    await batch_client.create_pool(pool_options())
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.create_pool(pool_options("POOL-1"))
    assert caught.value.error.code == "PoolExists"


async def test_missing_pool_is_404(batch_client: BatchClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        await batch_client.get_pool("missing")
    assert caught.value.error.code == "PoolNotFound"


async def test_resize_while_resizing_is_409_and_stop_resize_settles(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_pool(pool_options(dedicated=3))
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.begin_resize_pool(
            "pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=5)
        )
    assert caught.value.error.code == "PoolBeingResized"

    await batch_client.begin_stop_pool_resize("pool-1", polling_interval=0)
    pool = await batch_client.get_pool("pool-1")
    assert pool.allocation_state == m.AllocationState.STOPPING
    batch_emulator.advance(batch_emulator.config.stop_resize_delay)
    pool = await batch_client.get_pool("pool-1")
    assert pool.allocation_state == m.AllocationState.STEADY
    assert pool.current_dedicated_nodes == 0  # nothing had been allocated yet


async def test_shrink_requeues_tasks_of_removed_nodes(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=2)
    await batch_client.create_job(
        m.BatchJobCreateOptions(id="job-1", pool_info=m.BatchPoolInfo(pool_id="pool-1"))
    )
    await batch_client.create_task(
        "job-1", m.BatchTaskCreateOptions(id="t1", command_line="sleep 1000")
    )
    prepare(batch_emulator)
    await batch_client.begin_resize_pool(
        "pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0
    )
    # One idle node leaves; the busy one stays and keeps its task.
    task = await batch_client.get_task("job-1", "t1")
    assert task.state == m.BatchTaskState.RUNNING
    settle_pool(batch_emulator)
    pool = await batch_client.get_pool("pool-1")
    assert (pool.allocation_state, pool.current_dedicated_nodes) == ("steady", 1)

    await batch_client.begin_resize_pool(
        "pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=0), polling_interval=0
    )
    task = await batch_client.get_task("job-1", "t1")
    assert (task.state, task.execution_info.requeue_count) == ("active", 1)


async def test_core_quota_produces_resize_errors(make_batch_emulator: EmulatorFactory) -> None:
    emulator = await make_batch_emulator(dedicated_core_quota=6)
    async with client_for(emulator) as client:
        await client.create_pool(pool_options(dedicated=5, vm_size="Standard_D2s_v3"))
        pool = await client.get_pool("pool-1")
        assert pool.resize_errors is None  # only reported once steady
        emulator.advance(emulator.config.allocation_delay)
        pool = await client.get_pool("pool-1")
        assert pool.allocation_state == m.AllocationState.STEADY
        assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (5, 3)
        assert [e.code for e in pool.resize_errors] == ["AccountCoreQuotaReached"]

        # The next resize clears the errors.
        await client.begin_resize_pool("pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=2))
        emulator.advance(emulator.config.allocation_delay)
        pool = await client.get_pool("pool-1")
        assert (pool.current_dedicated_nodes, pool.resize_errors) == (2, None)


async def test_pool_deletion_is_asynchronous(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator)
    await batch_client.begin_delete_pool("pool-1", polling_interval=0)

    pool = await batch_client.get_pool("pool-1")
    assert pool.state == m.BatchPoolState.DELETING
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.create_pool(pool_options())
    assert caught.value.error.code == "PoolBeingDeleted"
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.begin_resize_pool(
            "pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=1)
        )
    assert caught.value.error.code == "PoolBeingDeleted"

    batch_emulator.advance(batch_emulator.config.deletion_delay)
    with pytest.raises(ResourceNotFoundError):
        await batch_client.get_pool("pool-1")
    await batch_client.create_pool(pool_options())  # the id is free again


async def test_update_pool_metadata_and_node_bound_fields(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator)
    before = await batch_client.get_pool("pool-1")
    await batch_client.update_pool(
        "pool-1",
        m.BatchPoolUpdateOptions(metadata=[m.BatchMetadataItem(name="generation", value="2")]),
    )
    after = await batch_client.get_pool("pool-1")
    assert [(i.name, i.value) for i in after.metadata] == [("generation", "2")]
    assert after.etag != before.etag
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.update_pool("pool-1", m.BatchPoolUpdateOptions(task_slots_per_node=8))
    assert caught.value.error.code == "OperationInvalidForCurrentState"


async def test_invalid_pool_is_400(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    bad = pool_options("bad id!")
    with pytest.raises(HttpResponseError) as caught:
        await batch_client.create_pool(bad)
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidPropertyValue"

    no_vm = m.BatchPoolCreateOptions(id="p2", vm_size="Standard_D2s_v3")
    with pytest.raises(HttpResponseError) as caught:
        await batch_client.create_pool(no_vm)
    assert caught.value.error.code == "MissingRequiredProperty"


async def test_node_counts(batch_client: BatchClient, batch_emulator: BatchEmulator) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=2, spot=1)
    counts = [c async for c in batch_client.list_pool_node_counts()]
    assert counts[0].pool_id == "pool-1"
    assert (counts[0].dedicated.idle, counts[0].low_priority.idle) == (2, 1)
