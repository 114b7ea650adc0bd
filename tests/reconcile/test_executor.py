"""The executor: phases, per-simulation chains, chunks, one in-flight limit, Retry-After."""

from __future__ import annotations

import asyncio

import pytest

from controller.backends import PermanentBackendError, TransientBackendError
from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    Desired,
    RecordLogin,
    ResizePool,
    StopTask,
    plan,
)
from controller.reconcile import Executor
from controller.testing import FakeBackend, FakeClock
from tests.planner.conftest import pool_spec, simulation


class Recording(FakeBackend):
    """A FakeBackend whose requests take a turn of the event loop (or wait for a gate),
    and which records what was in flight and in which order requests began and ended."""

    def __init__(self, tasks_per_request: int = 10_000) -> None:
        super().__init__(FakeClock())
        self.tasks_per_request = tasks_per_request
        self.in_flight = 0
        self.most_in_flight = 0
        self.events: list[tuple[str, Action]] = []
        self.gates: dict[str, asyncio.Event] = {}  # CreateJob name → released when set
        self.fail: dict[str, Exception] = {}  # CreateJob name / AddTasks job → raised
        self.added: dict[str, asyncio.Event] = {}  # job → set once tasks were added to it

    def tasks_added(self, job: str) -> asyncio.Event:
        return self.added.setdefault(job, asyncio.Event())

    async def execute(self, action: Action) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.events.append(("begin", action))
        try:
            if isinstance(action, CreateJob) and action.name in self.gates:
                await self.gates[action.name].wait()
            for _ in range(3):
                await asyncio.sleep(0)
            key = action.name if isinstance(action, CreateJob) else getattr(action, "job", "")
            if key in self.fail and isinstance(action, CreateJob | AddTasks):
                raise self.fail[key]
            await super().execute(action)
            if isinstance(action, AddTasks):
                self.tasks_added(action.job).set()
        finally:
            self.in_flight -= 1
            self.events.append(("end", action))


def fleet(*counts: int) -> Desired:
    names = ["alpha", "beta", "gamma", "delta"]
    return Desired(
        pools={"sims": pool_spec(nodes={"dedicated": 100})},
        simulations={names[i]: simulation(names[i], simulators=n) for i, n in enumerate(counts)},
    )


def actions_for(desired: Desired, backend: FakeBackend) -> tuple[Action, ...]:
    return plan(desired, backend.snapshot(), backend.clock()).actions


async def test_independent_actions_run_concurrently_under_the_limit() -> None:
    backend = Recording()
    actions = actions_for(fleet(2, 2, 2, 2), backend)
    result = await Executor(backend, max_in_flight=3).run(actions)
    assert backend.most_in_flight == 3
    assert result.executed == actions
    assert result.failures == ()


async def test_a_limit_of_one_sends_one_request_at_a_time() -> None:
    backend = Recording()
    await Executor(backend, max_in_flight=1).run(actions_for(fleet(2, 2, 2), backend))
    assert backend.most_in_flight == 1


async def test_a_jobs_tasks_start_as_soon_as_that_job_exists() -> None:
    backend = Recording()
    backend.gates["beta"] = asyncio.Event()
    running = asyncio.create_task(Executor(backend).run(actions_for(fleet(2, 2), backend)))
    await asyncio.wait_for(backend.tasks_added("alpha").wait(), 10)
    assert not any(
        k == "end" and isinstance(a, CreateJob) and a.name == "beta" for k, a in backend.events
    )
    backend.gates["beta"].set()
    result = await running
    assert len(backend.live_tasks("beta")) == 2
    assert not result.failures


async def test_new_simulators_go_in_chunks_of_tasks_per_request() -> None:
    backend = Recording(tasks_per_request=100)
    actions = actions_for(fleet(250), backend)
    result = await Executor(backend).run(actions)
    sizes = sorted(
        len(a.tasks) for k, a in backend.events if k == "begin" and isinstance(a, AddTasks)
    )
    assert sizes == [50, 100, 100]
    whole = [a for a in actions if isinstance(a, AddTasks)]
    assert [a for a in result.executed if isinstance(a, AddTasks)] == whole  # reported whole
    assert len(backend.live_tasks("alpha")) == 250


async def test_every_creation_ends_before_any_stop_begins() -> None:
    backend = Recording()
    first = fleet(3, 3)
    await Executor(backend).run(actions_for(first, backend))
    changed = Desired(
        pools=first.pools,
        simulations={
            "alpha": simulation(
                "alpha", simulators=3, image="cartpole:2.0", rollout={"maxSurge": 3}
            ),
            "beta": simulation("beta", simulators=1),
        },
    )
    backend.events.clear()
    actions = actions_for(changed, backend)
    assert any(isinstance(a, StopTask) for a in actions)
    assert any(isinstance(a, AddTasks) for a in actions)
    await Executor(backend).run(actions)
    first_stop = next(i for i, (k, a) in enumerate(backend.events) if isinstance(a, StopTask))
    last_add = max(i for i, (k, a) in enumerate(backend.events) if isinstance(a, AddTasks))
    assert last_add < first_stop


async def test_a_retry_after_cancels_everything_not_yet_sent() -> None:
    backend = Recording()
    backend.fail["alpha"] = TransientBackendError("429", code="429", retry_after=7.0)
    actions = actions_for(fleet(2, 2, 2), backend)
    result = await Executor(backend, max_in_flight=1).run(actions)
    assert result.retry_after == 7.0
    sent = [a for k, a in backend.events if k == "begin"]
    assert [a for a in sent if isinstance(a, CreateJob)] == [CreateJob("alpha", "sims")]
    assert not any(isinstance(a, AddTasks) for a in sent)
    assert [type(a) for a in result.executed] == [CreatePool]
    assert [f.action for f in result.failures] == [CreateJob("alpha", "sims")]


async def test_a_permanent_failure_is_recorded_and_the_rest_goes_on() -> None:
    backend = Recording()
    backend.fail["alpha"] = PermanentBackendError("no", code="Refused")
    result = await Executor(backend).run(actions_for(fleet(2, 2), backend))
    assert [f.action for f in result.failures] == [CreateJob("alpha", "sims")]
    assert not any(isinstance(a, AddTasks) and a.job == "alpha" for k, a in backend.events)
    assert len(backend.live_tasks("beta")) == 2


async def test_a_failed_chunk_leaves_the_others_reported_one_by_one() -> None:
    backend = Recording(tasks_per_request=2)
    actions = actions_for(fleet(5), backend)
    job_actions = [a for a in actions if not isinstance(a, AddTasks)]
    await Executor(backend).run(job_actions)
    add = next(a for a in actions if isinstance(a, AddTasks))
    backend.fail["alpha"] = PermanentBackendError("no", code="Refused")
    result = await Executor(backend).run([add])
    assert len(result.failures) == 3  # 2 + 2 + 1: every chunk refused
    assert result.executed == ()


def test_the_limit_must_allow_a_request() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Executor(FakeBackend(), max_in_flight=0)


async def test_every_kind_of_action_is_sent() -> None:
    """Regression: the phases were lists of named kinds, so a new kind (the pool's
    RecordLogin) was planned, reported as an action, and silently never sent."""
    backend = Recording()
    spec = pool_spec(nodes={"dedicated": 1})
    await Executor(backend).run([CreatePool("sims", spec, 1, 0)])
    kinds = [
        CreatePool("other", spec, 1, 0),
        RecordLogin("sims", spec, "digest"),
        ResizePool("sims", 2, 0, 1, 0),
        CreateJob("alpha", "sims"),
        DeleteJob("gone"),
        DeletePool("old"),
    ]
    execution = await Executor(backend).run(kinds)
    assert execution.failures == ()
    assert execution.executed == tuple(kinds)
    sent = {type(a).__name__ for event, a in backend.events if event == "begin"}
    assert sent >= {type(a).__name__ for a in kinds}
