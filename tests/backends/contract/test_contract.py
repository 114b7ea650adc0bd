"""The behavioural contract of a backend, run against the fake, local and Azure backends.

Every backend, and the fake that most daemon and property tests run on, must behave as
Batch does for what the planner relies on; running one suite against all three keeps the
fake from drifting away from the real ones. The contract:

Pools
    A created pool is observed, owned, with its configuration and targets, and gets its
    nodes; creating it again changes nothing; a resize sets the targets and the nodes
    follow, starting tasks that waited; a shrink removes idle nodes only (the running
    simulators keep their nodes and are never requeued); resizing a pool that does not exist is a
    permanent error; a deleted pool goes away, no simulator runs on it any more (Batch
    requeues them, the local backend stops them), and deleting it again is harmless.
Jobs
    A created job is observed, owned, active, on its pool; creating it again (even naming
    another pool) changes nothing; a deleted job goes away with its tasks (while it is
    still listed it is ``deleting``), and deleting it again is harmless.
Tasks
    Tasks added in one request, one or hundreds, are each observed exactly once with the
    slot, revision, attempt and retry counts they were given; adding one again changes
    nothing; adding to a job that does not exist is a permanent error. A task waits
    ``pending`` while its pool has no free slot (or no pool exists yet) and the waiting
    ones start oldest first as slots free. A task that
    exits by itself is ``exited`` with its code, its reason (0 succeeded, else failed)
    and the last lines of its stderr. A stopped task, running or pending, ends as
    ``stopped``; stopping it again, or a task that does not exist, is harmless. An
    exited task can be deleted and is then gone.
Ownership
    Pools and jobs simfleet did not create are observed as not owned, and nothing aimed
    at simfleet's own objects changes them (backends that can hold such objects).
Output
    ``read_output`` reads a byte range of stdout or stderr: from an offset, from the end
    with a negative offset, a window, clamped to the file; an unknown task is a
    permanent error.
Notifications and metrics
    ``on_change`` is called when a simulator ends by itself, by backends that can notice
    (never by those that cannot); ``request_counts`` maps (operation, outcome) to a
    positive count, and is empty for backends that send no requests.
Snapshots
    ``observe`` returns a value: a snapshot taken before an action does not change after
    it, and every listed task belongs to the job it is listed under.
Closing
    ``close()`` leaves the simulators running for the next controller;
    ``close(stop_simulators=True)`` ends them where they are this controller's processes
    (local, fake) and leaves them where they are not (Azure).
Errors
    Every failure leaves as a :class:`~controller.backends.BackendError` subclass.

Scoped observation and concurrent ``execute`` calls are in
``test_scoped_and_concurrent.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from controller.backends import Backend, OutputStream, PermanentBackendError
from controller.planner import (
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    ExitReason,
    JobState,
    NewTask,
    NodeStates,
    Observed,
    PoolConfig,
    PoolState,
    ResizePool,
    ShrinkPool,
    SimulatorState,
    StopReason,
    StopTask,
)

from .conftest import JOB, POOL, REVISION, Driver, find, new_tasks, pool_spec, task_id


def steady(observed: Observed, name: str, dedicated: int, spot: int) -> bool:
    """The pool is there, done resizing, with these nodes."""
    pool = observed.pools.get(name)
    return (
        pool is not None
        and pool.state is PoolState.STEADY
        and (pool.current_dedicated, pool.current_spot) == (dedicated, spot)
    )


def test_it_is_a_backend(driver: Driver) -> None:
    assert isinstance(driver.backend, Backend)
    assert driver.backend.name == driver.name


class TestPools:
    async def test_a_created_pool_is_observed_owned_and_gets_its_nodes(
        self, driver: Driver
    ) -> None:
        await driver.backend.execute(CreatePool(POOL, pool_spec(slots=3), 2, 0))
        observed = await driver.eventually(lambda o: steady(o, POOL, 2, 0), "two nodes")
        pool = observed.pools[POOL]
        assert pool.owned
        assert pool.config == PoolConfig.of(pool_spec(slots=3))
        assert (pool.target_dedicated, pool.target_spot) == (2, 0)

    async def test_every_backend_counts_a_pools_nodes_by_state(self, driver: Driver) -> None:
        await driver.backend.execute(CreatePool(POOL, pool_spec(), 1, 1))

        def counted(observed: Observed) -> bool:
            nodes = observed.pools[POOL].nodes if POOL in observed.pools else None
            return nodes is not None and nodes.usable == 2

        pool = (await driver.eventually(counted, "two usable nodes")).pools[POOL]
        assert pool.nodes == NodeStates(usable=2)
        assert (pool.usable, pool.node_errors) == (2, ())

    async def test_creating_an_existing_pool_changes_nothing(self, driver: Driver) -> None:
        await driver.backend.execute(CreatePool(POOL, pool_spec(slots=2), 1, 0))
        await driver.backend.execute(CreatePool(POOL, pool_spec(slots=4), 3, 1))
        pool = (await driver.backend.observe()).pools[POOL]
        assert pool.config.task_slots_per_node == 2
        assert (pool.target_dedicated, pool.target_spot) == (1, 0)

    async def test_a_resize_sets_the_targets_and_the_nodes_follow(self, driver: Driver) -> None:
        await driver.backend.execute(CreatePool(POOL, pool_spec(), 1, 0))
        await driver.eventually(lambda o: steady(o, POOL, 1, 0), "one node")
        await driver.backend.execute(ResizePool(POOL, 0, 2, 1, 0))
        observed = await driver.eventually(
            lambda o: steady(o, POOL, 0, 2), "two spot nodes and no dedicated one"
        )
        assert (observed.pools[POOL].target_dedicated, observed.pools[POOL].target_spot) == (0, 2)

    async def test_a_shrink_removes_idle_nodes_only(self, driver: Driver) -> None:
        await driver.pool_and_job(slots=2, nodes=3)
        await driver.eventually(lambda o: steady(o, POOL, 3, 0), "three nodes")
        await driver.add(0, 1, 2)  # packed: two nodes busy, one idle
        before = await driver.running(0, 1, 2)
        await driver.backend.execute(ShrinkPool(POOL, 0, 0, 3, 0, 3, 0))
        after = await driver.eventually(lambda o: steady(o, POOL, 2, 0), "the idle node to go")
        assert (after.pools[POOL].target_dedicated, after.pools[POOL].target_spot) == (2, 0)
        for slot in (0, 1, 2):  # never stopped, requeued or started again
            task = find(after, slot)
            assert task.state is SimulatorState.RUNNING
            assert task.started_at == find(before, slot).started_at
            assert task.requeues == 0

    async def test_resizing_a_pool_that_does_not_exist_is_permanent(self, driver: Driver) -> None:
        with pytest.raises(PermanentBackendError) as caught:
            await driver.backend.execute(ResizePool("nope", 1, 0))
        assert caught.value.code == "PoolNotFound"

    async def test_a_deleted_pool_goes_away_and_deleting_again_is_harmless(
        self, driver: Driver
    ) -> None:
        await driver.backend.execute(CreatePool(POOL, pool_spec(), 1, 0))
        await driver.backend.observe()
        await driver.backend.execute(DeletePool(POOL))
        await driver.eventually(lambda o: POOL not in o.pools, "the pool to go")
        await driver.backend.execute(DeletePool(POOL))

    async def test_no_simulator_runs_on_a_deleted_pool(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.add(0, 1)
        await driver.running(0, 1)
        await driver.backend.execute(DeletePool(POOL))
        observed = await driver.eventually(lambda o: POOL not in o.pools, "the pool to go")
        assert [t for t in observed.jobs[JOB].tasks if t.state is SimulatorState.RUNNING] == []


class TestJobs:
    async def test_a_created_job_is_observed_owned_active_and_empty(self, driver: Driver) -> None:
        await driver.backend.execute(CreateJob(JOB, POOL))
        job = (await driver.backend.observe()).jobs[JOB]
        assert (job.name, job.pool, job.owned, job.state) == (JOB, POOL, True, JobState.ACTIVE)
        assert job.tasks == ()

    async def test_creating_an_existing_job_changes_nothing(self, driver: Driver) -> None:
        await driver.backend.execute(CreateJob(JOB, POOL))
        await driver.backend.execute(CreateJob(JOB, "elsewhere"))
        job = (await driver.backend.observe()).jobs[JOB]
        assert (job.pool, job.state) == (POOL, JobState.ACTIVE)

    async def test_a_deleted_job_goes_away_with_its_tasks(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.add(0, 1, 2)  # two run, one waits
        await driver.running(0, 1)
        await driver.backend.execute(DeleteJob(JOB))
        seen: list[JobState] = []

        def gone(observed: Observed) -> bool:
            if JOB in observed.jobs:
                seen.append(observed.jobs[JOB].state)
            return JOB not in observed.jobs

        await driver.eventually(gone, "the job to go")
        assert set(seen) <= {JobState.DELETING}
        await driver.backend.execute(DeleteJob(JOB))
        with pytest.raises(PermanentBackendError):
            await driver.backend.read_output(JOB, task_id(0), OutputStream.STDOUT)


class TestAddTasks:
    async def test_one_task_is_observed_with_what_it_was_given_and_runs(
        self, driver: Driver
    ) -> None:
        await driver.pool_and_job()
        new = NewTask(task_id(1, attempt=2), 1, REVISION, 2, restarts=5, failures=1)
        await driver.backend.execute(AddTasks(JOB, driver.template, (new,)))
        (task,) = (await driver.backend.observe()).jobs[JOB].tasks
        assert (task.id, task.slot, task.revision, task.attempt) == (new.id, 1, REVISION, 2)
        assert (task.restarts, task.failures) == (5, 1)
        assert task.state in (SimulatorState.PENDING, SimulatorState.RUNNING)
        assert task.exit is None
        observed = await driver.eventually(
            lambda o: o.jobs[JOB].tasks[0].state is SimulatorState.RUNNING, "the task to run"
        )
        assert observed.jobs[JOB].tasks[0].started_at is not None

    async def test_hundreds_in_one_request_are_each_observed_once(self, driver: Driver) -> None:
        await driver.pool_and_job(nodes=0)  # nothing can start: no process, no node
        await driver.add(*range(250))
        tasks = (await driver.backend.observe()).jobs[JOB].tasks
        assert sorted(t.id for t in tasks) == sorted(task_id(s) for s in range(250))
        assert {t.state for t in tasks} == {SimulatorState.PENDING}

    async def test_adding_a_task_again_changes_nothing(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.add(0)
        before = find(await driver.running(0), 0)
        await driver.add(0)
        tasks = (await driver.backend.observe()).jobs[JOB].tasks
        assert [t.id for t in tasks] == [before.id]
        assert (tasks[0].state, tasks[0].started_at) == (before.state, before.started_at)

    async def test_adding_to_a_job_that_does_not_exist_is_permanent(self, driver: Driver) -> None:
        with pytest.raises(PermanentBackendError) as caught:
            await driver.add(0, job="nope")
        assert caught.value.code == "JobNotFound"


class TestSlots:
    async def test_tasks_beyond_the_free_slots_wait_and_start_in_order_as_slots_free(
        self, driver: Driver
    ) -> None:
        await driver.pool_and_job(slots=2)
        await driver.add(0, 1, 2, 3)
        observed = await driver.running(0, 1)
        assert [find(observed, s).state for s in (2, 3)] == [SimulatorState.PENDING] * 2
        await driver.finish(JOB, task_id(0), exit_code=0)
        observed = await driver.running(1, 2)
        assert find(observed, 3).state is SimulatorState.PENDING

    async def test_a_pool_resized_up_starts_waiting_tasks(self, driver: Driver) -> None:
        await driver.pool_and_job(slots=1)
        await driver.add(0, 1)
        observed = await driver.running(0)
        assert find(observed, 1).state is SimulatorState.PENDING
        await driver.backend.execute(ResizePool(POOL, 2, 0, 1, 0))
        await driver.running(0, 1)

    async def test_tasks_of_a_job_whose_pool_does_not_exist_wait_for_it(
        self, driver: Driver
    ) -> None:
        await driver.backend.execute(CreateJob(JOB, POOL))
        await driver.add(0)
        await driver.settle()
        assert find(await driver.backend.observe(), 0).state is SimulatorState.PENDING
        await driver.backend.execute(CreatePool(POOL, pool_spec(), 1, 0))
        await driver.running(0)


class TestExits:
    async def test_an_exit_keeps_its_code_reason_and_stderr_tail(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.add(0, 1)
        await driver.running(0, 1)
        stderr = "".join(f"line{i}\n" for i in range(1, 16))
        await driver.finish(JOB, task_id(0), exit_code=3, stderr=stderr)
        await driver.finish(JOB, task_id(1), exit_code=0)
        observed = await driver.exited(0, 1)
        failed, succeeded = find(observed, 0), find(observed, 1)
        assert failed.exit is not None
        assert (failed.exit.reason, failed.exit.exit_code) == (ExitReason.FAILED, 3)
        assert failed.exit.stderr_tail == "\n".join(f"line{i}" for i in range(6, 16))
        assert failed.exited_at is not None
        assert succeeded.exit is not None
        assert (succeeded.exit.reason, succeeded.exit.exit_code) == (ExitReason.SUCCEEDED, 0)


class TestStop:
    async def test_a_stopped_running_task_ends_as_stopped(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.add(0)
        await driver.running(0)
        await driver.backend.execute(StopTask(JOB, task_id(0), 0, StopReason.SCALE_DOWN))
        task = find(await driver.exited(0), 0)
        assert task.exit is not None
        assert task.exit.reason is ExitReason.STOPPED

    async def test_a_stopped_pending_task_ends_as_stopped(self, driver: Driver) -> None:
        await driver.pool_and_job(nodes=0)
        await driver.add(0)
        await driver.backend.execute(StopTask(JOB, task_id(0), 0, StopReason.ROLLOUT))
        task = find(await driver.exited(0), 0)
        assert task.exit is not None
        assert task.exit.reason is ExitReason.STOPPED

    async def test_stopping_again_or_what_does_not_exist_is_harmless(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.add(0)
        await driver.running(0)
        stop = StopTask(JOB, task_id(0), 0, StopReason.SCALE_DOWN)
        await driver.backend.execute(stop)
        await driver.backend.execute(stop)
        before = find(await driver.exited(0), 0)
        await driver.backend.execute(stop)
        await driver.backend.execute(StopTask(JOB, task_id(7), 7, StopReason.SCALE_DOWN))
        await driver.backend.execute(StopTask("nope", task_id(0, job="nope"), 0, stop.reason))
        assert find(await driver.backend.observe(), 0) == before


class TestDeleteTask:
    async def test_an_exited_task_is_deleted_and_deleting_again_is_harmless(
        self, driver: Driver
    ) -> None:
        await driver.pool_and_job()
        await driver.add(0, 1)
        await driver.running(0, 1)
        await driver.finish(JOB, task_id(0), exit_code=1)
        await driver.exited(0)
        await driver.backend.execute(DeleteTask(JOB, task_id(0)))
        observed = await driver.eventually(
            lambda o: task_id(0) not in {t.id for t in o.jobs[JOB].tasks}, "the task to go"
        )
        assert [t.id for t in observed.jobs[JOB].tasks] == [task_id(1)]
        await driver.backend.execute(DeleteTask(JOB, task_id(0)))
        await driver.backend.execute(DeleteTask("nope", task_id(0, job="nope")))


class TestOwnership:
    async def test_foreign_objects_are_not_owned_and_never_changed(self, driver: Driver) -> None:
        if not driver.has_foreign_objects:
            pytest.skip(f"a {driver.name} backend holds only what simfleet created")
        await driver.add_foreign("theirs", "their-job")
        before = await driver.backend.observe()
        assert not before.pools["theirs"].owned
        assert not before.jobs["their-job"].owned
        assert before.jobs["their-job"].pool == "theirs"
        await driver.pool_and_job()
        await driver.add(0, 1)
        await driver.running(0, 1)
        await driver.backend.execute(ResizePool(POOL, 2, 0, 1, 0))
        await driver.backend.execute(StopTask(JOB, task_id(0), 0, StopReason.SCALE_DOWN))
        await driver.backend.execute(DeleteJob(JOB))
        await driver.backend.execute(DeletePool(POOL))
        after = await driver.eventually(lambda o: JOB not in o.jobs, "our job to go")
        # usable_nodes is when the backend last counted nodes, not a change to the pool
        unchanged = dataclasses.replace(after.pools["theirs"], usable_nodes=None)
        assert unchanged == dataclasses.replace(before.pools["theirs"], usable_nodes=None)
        assert after.jobs["their-job"] == before.jobs["their-job"]


class TestReadOutput:
    async def test_a_byte_range_from_the_start_the_end_or_a_window(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.add(0)
        await driver.running(0)
        await driver.finish(JOB, task_id(0), exit_code=0, stdout="0123456789", stderr="oops")
        await driver.exited(0)
        read = driver.backend.read_output
        whole = await read(JOB, task_id(0), OutputStream.STDOUT)
        assert (whole.data, whole.offset, whole.size) == (b"0123456789", 0, 10)
        last = await read(JOB, task_id(0), OutputStream.STDOUT, offset=-3)
        assert (last.data, last.offset, last.size) == (b"789", 7, 10)
        window = await read(JOB, task_id(0), OutputStream.STDOUT, offset=2, length=3)
        assert (window.data, window.offset) == (b"234", 2)
        beyond = await read(JOB, task_id(0), OutputStream.STDOUT, offset=-100)
        assert (beyond.data, beyond.offset) == (b"0123456789", 0)
        past = await read(JOB, task_id(0), OutputStream.STDOUT, offset=20)
        assert (past.data, past.offset, past.size) == (b"", 10, 10)
        err = await read(JOB, task_id(0), OutputStream.STDERR)
        assert (err.data, err.size) == (b"oops", 4)

    async def test_an_unknown_task_is_permanent(self, driver: Driver) -> None:
        await driver.pool_and_job()
        with pytest.raises(PermanentBackendError):
            await driver.backend.read_output(JOB, task_id(9), OutputStream.STDOUT)


class TestNotifications:
    async def test_an_exit_is_announced_by_backends_that_notice(self, driver: Driver) -> None:
        calls: list[None] = []
        notified = asyncio.Event()

        def callback() -> None:
            calls.append(None)
            notified.set()

        await driver.pool_and_job()
        await driver.add(0)
        await driver.running(0)
        driver.backend.on_change(callback)
        calls.clear()
        notified.clear()
        await driver.finish(JOB, task_id(0), exit_code=1)
        await driver.exited(0)
        if driver.notices_exits:
            await asyncio.wait_for(notified.wait(), timeout=30)
        else:
            assert calls == []


class TestRequestCounts:
    async def test_counts_by_operation_and_outcome(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.backend.observe()
        counts = driver.backend.request_counts()
        for (operation, outcome), count in counts.items():
            assert isinstance(operation, str)
            assert isinstance(outcome, str)
            assert count > 0
        assert bool(counts) == driver.sends_requests


class TestSnapshots:
    async def test_a_snapshot_does_not_change_after_later_actions(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.add(0, 1)
        snapshot = await driver.running(0, 1)
        pools, jobs = dict(snapshot.pools), dict(snapshot.jobs)  # their values are frozen
        await driver.backend.execute(StopTask(JOB, task_id(0), 0, StopReason.SCALE_DOWN))
        await driver.add(2)
        await driver.backend.execute(ResizePool(POOL, 3, 0, 1, 0))
        await driver.exited(0)
        assert (dict(snapshot.pools), dict(snapshot.jobs)) == (pools, jobs)

    async def test_every_task_is_listed_under_its_own_job(self, driver: Driver) -> None:
        await driver.pool_and_job()
        await driver.backend.execute(CreateJob("other", POOL))
        await driver.add(0, 1)
        await driver.backend.execute(AddTasks("other", driver.template, new_tasks(0, job="other")))
        observed = await driver.backend.observe()
        assert {t.id for t in observed.jobs[JOB].tasks} == {task_id(0), task_id(1)}
        assert {t.id for t in observed.jobs["other"].tasks} == {task_id(0, job="other")}


class TestClose:
    async def test_closing_leaves_the_simulators_for_the_next_controller(
        self, driver: Driver
    ) -> None:
        await driver.pool_and_job()
        await driver.add(0)
        await driver.running(0)
        await driver.close()
        reopened = await driver.reopen()
        assert find(await reopened.observe(), 0).state is SimulatorState.RUNNING

    async def test_closing_with_stop_ends_the_simulators_it_runs_itself(
        self, driver: Driver
    ) -> None:
        await driver.pool_and_job()
        await driver.add(0, 1, 2)  # two run, one waits
        await driver.running(0, 1)
        await driver.close(stop_simulators=True)
        tasks = (await (await driver.reopen()).observe()).jobs[JOB].tasks
        if driver.stops_on_close:
            assert {t.state for t in tasks} == {SimulatorState.EXITED}
            assert {t.exit.reason for t in tasks if t.exit} == {ExitReason.STOPPED}
        else:
            assert {t.id for t in tasks if t.live} == {task_id(0), task_id(1), task_id(2)}
