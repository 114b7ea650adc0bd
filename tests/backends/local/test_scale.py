"""Large passes: the state is written once per burst, starts do not hold the event loop,
and a shutdown ends every simulator at once. Figures live in ``benchmarks/local_scale.py``.

Regression (issue 7, item 13): every action rewrote the whole state file and every exit
too, so scaling 2,000 → 2 took minutes with ``/healthz`` timing out.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from controller.backends.local import LocalBackend, ProcessRuntime, _lifecycle
from controller.backends.local._runtime import Handle
from controller.planner import (
    AddTasks,
    ExitReason,
    NewTask,
    ResizePool,
    SimulatorState,
    StopReason,
    StopTask,
)

from .conftest import (
    BackendFactory,
    pool_and_job,
    task_in,
    template,
    wait_for,
    wrappers_of,
)


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

    async def test_16_concurrent_callers_write_the_state_once_and_lose_nothing(
        self, backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The reconciler runs up to 16 actions at once: their changes interleave, but each
        action is whole, every task gets its own creation number and one write holds all."""
        await backend.execute(ResizePool("sims", 0, 0, 1, 0))  # nothing may start
        await backend.observe()
        writes = StateWrites(monkeypatch)
        limit = asyncio.Semaphore(16)

        async def add_chunk(chunk: int) -> None:
            tasks = tuple(
                NewTask(f"sim-s{slot}-rab-a0", slot, "ab", 0)
                for slot in range(chunk * 5, chunk * 5 + 5)
            )
            async with limit:
                await backend.execute(AddTasks("sim", template("true"), tasks))

        await asyncio.gather(*(add_chunk(chunk) for chunk in range(200)))
        observed = await backend.observe()
        ids = [t.id for t in observed.jobs["sim"].tasks]
        assert sorted(ids) == sorted(f"sim-s{slot}-rab-a0" for slot in range(1000))
        seqs = [t.seq for t in backend._store.tasks.values()]
        assert len(set(seqs)) == 1000
        assert writes.count <= 2  # once by the next observe, maybe once in between


class Signals(ProcessRuntime):
    """The process runtime, recording every signal it sends, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[int, int]] = []

    def signal(self, handle: Handle, signum: int) -> None:
        self.sent.append((handle.pid, signum))
        super().signal(handle, signum)


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
        # and CI once saw exactly that; "running" is also said before the simulator's own
        # first line ran, so each says when its trap is set.)
        ignores_term = ("sh", "-c", 'trap "" TERM; : >trapped; sleep 300 & wait')
        tasks = tuple(NewTask(f"sim-s{i}-rab-a0", i, "ab", 0) for i in range(4))
        await backend.execute(AddTasks("sim", template(ignores_term), tasks))
        await wait_for(lambda: all_in(backend, SimulatorState.RUNNING, 4))
        folders = [backend._store.task_dir(("sim", t.id)) for t in tasks]
        await wait_for(lambda: all((folder / "trapped").exists() for folder in folders))
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

    async def test_close_signals_every_simulator_before_it_waits_and_kills_stragglers_once(
        self, open_backend: BackendFactory
    ) -> None:
        runtime = Signals()
        backend = await open_backend(runtime=runtime, stop_grace=3.0)
        await pool_and_job(backend, slots=20)
        ignores_term = ("sh", "-c", 'trap "" TERM; : >trapped; sleep 300 & wait')
        stubborn = tuple(NewTask(f"sim-s{i}-rab-a0", i, "ab", 0) for i in range(5))
        polite = tuple(NewTask(f"sim-s{i}-rab-a0", i, "ab", 0) for i in range(5, 20))
        await backend.execute(AddTasks("sim", template(ignores_term), stubborn))
        await backend.execute(AddTasks("sim", template(("sleep", "300")), polite))
        await wait_for(lambda: all_in(backend, SimulatorState.RUNNING, 20), timeout=60)
        folders = [backend._store.task_dir(("sim", t.id)) for t in stubborn]
        await wait_for(lambda: all((folder / "trapped").exists() for folder in folders))

        await backend.close(stop_simulators=True)
        kinds = [signum for _, signum in runtime.sent]
        assert kinds[:20] == [signal.SIGTERM] * 20  # every one signalled before any waiting
        terms = {pid for pid, signum in runtime.sent if signum == signal.SIGTERM}
        assert len(terms) == 20  # each one once
        kills = [pid for pid, signum in runtime.sent[20:] if signum == signal.SIGKILL]
        assert len(kills) == len(runtime.sent) - 20 >= 5  # then the stragglers, killed

    async def test_close_lets_the_event_loop_run_while_it_signals(
        self, open_backend: BackendFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        runtime = Signals()
        backend = await open_backend(runtime=runtime)
        await pool_and_job(backend, slots=10)
        tasks = tuple(NewTask(f"sim-s{i}-rab-a0", i, "ab", 0) for i in range(10))
        await backend.execute(AddTasks("sim", template(("sleep", "300")), tasks))
        await wait_for(lambda: all_in(backend, SimulatorState.RUNNING, 10), timeout=60)
        monkeypatch.setattr(_lifecycle, "LAUNCH_SLICE", 0.0)  # a turn after each signal
        terms_at_ticks: list[int] = []
        ticks = 0
        closing = True

        async def ticker() -> None:
            nonlocal ticks
            while closing:
                ticks += 1
                await asyncio.sleep(0)

        original = runtime.signal

        def signal_noting_ticks(handle: Handle, signum: int) -> None:
            if signum == signal.SIGTERM:
                terms_at_ticks.append(ticks)
            original(handle, signum)

        runtime.signal = signal_noting_ticks  # type: ignore[method-assign]
        ticking = asyncio.create_task(ticker())
        await backend.close(stop_simulators=True)
        closing = False
        await ticking
        assert len(terms_at_ticks) == 10
        assert terms_at_ticks[-1] > terms_at_ticks[0]  # other work ran in between
