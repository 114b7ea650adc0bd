"""What observing costs in requests, counted by the emulator, and what it may not miss.

The backend's listing ages follow a clock the tests move (``monotonic``), the emulator's
own clock is frozen unless advanced: passes "five seconds apart" take no wall time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from controller.backends.azure import AzureBackend
from controller.backends.azure._observation import PENDING_FILTER
from controller.planner import (
    AddTasks,
    CreateJob,
    CreatePool,
    NewTask,
    SimulatorState,
    task_id,
    template_of,
)
from tests.batch_emulator._emulator import BatchEmulator
from tests.planner.conftest import pool_spec, simulation

from .conftest import Clock, counts_catch_up, settings_for

REVISION = "0123456789"
MAX_AGE = 600.0  # the backend's default: ten minutes
LIST_TASKS = "Tasks_ListTasks"


@pytest_asyncio.fixture
async def backend(emulator: BatchEmulator, clock: Clock) -> AsyncIterator[AzureBackend]:
    azure = AzureBackend(settings_for(emulator), monotonic=clock)
    yield azure
    await azure.close()


async def fleet(
    backend: AzureBackend,
    emulator: BatchEmulator,
    jobs: int,
    per_job: int,
    nodes: int,
    *,
    prepared: bool = True,
) -> list[str]:
    """``jobs`` jobs of ``per_job`` simfleet tasks on a pool of ``nodes`` 4-slot nodes;
    ``prepared``: past `preparing` (the image pulled), the started ones are `running`."""
    await backend.execute(CreatePool("sims", pool_spec(), nodes, 0))
    emulator.advance(10)  # allocated and booted
    names = [f"sim{j}" for j in range(jobs)]
    for name in names:
        template = template_of(simulation(name, simulators=per_job))
        new = tuple(NewTask(task_id(name, s, REVISION, 0), s, REVISION, 0) for s in range(per_job))
        await backend.execute(CreateJob(name, "sims"))
        await backend.execute(AddTasks(name, template, new))
    config = emulator.config
    emulator.advance(config.image_pull_delay + (config.task_prepare_delay if prepared else 0))
    return names


def operations(backend: AzureBackend) -> Counter[str]:
    return Counter({op: n for (op, _outcome), n in backend.request_counts().items()})


def listed(emulator: BatchEmulator) -> list[str]:
    """The task listings the emulator answered since its counters were reset."""
    return emulator.counters.targets(LIST_TASKS)


class TestSteadyResync:
    async def test_a_steady_pass_costs_task_counts_per_job_and_three_listings(
        self, backend: AzureBackend, emulator: BatchEmulator, clock: Clock
    ) -> None:
        jobs = await fleet(backend, emulator, jobs=20, per_job=2, nodes=10)
        await backend.observe()
        backend.requests.counts.clear()
        passes = 24  # two minutes of 5 s resyncs
        for _ in range(passes):
            clock.now += 5
            observed = await backend.observe()
        # pools, jobs, and every pool's node counts (issue 10: one more than before)
        assert operations(backend) == Counter(
            {
                "GET /pools": passes,
                "GET /jobs": passes,
                "GET /nodecounts": passes,
                "GET /jobs/{id}/taskcounts": 20 * passes,
            }
        )
        assert sum(operations(backend).values()) / passes / len(jobs) <= 1.15
        assert all(
            t.state is SimulatorState.RUNNING for j in observed.jobs.values() for t in j.tasks
        )

    async def test_every_job_is_listed_again_once_its_listing_is_too_old(
        self, backend: AzureBackend, emulator: BatchEmulator, clock: Clock
    ) -> None:
        await fleet(backend, emulator, jobs=3, per_job=2, nodes=2)
        await backend.observe()
        clock.now += MAX_AGE - 1
        emulator.counters.reset()
        await backend.observe()
        assert listed(emulator) == []
        clock.now += 1
        await backend.observe()
        assert sorted(t.split("?")[0] for t in listed(emulator)) == [
            "/jobs/sim0/tasks",
            "/jobs/sim1/tasks",
            "/jobs/sim2/tasks",
        ]


class TestRelisting:
    async def test_a_count_change_lists_that_job_only(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await fleet(backend, emulator, jobs=3, per_job=2, nodes=2)
        before = await backend.observe()
        emulator.counters.reset()
        await backend.observe()
        assert listed(emulator) == []  # counts unchanged: nothing listed
        ended = before.jobs["sim1"].tasks[0]
        emulator.finish_task("sim1", ended.id, exit_code=1)
        counts_catch_up(emulator)
        after = await backend.observe()
        (only,) = listed(emulator)
        assert only.startswith("/jobs/sim1/tasks?")
        assert "$filter" not in only
        assert next(t for t in after.jobs["sim1"].tasks if t.id == ended.id).exit is not None

    async def test_queued_tasks_cost_nothing_more_while_their_counts_stand_still(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await fleet(backend, emulator, jobs=1, per_job=6, nodes=1)  # 4 run, 2 queue
        await backend.observe()
        emulator.counters.reset()
        observed = await backend.observe()
        assert listed(emulator) == []
        states = Counter(t.state for t in observed.jobs["sim0"].tasks)
        assert states == {SimulatorState.RUNNING: 4, SimulatorState.PENDING: 2}

    async def test_a_task_that_starts_after_preparing_is_seen_at_once(
        self, make_batch_emulator: Any, clock: Clock
    ) -> None:
        # Batch counts "preparing" as running: the start itself moves no count.
        emulator: BatchEmulator = await make_batch_emulator(
            allocation_delay=5.0, node_start_delay=1.0, task_prepare_delay=30.0
        )
        backend = AzureBackend(settings_for(emulator), listing_max_age=MAX_AGE, monotonic=clock)
        try:
            await fleet(backend, emulator, jobs=1, per_job=2, nodes=1, prepared=False)
            preparing = await backend.observe()
            assert {t.state for t in preparing.jobs["sim0"].tasks} == {SimulatorState.PENDING}
            emulator.advance(30)
            emulator.counters.reset()
            running = await backend.observe()
            assert {t.state for t in running.jobs["sim0"].tasks} == {SimulatorState.RUNNING}
            refresh, full = listed(emulator)
            assert f"$filter={PENDING_FILTER}" in refresh
            assert "$filter" not in full
        finally:
            await backend.close()

    async def test_added_tasks_are_seen_by_a_refresh_of_the_queue(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await fleet(backend, emulator, jobs=1, per_job=4, nodes=1)
        await backend.observe()
        template = template_of(simulation("sim0", simulators=5))
        added = NewTask(task_id("sim0", 4, REVISION, 0), 4, REVISION, 0)
        await backend.execute(AddTasks("sim0", template, (added,)))  # no free slot: queued
        emulator.counters.reset()
        observed = await backend.observe()
        (refresh,) = listed(emulator)
        assert "$filter" in refresh
        assert [t.slot for t in observed.jobs["sim0"].tasks] == [0, 1, 2, 3, 4]


class TestCacheCorrectness:
    async def test_a_change_the_counts_do_not_show_is_seen_within_the_maximum_age(
        self, backend: AzureBackend, emulator: BatchEmulator, clock: Clock
    ) -> None:
        await fleet(backend, emulator, jobs=1, per_job=2, nodes=1)
        first, second = (await backend.observe()).jobs["sim0"].tasks
        emulator.finish_task("sim0", first.id, exit_code=1)
        counts_catch_up(emulator)
        await backend.observe()  # counts moved: listed, first has failed
        # second fails and first is reactivated and runs again: every count stays equal.
        emulator.finish_task("sim0", second.id, exit_code=1)
        await backend._client.reactivate_task("sim0", first.id)
        emulator.advance(1)
        clock.now += MAX_AGE - 1
        stale = {t.id: t.state for t in (await backend.observe()).jobs["sim0"].tasks}
        assert stale == {first.id: SimulatorState.EXITED, second.id: SimulatorState.RUNNING}
        clock.now += 1
        fresh = {t.id: t.state for t in (await backend.observe()).jobs["sim0"].tasks}
        assert fresh == {first.id: SimulatorState.RUNNING, second.id: SimulatorState.EXITED}


class TestLaggingCounts:
    """Batch's task counts "may not always be up to date": the emulator serves them up to
    ``task_counts_lag`` old. The counts only decide whether to list; a lag may delay
    seeing a change, never hide it for longer than the listing's maximum age."""

    async def test_an_exit_the_lagging_counts_hide_is_seen_once_they_catch_up(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        assert emulator.config.task_counts_lag > 0  # the emulator lags by default
        await fleet(backend, emulator, jobs=1, per_job=2, nodes=1)
        first, _ = (await backend.observe()).jobs["sim0"].tasks
        emulator.finish_task("sim0", first.id, exit_code=1)
        hidden = {t.id: t.state for t in (await backend.observe()).jobs["sim0"].tasks}
        assert hidden[first.id] is SimulatorState.RUNNING  # the counts still say running
        counts_catch_up(emulator)
        seen = {t.id: t.state for t in (await backend.observe()).jobs["sim0"].tasks}
        assert seen[first.id] is SimulatorState.EXITED

    async def test_counts_that_never_catch_up_hide_an_exit_no_longer_than_the_maximum_age(
        self, make_batch_emulator: Any, clock: Clock
    ) -> None:
        emulator: BatchEmulator = await make_batch_emulator(
            allocation_delay=5.0, node_start_delay=1.0, task_counts_lag=10 * MAX_AGE
        )
        backend = AzureBackend(settings_for(emulator), listing_max_age=MAX_AGE, monotonic=clock)
        try:
            await fleet(backend, emulator, jobs=1, per_job=2, nodes=1)
            first, _ = (await backend.observe()).jobs["sim0"].tasks
            emulator.finish_task("sim0", first.id, exit_code=1)
            emulator.advance(MAX_AGE - 1)
            clock.now += MAX_AGE - 1
            hidden = {t.id: t.state for t in (await backend.observe()).jobs["sim0"].tasks}
            assert hidden[first.id] is SimulatorState.RUNNING
            clock.now += 1
            seen = {t.id: t.state for t in (await backend.observe()).jobs["sim0"].tasks}
            assert seen[first.id] is SimulatorState.EXITED
        finally:
            await backend.close()


class TestScopedObservation:
    async def test_a_scope_observes_every_pool_and_only_the_named_jobs(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await fleet(backend, emulator, jobs=3, per_job=1, nodes=1)
        backend.requests.counts.clear()
        observed = await backend.observe(frozenset({"sim1", "gone"}))
        assert set(observed.jobs) == {"sim1"}
        assert set(observed.pools) == {"sims"}
        assert len(observed.jobs["sim1"].tasks) == 1
        assert operations(backend) == Counter(
            {
                "GET /pools": 1,
                "GET /jobs": 1,
                "GET /nodecounts": 1,
                "GET /jobs/{id}/taskcounts": 1,
                "GET /jobs/{id}/tasks": 1,
            }
        )

    async def test_an_empty_scope_observes_the_pools_alone(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await fleet(backend, emulator, jobs=2, per_job=1, nodes=1)
        backend.requests.counts.clear()
        observed = await backend.observe(frozenset())
        assert (set(observed.pools), dict(observed.jobs)) == ({"sims"}, {})
        assert operations(backend) == Counter({"GET /pools": 1, "GET /nodecounts": 1})
        assert observed.pools["sims"].usable == 1


class TestUsableNodes:
    """Regression (issue 8): Batch counts a node as current from its allocation on, so
    ``apply --wait`` took a pool with nodes still starting for one that could run
    simulators and listed every job each step (11.7 requests/s in the bench)."""

    async def test_allocated_nodes_still_starting_are_not_usable(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await backend.execute(CreatePool("sims", pool_spec(), 2, 0))
        emulator.advance(5)  # allocated (allocation delay 5 s), not yet started (1 s more)
        pool = (await backend.observe(frozenset())).pools["sims"]
        assert (pool.current_dedicated, pool.usable) == (2, 0)
        emulator.advance(1)
        assert (await backend.observe(frozenset())).pools["sims"].usable == 2

    async def test_healthy_pools_cost_one_node_count_request_a_pass_and_no_node_listing(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        for name in ("sims", "more", "most"):
            await backend.execute(CreatePool(name, pool_spec(), 2, 0))
        emulator.advance(10)
        backend.requests.counts.clear()
        for _ in range(3):
            observed = await backend.observe()
        assert operations(backend) == Counter(
            {"GET /pools": 3, "GET /jobs": 3, "GET /nodecounts": 3}
        )
        pool = observed.pools["sims"]
        assert pool.nodes is not None
        assert (pool.usable, pool.nodes.total, pool.nodes.broken, pool.node_errors) == (2, 2, 0, ())

    async def test_everything_is_observed_without_a_scope(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await fleet(backend, emulator, jobs=2, per_job=1, nodes=1)
        assert set((await backend.observe()).jobs) == {"sim0", "sim1"}
