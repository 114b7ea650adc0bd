"""Jobs through the real SDK: lifecycle, termination, asynchronous deletion, task counts."""

from __future__ import annotations

import datetime

import pytest
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from tests.batch_emulator import BatchEmulator

from .helpers import add_tasks, job_options, prepare, ready_pool


async def test_create_get_list_and_patch_job(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    metadata = [m.BatchMetadataItem(name="simfleet/spec", value="cartpole")]
    await batch_client.create_job(job_options(metadata=metadata, priority=10))
    job = await batch_client.get_job("job-1")
    assert (job.state, job.priority, job.pool_info.pool_id) == ("active", 10, "pool-1")
    assert (job.all_tasks_complete_mode, job.max_parallel_tasks) == ("noaction", -1)
    assert job.execution_info.pool_id == "pool-1"
    assert job.metadata[0].value == "cartpole"

    await batch_client.create_job(job_options("other-job"))
    listed = [
        j.id
        async for j in batch_client.list_jobs(filter="state eq 'active' and startswith(id,'job')")
    ]
    assert listed == ["job-1"]

    await batch_client.update_job(
        "job-1", m.BatchJobUpdateOptions(priority=50, max_parallel_tasks=1)
    )
    job = await batch_client.get_job("job-1", select=["id", "priority"])
    assert (job.id, job.priority, job.state) == ("job-1", 50, None)

    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.create_job(job_options("JOB-1"))
    assert caught.value.error.code == "JobExists"
    with pytest.raises(ResourceNotFoundError) as missing:
        await batch_client.get_job("nope")
    assert missing.value.error.code == "JobNotFound"


async def test_max_parallel_tasks_and_priority_shape_scheduling(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=1, slots=4)
    await batch_client.create_job(job_options("low", max_parallel_tasks=1))
    await add_tasks(batch_client, "low", ["l1", "l2"])
    await batch_client.create_job(job_options("high", priority=100))
    await add_tasks(batch_client, "high", ["h1", "h2", "h3"])
    prepare(batch_emulator)
    states = {t.id: t.state async for t in batch_client.list_tasks("low")}
    assert states == {"l1": "running", "l2": "active"}
    assert {t.state async for t in batch_client.list_tasks("high")} == {m.BatchTaskState.RUNNING}


async def test_terminating_a_job_ends_its_tasks(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=1)
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["running", "queued"])
    await batch_client.begin_terminate_job(
        "job-1",
        m._models.BatchJobTerminateOptions(termination_reason="SpecRemoved"),
        polling_interval=0,
    )
    job = await batch_client.get_job("job-1")
    assert job.state == m.BatchJobState.TERMINATING
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.create_task(
            "job-1", m.BatchTaskCreateOptions(id="late", command_line="x")
        )
    assert caught.value.error.code == "JobBeingTerminated"

    tasks = {t.id: t async for t in batch_client.list_tasks("job-1")}
    assert {t.state for t in tasks.values()} == {m.BatchTaskState.COMPLETED}
    assert tasks["running"].execution_info.failure_info.code == "TaskEnded"
    assert tasks["queued"].execution_info.exit_code is None
    assert [n.state async for n in batch_client.list_nodes("pool-1")] == [m.BatchNodeState.IDLE]

    batch_emulator.advance(batch_emulator.config.job_terminate_delay)
    job = await batch_client.get_job("job-1")
    assert job.state == m.BatchJobState.COMPLETED
    assert job.execution_info.termination_reason == "SpecRemoved"
    # azure-batch 15.1.0 cannot send a terminate without a non-empty options body (an
    # empty model is falsy and it then fails building the content-type header).
    options = m._models.BatchJobTerminateOptions(termination_reason="again")
    with pytest.raises(ResourceExistsError) as done:
        await batch_client.begin_terminate_job("job-1", options)
    assert done.value.error.code == "JobCompleted"


async def test_all_tasks_complete_terminates_the_job(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=1)
    await batch_client.create_job(
        job_options(all_tasks_complete_mode=m.BatchAllTasksCompleteMode.TERMINATE_JOB)
    )
    await add_tasks(batch_client, "job-1", ["only"])
    batch_emulator.finish_task("job-1", "only")
    batch_emulator.advance(batch_emulator.config.job_terminate_delay)
    job = await batch_client.get_job("job-1")
    assert (job.state, job.execution_info.termination_reason) == ("completed", "AllTasksComplete")


async def test_job_wall_clock_limit(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    limit = m.BatchJobConstraints(max_wall_clock_time=datetime.timedelta(hours=1))
    await batch_client.create_job(job_options(constraints=limit))
    batch_emulator.advance(3600 + batch_emulator.config.job_terminate_delay)
    job = await batch_client.get_job("job-1")
    assert (job.state, job.execution_info.termination_reason) == (
        "completed",
        "MaxWallClockTimeExpiry",
    )


async def test_job_deletion_is_asynchronous(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=1)
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["t"])
    await batch_client.begin_delete_job("job-1", polling_interval=0)

    job = await batch_client.get_job("job-1")
    assert job.state == m.BatchJobState.DELETING
    for attempt in (
        batch_client.create_job(job_options()),
        batch_client.create_task("job-1", m.BatchTaskCreateOptions(id="t2", command_line="x")),
        batch_client.begin_delete_job("job-1"),
    ):
        with pytest.raises(ResourceExistsError) as caught:
            await attempt
        assert caught.value.error.code == "JobBeingDeleted"
    assert [n.state async for n in batch_client.list_nodes("pool-1")] == [m.BatchNodeState.IDLE]

    batch_emulator.advance(batch_emulator.config.deletion_delay)
    with pytest.raises(ResourceNotFoundError):
        await batch_client.get_job("job-1")
    await batch_client.create_job(job_options())


async def test_delete_poller_completes_as_emulator_time_runs(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_job(job_options())
    batch_emulator.set_speed(500)  # 5 emulator seconds pass in 10 ms
    poller = await batch_client.begin_delete_job("job-1", polling_interval=0.02)
    await poller.result()
    assert poller.status() == "Succeeded"


async def test_task_counts(batch_client: BatchClient, batch_emulator: BatchEmulator) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=2, slots=2)
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", [f"t{i}" for i in range(6)])
    batch_emulator.finish_task("job-1", "t0")
    batch_emulator.finish_task("job-1", "t1", exit_code=9)
    result = await batch_client.get_job_task_counts("job-1")
    counts = result.task_counts
    assert (counts.active, counts.running, counts.completed, counts.succeeded, counts.failed) == (
        0,
        4,
        2,
        1,
        1,
    )
    assert result.task_slot_counts.running == 4
