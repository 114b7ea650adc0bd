"""Taking nodes out of a pool through the real SDK: a resize down picks them as Batch does,
busy ones too, while ``removenodes`` removes exactly the named ones; tasks are packed
onto nodes with ``nodeFillType: pack`` (spread by default), so idle nodes exist to remove."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from tests.batch_emulator import BatchEmulator

from .helpers import add_tasks, job_options, ready_pool


async def node_of(client: BatchClient, task_id: str) -> str:
    task = await client.get_task("job-1", task_id)
    return str(task.node_info.node_id)


async def busy_and_idle(client: BatchClient) -> tuple[set[str], set[str]]:
    nodes = [n async for n in client.list_nodes("pool-1")]
    busy = {n.id for n in nodes if n.state == m.BatchNodeState.RUNNING}
    idle = {n.id for n in nodes if n.state == m.BatchNodeState.IDLE}
    return busy, idle


async def remove(client: BatchClient, nodes: list[str], option: str | None = None) -> None:
    options = m.BatchNodeRemoveOptions(node_ids=nodes, node_deallocation_option=option)
    await client.begin_remove_nodes("pool-1", options, polling_interval=0)


@pytest.mark.parametrize(
    ("fill", "nodes_used"),
    [
        pytest.param("pack", 1, id="pack-fills-one-node-first"),
        pytest.param("spread", 2, id="spread-uses-the-emptiest-node"),
    ],
)
async def test_the_fill_type_decides_how_many_nodes_tasks_take(
    batch_client: BatchClient, batch_emulator: BatchEmulator, fill: str, nodes_used: int
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=3, slots=2, fill=fill)
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["t1", "t2"])
    busy, idle = await busy_and_idle(batch_client)
    assert (len(busy), len(idle)) == (nodes_used, 3 - nodes_used)


async def test_a_resize_down_takes_a_busy_node_while_an_idle_one_stays(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=2, fill="pack")
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["t1"])
    busy, idle = await busy_and_idle(batch_client)
    await batch_client.begin_resize_pool(
        "pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0
    )
    task = await batch_client.get_task("job-1", "t1")
    assert task.execution_info.requeue_count == 1  # killed and sent back to the queue
    assert batch_emulator.requeued == {"resize": 1}
    assert await node_of(batch_client, "t1") in idle  # it starts over on the idle node
    batch_emulator.advance(batch_emulator.config.allocation_delay)
    assert {n.id async for n in batch_client.list_nodes("pool-1")} == idle
    assert busy.isdisjoint(idle)


async def test_removenodes_removes_exactly_the_named_nodes_and_lowers_the_target(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=3, spot=1, fill="pack")
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["t1"])
    busy, idle = await busy_and_idle(batch_client)
    spot = {n.id async for n in batch_client.list_nodes("pool-1") if not n.is_dedicated}
    named = sorted(idle - spot)[:1] + sorted(spot & idle)
    await remove(batch_client, named, "taskcompletion")
    pool = await batch_client.get_pool("pool-1")
    assert pool.allocation_state == m.AllocationState.RESIZING
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (2, 0)
    batch_emulator.advance(batch_emulator.config.allocation_delay)
    pool = await batch_client.get_pool("pool-1")
    assert pool.allocation_state == m.AllocationState.STEADY
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (2, 0)
    left = {n.id async for n in batch_client.list_nodes("pool-1")}
    assert left == (busy | idle) - set(named)
    assert (await batch_client.get_task("job-1", "t1")).state == m.BatchTaskState.RUNNING
    assert batch_emulator.requeued == {}


async def test_a_busy_node_removed_at_task_completion_leaves_when_its_task_ends(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=2, fill="pack")
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["t1"])
    node = await node_of(batch_client, "t1")
    await remove(batch_client, [node], "taskcompletion")
    batch_emulator.advance(batch_emulator.config.allocation_delay)
    pool = await batch_client.get_pool("pool-1")
    assert pool.allocation_state == m.AllocationState.RESIZING  # waits for the task
    assert (await batch_client.get_task("job-1", "t1")).state == m.BatchTaskState.RUNNING
    batch_emulator.finish_task("job-1", "t1", exit_code=0)
    pool = await batch_client.get_pool("pool-1")
    assert (pool.allocation_state, pool.current_dedicated_nodes) == ("steady", 1)
    assert node not in {n.id async for n in batch_client.list_nodes("pool-1")}
    assert batch_emulator.requeued == {}


async def test_removenodes_requeues_by_default_and_counts_it(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=2, fill="pack")
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["t1"])
    node = await node_of(batch_client, "t1")
    await remove(batch_client, [node])
    task = await batch_client.get_task("job-1", "t1")
    assert task.execution_info.requeue_count == 1
    assert await node_of(batch_client, "t1") != node
    assert batch_emulator.requeued == {"removenodes": 1}


async def refused(client: BatchClient, nodes: list[str]) -> tuple[int, str]:
    with pytest.raises(HttpResponseError) as caught:
        await remove(client, nodes, "taskcompletion")
    return caught.value.status_code, str(caught.value.error.code)


async def test_removenodes_is_refused_as_batch_refuses_it(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=2)
    nodes = sorted([n.id async for n in batch_client.list_nodes("pool-1")])
    assert await refused(batch_client, [f"tvmps_{i}" for i in range(101)]) == (
        400,
        "InvalidPropertyValue",
    )
    assert await refused(batch_client, ["tvmps_nope"]) == (404, "NodeNotFound")
    too_short = m.BatchNodeRemoveOptions(node_ids=nodes[:1], resize_timeout=timedelta(minutes=1))
    with pytest.raises(HttpResponseError) as caught:
        await batch_client.begin_remove_nodes("pool-1", too_short, polling_interval=0)
    assert (caught.value.status_code, caught.value.error.code) == (400, "InvalidPropertyValue")
    await batch_client.begin_resize_pool(
        "pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=0
    )
    assert await refused(batch_client, nodes[:1]) == (409, "PoolBeingResized")
    batch_emulator.advance(batch_emulator.config.allocation_delay)
    await remove(batch_client, nodes[:1])
    with pytest.raises(ResourceExistsError):  # and a resize while nodes are removed
        await batch_client.begin_resize_pool(
            "pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0
        )
