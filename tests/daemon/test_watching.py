"""The watcher follows the specs path, not the inode, and wakes the loop only for changes
that can matter: not for simulators' output in a state directory inside the specs
directory, nor for hidden files and directories."""

from __future__ import annotations

import asyncio
from pathlib import Path

import watchfiles

from controller.daemon import Controller, DaemonConfig, utc_now
from controller.planner import Observed
from controller.testing import FakeBackend
from tests.daemon.conftest import POOL, running, simulation, until


class Counting(FakeBackend):
    """Counts observations: one per pass."""

    def __init__(self) -> None:
        super().__init__(clock=utc_now)
        self.passes = 0

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        self.passes += 1
        return await super().observe(jobs)


def write_specs(folder: Path, simulators: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pool.yaml").write_text(POOL)
    (folder / "a.yaml").write_text(simulation("alpha", simulators))


class TestDirectorySwap:
    async def test_edits_after_a_plain_directory_swap_wake_a_pass(self, tmp_path: Path) -> None:
        specs = tmp_path / "specs"
        write_specs(specs, 1)
        backend = FakeBackend(clock=utc_now)
        config = DaemonConfig(specs=specs, port=0, resync=60.0)
        async with running(Controller(config, backend)):
            await until(lambda: len(backend.live_tasks("alpha")) == 1)
            write_specs(tmp_path / "specs.new", 2)
            specs.rename(tmp_path / "specs.old")  # mv specs specs.old
            (tmp_path / "specs.new").rename(specs)  # mv specs.new specs
            await until(lambda: len(backend.live_tasks("alpha")) == 2, timeout=5)
            await asyncio.sleep(0.5)  # the follow-up passes of that change are over
            (specs / "a.yaml").write_text(simulation("alpha", 3))  # an edit after the swap
            await until(lambda: len(backend.live_tasks("alpha")) == 3, timeout=5)

    async def test_a_directory_created_later_is_watched(self, tmp_path: Path) -> None:
        specs = tmp_path / "specs"
        backend = FakeBackend(clock=utc_now)
        config = DaemonConfig(specs=specs, port=0, resync=60.0)
        async with running(Controller(config, backend)):
            write_specs(specs, 1)
            await until(lambda: len(backend.live_tasks("alpha")) == 1, timeout=5)
            (specs / "a.yaml").write_text(simulation("alpha", 2))
            await until(lambda: len(backend.live_tasks("alpha")) == 2, timeout=5)


class TestQuietWrites:
    async def test_output_in_a_state_dir_inside_specs_wakes_no_pass(self, tmp_path: Path) -> None:
        specs = tmp_path / "specs"
        write_specs(specs, 1)
        state = specs / "state"  # not hidden: only the state-dir rule keeps it quiet
        output = state / "local" / "jobs" / "alpha" / "task-1"
        output.mkdir(parents=True)
        hidden = specs / ".cache"
        hidden.mkdir()
        backend = Counting()
        config = DaemonConfig(specs=specs, port=0, resync=60.0, state_dir=state)
        async with running(Controller(config, backend)):
            await until(lambda: len(backend.live_tasks("alpha")) == 1)
            await asyncio.sleep(0.5)  # let the start-up passes settle
            before = backend.passes
            for n in range(40):  # a simulator writing its output, line by line
                with (output / "stdout").open("a") as stream:
                    stream.write(f"episode {n}\n")
                (hidden / "scratch").write_text(str(n))
                await asyncio.sleep(0.025)
            await asyncio.sleep(0.5)
            assert backend.passes - before <= 1
            (specs / "a.yaml").write_text(simulation("alpha", 2))  # specs are still watched
            await until(lambda: len(backend.live_tasks("alpha")) == 2, timeout=5)


def test_the_filter_keeps_spec_files_and_atomic_renames(tmp_path: Path) -> None:
    from controller.daemon._watching import relevant

    keep = relevant(tmp_path, [tmp_path / "state"])
    added = watchfiles.Change.added
    assert keep(added, str(tmp_path / "a.yaml"))
    assert keep(added, str(tmp_path / "team" / "b.yaml"))
    assert not keep(added, str(tmp_path / ".a.yaml.tmp"))
    assert not keep(added, str(tmp_path / ".git" / "index"))
    assert not keep(added, str(tmp_path / "state" / "local" / "state.json"))
