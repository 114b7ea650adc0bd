"""Large passes: the state is written once per burst, starts do not hold the event loop,
and a shutdown ends every simulator at once. Figures live in ``benchmarks/local_scale.py``.

Regression (issue 7, item 13): every action rewrote the whole state file and every exit
too, so scaling 2,000 → 2 took minutes with ``/healthz`` timing out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.backends.local import LocalBackend
from controller.planner import (
    AddTasks,
    ExitReason,
    NewTask,
    ResizePool,
    SimulatorState,
    StopReason,
    StopTask,
)

from .conftest import BackendFactory, pool_and_job, task_in, template, wait_for, wrappers_of


class StateWrites:
    """Counts the times ``state.json`` is replaced (each write of the state ends so)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = Path.replace

        def replace(path: Path, target: str | Path) -> Path:
            if Path(target).name == "state.json":
                self.count += 1
            return original(path, target)

        monkeypatch.setattr(Path, "replace", replace)


def one_task(slot: int) -> tuple[NewTask, ...]:
    return (NewTask(id=f"sim-s{slot}-rab-a0", slot=slot, revision="ab", attempt=0),)


async def all_in(backend: LocalBackend, state: SimulatorState, count: int) -> bool:
    tasks = (await backend.observe()).jobs["sim"].tasks
    return len(tasks) == count and all(t.state is state for t in tasks)


class TestStateWrites:
    async def test_a_batch_of_200_actions_writes_the_state_once(
        self, backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await backend.execute(ResizePool("sims", 0, 0, 1, 0))  # nothing may start
        await backend.observe()
        writes = StateWrites(monkeypatch)
        for slot in range(200):
            await backend.execute(AddTasks("sim", template("true"), one_task(slot)))
        observed = await backend.observe()
        assert len(observed.jobs["sim"].tasks) == 200
        assert writes.count <= 2  # once by the pass's next observe, maybe once in between

    async def test_a_burst_of_exits_writes_the_state_a_few_times_not_once_each(
        self, state_dir: Path, open_backend: BackendFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        backend = await open_backend()
        await pool_and_job(backend, slots=100)
        tasks = tuple(NewTask(f"sim-s{i}-rab-a0", i, "ab", 0) for i in range(100))
        waits = "while [ ! -e ../../go ]; do sleep 0.05; done"  # all end at the same moment
        await backend.execute(AddTasks("sim", template(waits), tasks))
        await wait_for(lambda: all_in(backend, SimulatorState.RUNNING, 100), timeout=30)
        writes = StateWrites(monkeypatch)
        (state_dir / "local" / "jobs" / "go").touch()
        await wait_for(lambda: all_in(backend, SimulatorState.EXITED, 100), timeout=30)
        assert writes.count <= 10


class TestEventLoop:
    async def test_starting_many_simulators_lets_the_event_loop_run(
        self, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend()
        await pool_and_job(backend, slots=150)
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.create_task(ticker())
        tasks = tuple(NewTask(f"sim-s{i}-rab-a0", i, "ab", 0) for i in range(150))
        await backend.execute(AddTasks("sim", template(("sleep", "300")), tasks))
        before = ticks
        observed = await backend.observe()
        pending = [t for t in observed.jobs["sim"].tasks if t.state is SimulatorState.PENDING]
        assert pending  # execute returned before starting them all
        await wait_for(lambda: all_in(backend, SimulatorState.RUNNING, 150), timeout=60)
        done.set()
        await ticking
        assert ticks - before > 5  # the loop ran other work while they were started

    async def test_stopping_is_immediate_for_the_caller(self, backend: LocalBackend) -> None:
        # The simulators ignore SIGTERM, so each stays "stopping" for the whole grace
        # period: a stop that returned only once its simulator had exited would find
        # them exited here. (With a plain ``sleep`` they could exit before the observe,
        # and CI once saw exactly that.)
        ignores_term = ("sh", "-c", 'trap "" TERM; sleep 300 & wait')
        tasks = tuple(NewTask(f"sim-s{i}-rab-a0", i, "ab", 0) for i in range(4))
        await backend.execute(AddTasks("sim", template(ignores_term), tasks))
        await wait_for(lambda: all_in(backend, SimulatorState.RUNNING, 4))
        for new in tasks:
            await backend.execute(StopTask("sim", new.id, new.slot, StopReason.SCALE_DOWN))
        observed = await backend.observe()
        assert all(task_in(observed, t.id).stopping for t in tasks)
        await wait_for(lambda: all_in(backend, SimulatorState.EXITED, 4))


class TestShutdown:
    async def test_close_with_stop_ends_100_simulators(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend()
        await pool_and_job(backend, slots=100)
        tasks = tuple(NewTask(f"sim-s{i}-rab-a0", i, "ab", 0) for i in range(100))
        await backend.execute(AddTasks("sim", template(("sleep", "300")), tasks))
        await wait_for(lambda: all_in(backend, SimulatorState.RUNNING, 100), timeout=60)
        assert len(wrappers_of(state_dir)) == 100

        await backend.close(stop_simulators=True)
        assert wrappers_of(state_dir) == []
        reopened = await open_backend()
        exits = [t.exit for t in (await reopened.observe()).jobs["sim"].tasks]
        assert [e.reason if e else None for e in exits] == [ExitReason.STOPPED] * 100
