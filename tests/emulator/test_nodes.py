"""Node health through the real SDK: unusable and start-task-failed nodes with their errors,
preempted Spot nodes, node counts of every state, and image pull failures of tasks."""

from __future__ import annotations

import pytest
from azure.batch import models as m
from azure.batch.aio import BatchClient

from tests.batch_emulator import BatchEmulator

from .helpers import IMAGE, add_tasks, job_options, pool_options, ready_pool, settle_pool
from .test_control import control

BROKEN = "state eq 'unusable' or state eq 'starttaskfailed'"
SELECT = ["id", "state", "errors", "startTaskInfo"]


def with_start_task(options: m.BatchPoolCreateOptions) -> m.BatchPoolCreateOptions:
    options.start_task = m.BatchStartTask(command_line="/bin/sh -c 'setup'")  # waits by default
    return options


async def counts_of(client: BatchClient, pool: str = "pool-1") -> m.BatchPoolNodeCounts:
    [counts] = [c async for c in client.list_pool_node_counts() if c.pool_id == pool]
    return counts


async def test_a_prefetch_image_that_cannot_be_pulled_leaves_every_node_unusable(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    batch_emulator.break_image("cartpole:1.0")
    await batch_client.create_pool(pool_options(dedicated=2, spot=1))
    settle_pool(batch_emulator)
    nodes = [n async for n in batch_client.list_nodes("pool-1")]
    assert {n.state for n in nodes} == {m.BatchNodeState.UNUSABLE}
    [error] = nodes[0].errors
    assert error.code == "ContainerInvalidImage"
    details = {d.name: d.value for d in error.error_details}
    assert details["ImageName"] == IMAGE
    assert "manifest unknown" in details["Message"]
    counts = await counts_of(batch_client)
    assert (counts.dedicated.unusable, counts.low_priority.unusable) == (2, 1)
    assert (counts.dedicated.idle, counts.dedicated.total) == (0, 2)
    # nothing is scheduled on an unusable node
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["a"], image="other/sim:1")
    assert (await batch_client.get_task("job-1", "a")).state == m.BatchTaskState.ACTIVE


async def test_the_broken_node_listing_honours_filter_and_select(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=3)
    bad = batch_emulator.make_unusable(
        "pool-1", code="DiskFull", message="The node's disk is full", count=1
    )
    listed = [n async for n in batch_client.list_nodes("pool-1", filter=BROKEN, select=SELECT)]
    assert [n.id for n in listed] == bad
    node = listed[0]
    assert (node.state, node.errors[0].code, node.errors[0].message) == (
        m.BatchNodeState.UNUSABLE,
        "DiskFull",
        "The node's disk is full",
    )
    assert (node.ip_address, node.vm_size, node.start_task_info) == (None, None, None)


async def test_an_unusable_node_gives_its_tasks_back_and_can_be_recovered(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=1)
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["a"])
    [node] = batch_emulator.make_unusable("pool-1", details={"Reason": "host fault"})
    task = await batch_client.get_task("job-1", "a")
    # Back in the queue; requeueCount counts only requeues a user asked for (a shrink).
    assert (task.state, task.execution_info.requeue_count) == (m.BatchTaskState.ACTIVE, 0)
    assert (await batch_client.get_node("pool-1", node)).errors[0].error_details[0].value == (
        "host fault"
    )
    batch_emulator.recover_node("pool-1", node)
    batch_emulator.advance(batch_emulator.config.node_start_delay)
    recovered = await batch_client.get_node("pool-1", node)
    assert (recovered.state, recovered.errors) == (m.BatchNodeState.RUNNING, None)


async def test_nodes_wait_for_the_start_task_and_fail_with_it(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_pool(with_start_task(pool_options(dedicated=1)))
    settle_pool(batch_emulator)
    [node] = [n async for n in batch_client.list_nodes("pool-1")]
    assert node.state == m.BatchNodeState.WAITING_FOR_START_TASK
    batch_emulator.advance(batch_emulator.config.start_task_duration)
    [node] = [n async for n in batch_client.list_nodes("pool-1")]
    assert (node.state, node.start_task_info.result, node.start_task_info.exit_code) == (
        m.BatchNodeState.IDLE,
        m.BatchTaskExecutionResult.SUCCESS,
        0,
    )

    batch_emulator.fail_start_tasks("pool-1", exit_code=3)
    await batch_client.begin_resize_pool(
        "pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=2)
    )
    settle_pool(batch_emulator)
    batch_emulator.advance(batch_emulator.config.start_task_duration)
    [failed] = [n async for n in batch_client.list_nodes("pool-1", filter=BROKEN, select=SELECT)]
    info = failed.start_task_info
    assert (failed.state, info.exit_code, info.failure_info.code) == (
        m.BatchNodeState.START_TASK_FAILED,
        3,
        "FailureExitCode",
    )
    counts = await counts_of(batch_client)
    assert (counts.dedicated.start_task_failed, counts.dedicated.idle) == (1, 1)


async def test_a_pool_without_a_start_task_cannot_fail_one(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=1)
    with pytest.raises(ValueError, match="no startTask"):
        batch_emulator.fail_start_tasks("pool-1")


async def test_preempted_spot_nodes_are_counted_and_listed_as_preempted(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=1, spot=2)
    [gone] = batch_emulator.preempt("pool-1", count=1)
    node = await batch_client.get_node("pool-1", gone)
    assert (node.state, node.is_dedicated, node.errors) == (m.BatchNodeState.PREEMPTED, False, None)
    counts = await counts_of(batch_client)
    assert (counts.low_priority.preempted, counts.low_priority.idle) == (1, 1)


async def test_node_counts_count_every_state(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=3, spot=2)
    batch_emulator.make_unusable("pool-1", count=1)
    batch_emulator.preempt("pool-1", count=1)
    await batch_client.begin_resize_pool(
        "pool-1", m.BatchPoolResizeOptions(target_dedicated_nodes=4, target_low_priority_nodes=2)
    )
    counts = await counts_of(batch_client)
    for tally in (counts.dedicated, counts.low_priority):
        states = {k: v for k, v in tally.items() if k != "total"}
        assert sum(states.values()) == tally.total
    assert (counts.dedicated.total, counts.dedicated.creating, counts.dedicated.unusable) == (
        4,
        1,
        1,
    )


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("ContainerInvalidImage", "manifest unknown"),
        ("ContainerInvalidRegistry", "unauthorized"),
        ("ContainerMiscError", "no space left"),
    ],
)
async def test_a_task_whose_image_cannot_be_pulled_fails_before_running(
    batch_client: BatchClient, batch_emulator: BatchEmulator, code: str, words: str
) -> None:
    batch_emulator.break_image("sim:broken", code=code)
    await ready_pool(batch_client, batch_emulator, dedicated=1)
    await batch_client.create_job(job_options())
    retried = m.BatchTaskConstraints(max_task_retry_count=3)
    await add_tasks(
        batch_client, "job-1", ["b"], image="registry.example/sim:broken", constraints=retried
    )
    task = await batch_client.get_task("job-1", "b")
    info = task.execution_info
    assert (task.state, info.result, info.exit_code, info.retry_count) == (
        m.BatchTaskState.COMPLETED,
        m.BatchTaskExecutionResult.FAILURE,
        None,
        0,  # a pre-processing error is not retried
    )
    assert task.previous_state == m.BatchTaskState.PREPARING  # the pull happens there
    failure = info.failure_info
    assert (failure.category, failure.code) == (m.BatchErrorSourceCategory.USER_ERROR, code)
    [detail] = failure.details
    assert detail.name == "Message"
    assert words in detail.value
    # the node is fine: the image was the task's, not the pool's
    assert {n.state async for n in batch_client.list_nodes("pool-1")} == {m.BatchNodeState.IDLE}


async def test_node_faults_through_the_control_api(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await control(batch_emulator, "POST", "broken-images", {"imageContains": "cartpole"})
    await batch_client.create_pool(with_start_task(pool_options("pool-2", dedicated=1)))
    await ready_pool(batch_client, batch_emulator, dedicated=2)
    assert {n.state async for n in batch_client.list_nodes("pool-2")} == {m.BatchNodeState.UNUSABLE}
    reply = await control(
        batch_emulator, "POST", "unusable", {"poolId": "pool-1", "count": 1, "code": "X"}
    )
    assert len(reply["nodeIds"]) == 1
    await control(batch_emulator, "POST", "start-task", {"poolId": "pool-2", "exitCode": 2})
    assert batch_emulator.state.world.health.failing_start_tasks == {"pool-2": 2}


async def test_node_counts_come_ten_pools_a_page(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    for n in range(12):
        await batch_client.create_pool(pool_options(f"pool-{n}", dedicated=0))
    batch_emulator.counters.reset()
    assert len([c async for c in batch_client.list_pool_node_counts(max_results=1000)]) == 12
    assert batch_emulator.counters.count("Pools_ListPoolNodeCounts") == 2
