"""Pool sizing on Batch through the real SDK against the emulator: no churn, idle nodes only.

The figures issue 10 asks for (resize requests, requeued simulators) are asserted here and
printed with ``pytest -s tests/backends/azure/test_sizing.py``: a rollout of 8 simulators
makes no resize, 100 → 50 → 100 simulators within the scale-down delay makes none, and no
running simulator is requeued by a shrink simfleet asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.backends.azure import AzureBackend
from controller.planner import (
    Desired,
    PlannerConfig,
    PoolMemory,
    Progress,
    ResizePool,
    ShrinkPool,
)
from controller.reconcile import PassResult, run_pass
from tests.batch_emulator._emulator import BatchEmulator
from tests.planner.conftest import desired, pool_spec, simulation

from .conftest import clock_of

AUTO = {"sims": pool_spec(nodes={"dedicated": "auto", "max": 100})}
CONFIG = PlannerConfig(scale_down_delay=timedelta(minutes=10))
RESIZES = ("Pools_ResizePool", "Pools_RemoveNodes")


@dataclass
class Daemon:
    """Passes as the daemon runs them: each hands its memory to the next, and emulator
    time moves ``step`` seconds between them."""

    backend: AzureBackend
    emulator: BatchEmulator
    step: float = 5.0
    progress: Mapping[str, Progress] = field(default_factory=dict)
    absent: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    sizing: Mapping[str, PoolMemory] = field(default_factory=dict)

    async def once(self, want: Desired) -> PassResult:
        result = await run_pass(
            want,
            self.backend,
            clock_of(self.emulator),
            config=CONFIG,
            progress=self.progress,
            absent=self.absent,
            sizing=self.sizing,
        )
        assert result.failures == (), result.failures
        self.progress, self.absent = result.plan.progress, result.plan.absent
        self.sizing = result.plan.sizing
        self.emulator.advance(self.step)
        return result

    async def converge(self, want: Desired, passes: int = 40) -> PassResult:
        """Passes until every simulation is ready on its template and nothing is left."""
        result = None
        for _ in range(passes):
            result = await self.once(want)
            rows = result.status.simulations
            if result.plan.converged and all(s.ready == s.up_to_date == s.desired for s in rows):
                return result
        raise AssertionError(f"not converged: {result.status if result else None}")

    def resizes(self) -> int:
        """Requests that changed a pool's size so far."""
        return sum(self.emulator.counters.count(op) for op in RESIZES)


def pool(emulator: BatchEmulator) -> dict[str, Any]:
    return emulator.pool("sims")


async def test_pools_are_created_to_pack_tasks_onto_nodes(
    backend: AzureBackend, emulator: BatchEmulator
) -> None:
    await Daemon(backend, emulator).converge(desired(simulation(simulators=2), pools=AUTO))
    assert pool(emulator)["taskSchedulingPolicy"] == {"nodeFillType": "pack"}


async def test_a_rollout_of_8_simulators_makes_no_resize(
    backend: AzureBackend, emulator: BatchEmulator
) -> None:
    daemon = Daemon(backend, emulator)
    await daemon.converge(desired(simulation(simulators=8), pools=AUTO))
    before = daemon.resizes()
    rolled = desired(simulation(simulators=8, image="cartpole:2.0"), pools=AUTO)
    result = await daemon.converge(rolled)
    rollout = daemon.resizes() - before
    print(f"\nrollout of 8 simulators: {rollout} resize request(s), requeued {emulator.requeued}")
    assert result.status.simulations[0].up_to_date == 8
    assert rollout == 0
    assert emulator.requeued == {}


async def test_100_to_50_to_100_within_the_delay_makes_no_resize(
    backend: AzureBackend, emulator: BatchEmulator
) -> None:
    daemon = Daemon(backend, emulator)
    full = desired(simulation(simulators=100), pools=AUTO)
    await daemon.converge(full)
    before, nodes = daemon.resizes(), pool(emulator)["targetDedicatedNodes"]
    half = await daemon.converge(desired(simulation(simulators=50), pools=AUTO))
    assert "shrinks to 16+0 nodes after" in half.status.pools[0].message  # 50 + 13 on 4 slots
    await daemon.converge(full)
    churn = daemon.resizes() - before
    print(f"\n100 → 50 → 100 simulators within the delay: {churn} resize request(s)")
    assert churn == 0
    assert pool(emulator)["targetDedicatedNodes"] == nodes == 32  # 100 + 25 on 4 slots
    assert daemon.sizing == {}  # demand is back: the delay's clock is gone


async def test_a_shrink_after_the_delay_removes_idle_nodes_and_requeues_nothing(
    backend: AzureBackend, emulator: BatchEmulator
) -> None:
    daemon = Daemon(backend, emulator)
    await daemon.converge(desired(simulation(simulators=100), pools=AUTO))
    fewer = desired(simulation(simulators=20), pools=AUTO)
    await daemon.converge(fewer)
    assert pool(emulator)["targetDedicatedNodes"] == 32  # held for the delay
    emulator.advance(600)
    shrinks = []
    for _ in range(10):
        result = await daemon.once(fewer)
        shrinks += [a for a in result.executed if isinstance(a, ShrinkPool | ResizePool)]
        if pool(emulator)["targetDedicatedNodes"] == 7:  # 20 + 5 on 4 slots
            break
    removals = emulator.counters.count("Pools_RemoveNodes")
    resized = emulator.counters.count("Pools_ResizePool")
    print(
        f"\n100 → 20 simulators, after the delay: {len(shrinks)} shrink(s),"
        f" {removals} removenodes, {resized} resize(s), requeued {emulator.requeued}"
    )
    assert pool(emulator)["targetDedicatedNodes"] == 7
    assert all(isinstance(a, ShrinkPool) for a in shrinks)
    assert emulator.requeued == {}  # no running simulator was sent back to the queue
    removed = emulator.counters.targets("Pools_RemoveNodes")
    assert removed  # nodes went by name
    result = await daemon.converge(fewer)
    assert result.status.simulations[0].ready == 20
    assert result.status.simulations[0].restarts == 0


async def test_a_shrink_leaves_busy_nodes_while_no_idle_one_is_left(
    backend: AzureBackend, emulator: BatchEmulator
) -> None:
    daemon = Daemon(backend, emulator)
    await daemon.converge(desired(simulation(simulators=8), pools=AUTO))  # 8 + 2 → 3 nodes
    action = ShrinkPool("sims", 1, 0, 3, 0, 3, 0)
    await backend.execute(action)  # two nodes hold 8 simulators packed: one is idle
    emulator.advance(emulator.config.allocation_delay)
    assert (pool(emulator)["targetDedicatedNodes"], pool(emulator)["currentDedicatedNodes"]) == (
        2,
        2,
    )
    await backend.execute(ShrinkPool("sims", 1, 0, 2, 0, 2, 0))  # none idle: nothing sent
    assert emulator.counters.count("Pools_RemoveNodes") == 1
    assert emulator.requeued == {}


async def test_a_failed_resize_is_sent_again_after_a_back_off_until_it_succeeds(
    backend: AzureBackend, emulator: BatchEmulator
) -> None:
    emulator.state.world.config.dedicated_core_quota = 8  # 2 of the 3 nodes of 4 cores
    daemon = Daemon(backend, emulator)
    want = desired(simulation(simulators=8), pools=AUTO)
    for _ in range(4):
        result = await daemon.once(want)
    message = result.status.pools[0].message
    assert "resize error: AccountCoreQuotaReached" in message
    assert "resizing again at" in message
    assert emulator.counters.count("Pools_ResizePool") == 0  # waiting out the back-off
    assert result.plan.requeue_after is not None
    emulator.state.world.config.dedicated_core_quota = None  # the quota was raised
    emulator.advance(60)
    result = await daemon.once(want)
    assert [a for a in result.executed if isinstance(a, ResizePool)] == [
        ResizePool("sims", 3, 0, 3, 0)
    ]
    assert "resizing again (retry 1)" in result.after.pools[0].message
    result = await daemon.converge(want)
    assert pool(emulator)["currentDedicatedNodes"] == 3
    assert result.status.pools[0].message == ""  # cleared with the error
    assert daemon.sizing == {}
