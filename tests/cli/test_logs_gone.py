"""``simfleet logs`` when the output is gone (on Batch: the task's node left the pool, or
its retention time ended): one clear line, never a traceback; ``--follow`` says so and
waits for the slot's next simulator."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click
import pytest

from controller.backends import OutputChunk, OutputGoneError, OutputStream
from controller.cli import logs
from controller.planner import Observed, ObservedJob, ObservedTask, SimulatorState

GONE = "read stdout.txt of sim-s0-rabc-a0: 404: not available any more: its node left"


def _task(attempt: int, started: int = 0) -> ObservedTask:
    return ObservedTask(
        id=f"sim-s0-rabc-a{attempt}",
        slot=0,
        revision="abc",
        attempt=attempt,
        state=SimulatorState.RUNNING,
        created_at=datetime(2026, 1, 1, 0, attempt, tzinfo=UTC),
        started_at=datetime(2026, 1, 1, 1, started, tzinfo=UTC),
    )


class GoneOutput:
    """A backend whose first simulator's files are gone; a later one's are there."""

    name = "azure"
    tasks_per_request = 100

    def __init__(self) -> None:
        self.tasks = [_task(0)]
        self.requeued = False  # the first simulator runs again elsewhere: new files

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        job = ObservedJob("sim", "pool", True, tasks=tuple(self.tasks))
        return Observed(jobs={"sim": job})

    async def read_output(
        self,
        job: str,
        task_id: str,
        stream: OutputStream,
        offset: int = 0,
        length: int | None = None,
    ) -> OutputChunk:
        if task_id.endswith("-a0") and not self.requeued:
            raise OutputGoneError(GONE)
        return OutputChunk(b"hello\n", 0, 6)


def test_gone_output_is_one_clear_line() -> None:
    with pytest.raises(click.ClickException) as caught:
        asyncio.run(logs._show(GoneOutput(), "sim", 0, OutputStream.STDOUT, None, False))  # type: ignore[arg-type]
    assert caught.value.message == f"no stdout to show for sim slot 0: {GONE}"


@pytest.mark.parametrize("next_run", ["next simulator", "requeued"])
def test_follow_says_the_output_is_gone_and_moves_on_to_the_next_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], next_run: str
) -> None:
    monkeypatch.setattr(logs, "RECHECK_SECONDS", 0.0)
    backend = GoneOutput()

    seen = {"out": "", "err": ""}

    async def follow() -> None:
        task = asyncio.create_task(
            logs._show(backend, "sim", 0, OutputStream.STDOUT, None, True)  # type: ignore[arg-type]
        )
        await asyncio.sleep(0.1)
        if next_run == "requeued":  # the same simulator runs again, on another node
            backend.tasks, backend.requeued = [_task(0, started=5)], True
        else:
            backend.tasks.append(_task(1))  # the slot's next simulator
        for _ in range(100):
            await asyncio.sleep(0.1)
            captured = capsys.readouterr()
            seen["out"] += captured.out
            seen["err"] += captured.err
            if "hello" in seen["out"]:
                break
        else:
            raise AssertionError(f"the next simulator's output was never shown: {seen}")
        task.cancel()

    asyncio.run(follow())
    assert f"--- no stdout to show for sim slot 0: {GONE} ---" in seen["err"]
    moved_on = {
        "next simulator": "--- slot 0 now runs sim-s0-rabc-a1 ---",
        "requeued": "--- sim-s0-rabc-a0 runs again, on another node ---",
    }
    assert moved_on[next_run] in seen["err"]
