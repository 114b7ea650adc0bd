"""The contract's two newest rules, for every backend: scoped observation and concurrent
``execute`` calls (issue 8).

Scoped observation
    ``observe(jobs=names)`` lists every pool but only the named jobs that exist, each
    exactly as a full ``observe()`` shows it; ``jobs=frozenset()`` lists pools only;
    ``jobs=None`` (the default) lists everything.
Concurrent execution
    The reconciler sends each chunk of ``tasks_per_request`` new tasks as its own
    ``execute(AddTasks(...))``, up to 16 at once, with observations in between: a
    backend's ``execute`` is safe to call concurrently, every task added ends up listed
    exactly once, even when chunks overlap, and no snapshot taken meanwhile lists a task
    twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from controller.planner import AddTasks, CreateJob, Observed

from .conftest import JOB, POOL, Driver, new_tasks, task_id

IN_FLIGHT = 16
PER_CHUNK = 25


async def two_jobs(driver: Driver) -> None:
    """Jobs ``sim`` (two tasks) and ``other`` (one) on a pool with no node."""
    await driver.pool_and_job(nodes=0)
    await driver.backend.execute(CreateJob("other", POOL))
    await driver.add(0, 1)
    await driver.add(0, job="other")


class TestScopedObservation:
    async def test_named_jobs_come_as_a_full_observation_shows_them(self, driver: Driver) -> None:
        await two_jobs(driver)
        full = await driver.backend.observe()
        only = await driver.backend.observe(jobs=frozenset({JOB}))
        assert set(only.jobs) == {JOB}
        assert only.jobs[JOB] == full.jobs[JOB]
        assert dict(only.pools) == dict(full.pools)

    async def test_names_of_jobs_that_do_not_exist_are_left_out(self, driver: Driver) -> None:
        await two_jobs(driver)
        only = await driver.backend.observe(jobs=frozenset({"other", "missing"}))
        assert set(only.jobs) == {"other"}
        assert [t.id for t in only.jobs["other"].tasks] == [task_id(0, job="other")]

    async def test_no_names_is_pools_only(self, driver: Driver) -> None:
        await two_jobs(driver)
        pools_only = await driver.backend.observe(jobs=frozenset())
        assert dict(pools_only.jobs) == {}
        assert set(pools_only.pools) == {POOL}

    async def test_none_is_everything(self, driver: Driver) -> None:
        await two_jobs(driver)
        everything = await driver.backend.observe(jobs=None)
        assert set(everything.jobs) == {JOB, "other"}
        assert everything == await driver.backend.observe()


class TestConcurrentExecution:
    def test_the_backend_says_how_many_tasks_one_request_takes(self, driver: Driver) -> None:
        assert isinstance(driver.backend.tasks_per_request, int)
        assert driver.backend.tasks_per_request >= 1

    async def test_16_adds_at_once_leave_every_task_exactly_once(self, driver: Driver) -> None:
        await driver.pool_and_job(nodes=0)
        chunks = [range(n * PER_CHUNK, (n + 1) * PER_CHUNK) for n in range(IN_FLIGHT)]  # 400 tasks
        adds = [
            driver.backend.execute(AddTasks(JOB, driver.template, new_tasks(*chunk)))
            for chunk in chunks
        ]
        looks = [driver.backend.observe() for _ in range(4)]
        results = await asyncio.gather(*adds, *looks)
        for snapshot in results[IN_FLIGHT:]:
            assert isinstance(snapshot, Observed)
            seen = Counter(t.id for t in snapshot.jobs[JOB].tasks)
            assert not [i for i, n in seen.items() if n > 1]
        tasks = (await driver.backend.observe()).jobs[JOB].tasks
        assert Counter(t.id for t in tasks) == Counter(
            task_id(s) for s in range(IN_FLIGHT * PER_CHUNK)
        )

    async def test_overlapping_adds_at_once_leave_each_task_once(self, driver: Driver) -> None:
        await driver.pool_and_job(nodes=0)
        adds = [
            driver.backend.execute(AddTasks(JOB, driver.template, new_tasks(0, n + 1)))
            for n in range(IN_FLIGHT)
        ]
        await asyncio.gather(*adds)
        tasks = (await driver.backend.observe()).jobs[JOB].tasks
        assert Counter(t.id for t in tasks) == Counter(task_id(s) for s in range(IN_FLIGHT + 1))
