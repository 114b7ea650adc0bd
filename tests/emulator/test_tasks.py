"""Tasks through the real SDK: bulk adds, listing, endings, retries, preemption, files."""

from __future__ import annotations

import datetime

import pytest
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.batch_emulator import BatchEmulator, TaskRule
from tests.batch_emulator.fixtures import EmulatorFactory, client_for

from .helpers import add_tasks, job_options, prepare, ready_pool, task_options


async def _job_on_ready_pool(client: BatchClient, emulator: BatchEmulator, **pool: int) -> None:
    await ready_pool(client, emulator, **pool)
    await client.create_job(job_options())


async def test_250_tasks_in_chunks_of_100_then_filter_select_and_pages(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _job_on_ready_pool(batch_client, batch_emulator, dedicated=2, slots=5)
    ids = [f"sim-{i:03d}" for i in range(250)]
    for start in range(0, 250, 100):
        await add_tasks(batch_client, "job-1", ids[start : start + 100])
    assert batch_emulator.counters.count("Tasks_CreateTaskCollection", 200) == 3
    prepare(batch_emulator)

    # FIFO: the first 10 fill 2 nodes x 5 slots.
    running = [
        t.id
        async for t in batch_client.list_tasks(
            "job-1", filter="state eq 'running'", select=["id", "state"]
        )
    ]
    assert running == ids[:10]

    batch_emulator.counters.reset()
    pending = [
        t
        async for t in batch_client.list_tasks(
            "job-1",
            filter="state ne 'completed' and startswith(id,'sim-1')",
            select=["id"],
            max_results=40,
        )
    ]
    assert [t.id for t in pending] == [i for i in ids if i.startswith("sim-1")]
    assert all(t.state is None and t.command_line is None for t in pending)  # $select
    assert batch_emulator.counters.count("Tasks_ListTasks", 200) == 3  # 100 items, 40 a page

    either = [
        t.id
        async for t in batch_client.list_tasks(
            "job-1",
            filter="(startswith(id,'sim-000') or startswith(id,'sim-249')) and state eq 'active'",
        )
    ]
    assert either == ["sim-249"]

    queued = [
        t.id
        async for t in batch_client.list_tasks(
            "job-1", filter="state eq 'active' or state eq 'preparing'", select=["id"]
        )
    ]
    assert queued == ids[10:]
    with pytest.raises(HttpResponseError) as ordered:  # Batch: only eq and ne on a state
        _ = [t async for t in batch_client.list_tasks("job-1", filter="state lt 'running'")]
    assert ordered.value.error.code == "InvalidQueryParameterValue"

    counts = await batch_client.get_job_task_counts("job-1")
    assert (counts.task_counts.active, counts.task_counts.running) == (240, 10)


async def test_task_ids_are_unique_without_regard_to_case(batch_client: BatchClient) -> None:
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["Sim-A"])
    result = await batch_client.create_task_collection(
        "job-1", m.BatchTaskGroup(task_values=[task_options("sim-a"), task_options("sim-b")])
    )
    statuses = {
        r.task_id: (r.status, r.error.code if r.error else None) for r in result.result_values
    }
    assert statuses == {"sim-a": ("clienterror", "TaskExists"), "sim-b": ("success", None)}
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.create_task("job-1", task_options("SIM-B"))
    assert caught.value.error.code == "TaskExists"
    assert (await batch_client.get_task("job-1", "sim-A")).id == "Sim-A"


async def test_more_than_100_tasks_is_rejected(batch_client: BatchClient) -> None:
    await batch_client.create_job(job_options())
    group = m.BatchTaskGroup(task_values=[task_options(f"t{i}") for i in range(101)])
    with pytest.raises(HttpResponseError) as caught:
        await batch_client.create_task_collection("job-1", group)
    assert (caught.value.status_code, caught.value.error.code) == (413, "RequestBodyTooLarge")


async def test_bodies_over_1_mib_are_413_and_the_sdk_halves_its_chunks(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_job(job_options())
    bulky = [m.EnvironmentSetting(name="PAYLOAD", value="x" * 150_000)]
    tasks = [task_options(f"t{i}", environment_settings=bulky) for i in range(10)]
    result = await batch_client.create_tasks("job-1", tasks)  # ~1.5 MB, then 2 x ~750 KB
    assert len(result.result_values) == 10
    assert batch_emulator.counters.by_operation()["Tasks_CreateTaskCollection"] == {200: 2, 413: 1}


async def test_sdk_create_tasks_helper_adds_everything(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_job(job_options())
    result = await batch_client.create_tasks("job-1", [task_options(f"t{i}") for i in range(150)])
    assert len(result.result_values) == 150
    assert batch_emulator.counters.count("Tasks_CreateTaskCollection") == 2


async def test_finished_tasks_report_execution_info(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _job_on_ready_pool(batch_client, batch_emulator, dedicated=2)
    await add_tasks(batch_client, "job-1", ["ok", "bad", "queued"])
    prepare(batch_emulator, pull=False)
    batch_emulator.advance(3)
    batch_emulator.finish_task("job-1", "ok", exit_code=0, stdout="episode reward 200\n")
    batch_emulator.finish_task("job-1", "bad", exit_code=2, stderr="Traceback ...\n")

    ok = await batch_client.get_task("job-1", "ok")
    assert ok.state == m.BatchTaskState.COMPLETED
    info = ok.execution_info
    assert (info.exit_code, info.result, info.failure_info) == (0, "success", None)
    assert info.end_time - info.start_time == datetime.timedelta(seconds=3)

    bad = (await batch_client.get_task("job-1", "bad")).execution_info
    assert (bad.exit_code, bad.result) == (2, "failure")
    assert (bad.failure_info.category, bad.failure_info.code) == ("usererror", "FailureExitCode")

    # Freed slots go to the next task in line, which prepares first and has no start
    # time yet; Batch counts it as running.
    queued = await batch_client.get_task("job-1", "queued")
    assert queued.state == m.BatchTaskState.PREPARING
    assert queued.execution_info.start_time is None
    counts = (await batch_client.get_job_task_counts("job-1")).task_counts
    assert (counts.completed, counts.succeeded, counts.failed, counts.running) == (2, 1, 1, 1)
    with pytest.raises(ValueError, match="not running"):
        batch_emulator.finish_task("job-1", "ok")


async def test_retries_follow_max_task_retry_count(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _job_on_ready_pool(batch_client, batch_emulator, dedicated=1)
    constraints = m.BatchTaskConstraints(max_task_retry_count=1)
    await batch_client.create_task("job-1", task_options("flaky", constraints=constraints))
    prepare(batch_emulator)
    batch_emulator.finish_task("job-1", "flaky", exit_code=1)
    prepare(batch_emulator)
    task = await batch_client.get_task("job-1", "flaky")
    assert (task.state, task.execution_info.retry_count) == ("running", 1)
    batch_emulator.finish_task("job-1", "flaky", exit_code=1)
    task = await batch_client.get_task("job-1", "flaky")
    assert (task.state, task.execution_info.result, task.execution_info.retry_count) == (
        "completed",
        "failure",
        1,
    )


async def test_terminate_reactivate_delete(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _job_on_ready_pool(batch_client, batch_emulator, dedicated=1)
    await add_tasks(batch_client, "job-1", ["a", "b"])
    prepare(batch_emulator)

    await batch_client.terminate_task("job-1", "a")
    a = await batch_client.get_task("job-1", "a")
    assert a.state == m.BatchTaskState.COMPLETED
    assert (a.execution_info.failure_info.code, a.execution_info.result) == ("TaskEnded", "failure")
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.terminate_task("job-1", "a")
    assert caught.value.error.code == "TaskCompleted"

    prepare(batch_emulator)  # b took a's slot
    assert (await batch_client.get_task("job-1", "b")).state == m.BatchTaskState.RUNNING
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.reactivate_task("job-1", "b")
    assert caught.value.error.code == "TaskNotCompleted"

    batch_emulator.finish_task("job-1", "b")
    with pytest.raises(ResourceExistsError) as caught:
        await batch_client.reactivate_task("job-1", "b")
    assert caught.value.error.code == "TaskSucceeded"

    await batch_client.reactivate_task("job-1", "a")
    prepare(batch_emulator)
    a = await batch_client.get_task("job-1", "a")
    assert (a.state, a.execution_info.retry_count) == ("running", 0)

    await batch_client.delete_task("job-1", "a")
    with pytest.raises(ResourceNotFoundError) as missing:
        await batch_client.get_task("job-1", "a")
    assert missing.value.error.code == "TaskNotFound"
    assert [n.state async for n in batch_client.list_nodes("pool-1")] == [m.BatchNodeState.IDLE]


async def test_task_files_with_byte_ranges(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _job_on_ready_pool(batch_client, batch_emulator, dedicated=1)
    await add_tasks(batch_client, "job-1", ["sim", "waiting"])
    batch_emulator.write_output("job-1", "sim", stdout="0123456789")
    batch_emulator.put_task_file("job-1", "sim", "wd/result.json", b'{"reward": 1}')

    async def read(path: str, ocp_range: str | None = None) -> bytes:
        stream = await batch_client.download_task_file("job-1", "sim", path, ocp_range=ocp_range)
        return b"".join([chunk async for chunk in stream])

    assert await read("stdout.txt") == b"0123456789"
    assert await read("stdout.txt", "bytes=2-4") == b"234"
    assert await read("stdout.txt", "bytes=7-") == b"789"
    assert await read("stdout.txt", "bytes=-2") == b"89"
    assert await read("wd/result.json") == b'{"reward": 1}'
    with pytest.raises(HttpResponseError) as caught:
        await read("stdout.txt", "bytes=50-60")
    # The SDK reads error bodies of streamed downloads too late to parse them: status only.
    assert caught.value.status_code == 416
    with pytest.raises(ResourceNotFoundError):
        await read("nope.txt")

    props = await batch_client.get_task_file_properties("job-1", "sim", "stdout.txt")
    assert (props.content_length, props.is_directory) == (10, False)

    top = sorted([f.name async for f in batch_client.list_task_files("job-1", "sim")])
    assert top == ["stderr.txt", "stdout.txt", "wd"]
    deep = {f.name: f async for f in batch_client.list_task_files("job-1", "sim", recursive=True)}
    assert deep["wd/result.json"].properties.content_length == 13
    assert deep["wd"].is_directory
    std = [
        f.name
        async for f in batch_client.list_task_files("job-1", "sim", filter="startswith(name,'std')")
    ]
    assert sorted(std) == ["stderr.txt", "stdout.txt"]

    await batch_client.delete_task_file("job-1", "sim", "wd/result.json")
    with pytest.raises(ResourceNotFoundError):
        await read("wd/result.json")
    with pytest.raises(ResourceExistsError) as unavailable:  # never ran: no files yet
        [f async for f in batch_client.list_task_files("job-1", "waiting")]
    assert unavailable.value.error.code == "TaskFilesUnavailable"


async def test_preempted_spot_tasks_requeue_and_run_elsewhere(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _job_on_ready_pool(batch_client, batch_emulator, dedicated=1, spot=1)
    await add_tasks(batch_client, "job-1", ["a", "b"])
    [spot_node] = [n.id async for n in batch_client.list_nodes("pool-1") if not n.is_dedicated]
    [on_spot] = [
        t.id
        async for t in batch_client.list_tasks("job-1")
        if t.node_info and t.node_info.node_id == spot_node
    ]
    assert batch_emulator.preempt("pool-1") == [spot_node]

    task = await batch_client.get_task("job-1", on_spot)
    # requeueCount counts requeues a user asked for (a shrink), not the service's own.
    assert (task.state, task.execution_info.requeue_count) == ("active", 0)
    assert task.execution_info.last_requeue_time is None
    node = await batch_client.get_node("pool-1", spot_node)
    assert node.state == m.BatchNodeState.PREEMPTED

    other = "a" if on_spot == "b" else "b"
    batch_emulator.finish_task("job-1", other)
    prepare(batch_emulator)
    task = await batch_client.get_task("job-1", on_spot)
    assert task.state == m.BatchTaskState.RUNNING
    assert task.node_info.node_id != spot_node
    with pytest.raises(ValueError, match="Spot"):
        batch_emulator.preempt("pool-1", node_ids=[task.node_info.node_id])


async def test_max_wall_clock_time_fails_the_task(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _job_on_ready_pool(batch_client, batch_emulator, dedicated=1)
    limit = m.BatchTaskConstraints(max_wall_clock_time=datetime.timedelta(minutes=5))
    await batch_client.create_task("job-1", task_options("slow", constraints=limit))
    prepare(batch_emulator, pull=False)  # the limit counts from `running`
    batch_emulator.advance(299)
    assert (await batch_client.get_task("job-1", "slow")).state == m.BatchTaskState.RUNNING
    batch_emulator.advance(1)
    task = await batch_client.get_task("job-1", "slow")
    assert task.state == m.BatchTaskState.COMPLETED
    info = task.execution_info
    assert (info.result, info.failure_info.category, info.failure_info.code) == (
        "failure",
        "usererror",
        "TaskEnded",
    )
    assert info.end_time - info.start_time == datetime.timedelta(minutes=5)
    assert task.constraints.max_wall_clock_time == datetime.timedelta(minutes=5)


async def test_image_rules_decide_endings(make_batch_emulator: EmulatorFactory) -> None:
    emulator = await make_batch_emulator()
    emulator.add_rule(TaskRule(image_contains="crash", after=30, exit_code=1, stderr="segfault\n"))
    emulator.add_rule(
        TaskRule(
            image_contains=":broken",
            failure_code="ContainerInvalidImage",
            failure_message="manifest unknown",
        )
    )
    emulator.add_rule(TaskRule(image_contains="quick", after=5, exit_code=0, stdout="done\n"))
    async with client_for(emulator) as client:
        await _job_on_ready_pool(client, emulator, dedicated=3)
        await client.create_task("job-1", task_options("c", image="sim/crash:1"))
        await client.create_task("job-1", task_options("b", image="sim/x:broken"))
        await client.create_task("job-1", task_options("q", image="sim/quick:1"))
        assert (await client.get_task("job-1", "b")).state == m.BatchTaskState.PREPARING
        prepare(emulator)  # the pull fails while preparing: it never runs

        broken = (await client.get_task("job-1", "b")).execution_info
        assert (broken.result, broken.exit_code) == ("failure", None)
        assert (broken.failure_info.code, broken.failure_info.message) == (
            "ContainerInvalidImage",
            "manifest unknown",
        )

        emulator.advance(5)
        assert (await client.get_task("job-1", "q")).execution_info.result == "success"
        assert (await client.get_task("job-1", "c")).state == m.BatchTaskState.RUNNING
        emulator.advance(25)
        crashed = (await client.get_task("job-1", "c")).execution_info
        assert (crashed.exit_code, crashed.result) == (1, "failure")
        stream = await client.download_task_file("job-1", "c", "stderr.txt")
        assert b"".join([chunk async for chunk in stream]) == b"segfault\n"


async def test_replace_task_changes_only_constraints(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["t"])
    task = await batch_client.get_task("job-1", "t")
    task.constraints = m.BatchTaskConstraints(max_task_retry_count=3)
    await batch_client.replace_task("job-1", "t", m.BatchTask(constraints=task.constraints))
    assert (await batch_client.get_task("job-1", "t")).constraints.max_task_retry_count == 3


async def _files(client: BatchClient, task_id: str) -> list[str]:
    return sorted([f.name async for f in client.list_task_files("job-1", task_id)])


async def test_task_files_last_for_the_retention_time_after_the_task_ends(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _job_on_ready_pool(batch_client, batch_emulator, dedicated=1, slots=2)
    hour = m.BatchTaskConstraints(retention_time=datetime.timedelta(hours=1))
    await batch_client.create_task("job-1", task_options("short", constraints=hour))
    await batch_client.create_task("job-1", task_options("default"))
    prepare(batch_emulator)
    batch_emulator.finish_task("job-1", "short", stderr="boom\n")
    batch_emulator.finish_task("job-1", "default", stderr="boom\n")
    batch_emulator.advance(3599)
    assert await _files(batch_client, "short") == ["stderr.txt", "stdout.txt", "wd"]
    batch_emulator.advance(1)
    with pytest.raises(ResourceExistsError) as caught:
        await _files(batch_client, "short")
    assert caught.value.error.code == "TaskFilesUnavailable"
    batch_emulator.advance(7 * 24 * 3600 - 3600 - 1)  # the default: seven days
    assert await _files(batch_client, "default") == ["stderr.txt", "stdout.txt", "wd"]
    batch_emulator.advance(1)
    with pytest.raises(ResourceExistsError):
        await _files(batch_client, "default")


async def test_task_files_go_with_their_node(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _job_on_ready_pool(batch_client, batch_emulator, dedicated=1, spot=1)
    await add_tasks(batch_client, "job-1", ["a", "b"])
    prepare(batch_emulator)
    [spot_node] = [n.id async for n in batch_client.list_nodes("pool-1") if not n.is_dedicated]
    [on_spot] = [
        t.id
        async for t in batch_client.list_tasks("job-1")
        if t.node_info and t.node_info.node_id == spot_node
    ]
    on_dedicated = "a" if on_spot == "b" else "b"
    batch_emulator.write_output("job-1", on_spot, stdout="first run\n")
    batch_emulator.preempt("pool-1")
    with pytest.raises(ResourceExistsError) as reclaimed:  # requeued, not yet running again
        await _files(batch_client, on_spot)
    assert reclaimed.value.error.code == "TaskFilesUnavailable"

    batch_emulator.finish_task("job-1", on_dedicated, stdout="done\n")
    prepare(batch_emulator)  # the requeued task runs on the dedicated node: new files
    stream = await batch_client.download_task_file("job-1", on_spot, "stdout.txt")
    assert b"".join([chunk async for chunk in stream]) == b""

    batch_emulator.finish_task("job-1", on_spot)
    await batch_client.begin_delete_pool("pool-1", polling_interval=0)
    batch_emulator.advance(batch_emulator.config.deletion_delay)
    with pytest.raises(ResourceNotFoundError) as gone:
        await _files(batch_client, on_dedicated)
    assert gone.value.error.code == "NodeNotFound"
