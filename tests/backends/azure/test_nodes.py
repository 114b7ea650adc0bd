"""Node health through the real SDK against the emulator: broken nodes and their errors
reach status, the pool's condition and metrics within a pass or two, at a bounded cost in
requests; prefetching images happens only when a pool asks for it."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from azure.batch import models as m

from controller.backends.azure import AzureBackend
from controller.backends.azure._mapping import BROKEN_NODES_FILTER, pool_create
from controller.daemon._document import pool_document
from controller.daemon._metrics import Metrics
from controller.planner import CreatePool, Desired, NodeStates
from controller.reconcile import PassResult, run_pass
from tests.batch_emulator._emulator import BatchEmulator
from tests.batch_emulator._faults import Fault
from tests.batch_emulator.fixtures import client_for
from tests.planner.conftest import desired, pool_spec, simulation

from .conftest import Clock, clock_of, settings_for

LIST_NODES = "Nodes_ListNodes"
IMAGE = "myacr.azurecr.io/cartpole:1.0"


@pytest_asyncio.fixture
async def backend(emulator: BatchEmulator, clock: Clock) -> AsyncIterator[AzureBackend]:
    azure = AzureBackend(settings_for(emulator), monotonic=clock)
    yield azure
    await azure.close()


def prefetching(simulators: int = 8, **pool: Any) -> Desired:
    spec = pool_spec(nodes={"dedicated": 2}, prefetchImages=True, **pool)
    return desired(simulation(simulators=simulators, image=IMAGE), pools={"sims": spec})


async def passes(
    backend: AzureBackend, want: Desired, emulator: BatchEmulator, n: int
) -> PassResult:
    result = None
    for _ in range(n):
        result = await run_pass(want, backend, clock_of(emulator))
        emulator.advance(5)
    assert result is not None
    return result


def operations(backend: AzureBackend) -> Counter[str]:
    return Counter({op: n for (op, _outcome), n in backend.request_counts().items()})


class TestBrokenNodes:
    async def test_a_bad_prefetch_image_shows_in_status_condition_and_metrics(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        emulator.break_image("cartpole:1.0")
        await passes(backend, prefetching(), emulator, 2)  # created, allocated and booted
        result = await run_pass(prefetching(), backend, clock_of(emulator))
        [pool] = result.status.pools
        assert pool.message.startswith("2 of 2 nodes unusable: ContainerInvalidImage: ")
        assert f"ImageName: {IMAGE}" in pool.message
        [condition] = pool.conditions
        assert (condition.status, str(condition.reason)) == (False, "NodesUnusable")
        assert pool.nodes == NodeStates(unusable=2)
        [sim] = result.status.simulations
        assert "8 pending on pool sims: 2 of 2 nodes unusable: ContainerInvalidImage" in sim.message
        document = pool_document(pool)
        assert document["nodes"]["unusable"] == 2
        assert document["conditions"][0]["reason"] == "NodesUnusable"
        assert "manifest unknown" in document["nodeErrors"][0]
        metrics = Metrics()
        metrics.observe_pass(result, ())
        text = metrics.render().decode()
        assert 'simfleet_pool_nodes{pool="sims",state="unusable"} 2.0' in text
        assert 'simfleet_pool_nodes{pool="sims",state="usable"} 0.0' in text

    async def test_infrastructure_faults_appear_and_clear(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        want = desired(simulation(simulators=4), pools={"sims": pool_spec(nodes={"dedicated": 2})})
        await passes(backend, want, emulator, 3)
        [node, _] = [n["id"] for n in emulator.nodes("sims")]
        emulator.make_unusable("sims", code="NodeUnusable", message="host fault", node_ids=[node])
        pool = (await run_pass(want, backend, clock_of(emulator))).status.pools[0]
        assert pool.message == "1 of 2 nodes unusable: NodeUnusable: host fault"
        emulator.recover_node("sims", node)
        emulator.advance(5)
        pool = (await run_pass(want, backend, clock_of(emulator))).status.pools[0]
        assert (pool.message, pool.node_errors, pool.conditions[0].status) == ("", (), True)

    async def test_a_failed_start_task_says_its_exit_code(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        # simfleet sets no start task; a pool adopted with one (made for the default fleet)
        body = pool_create(CreatePool("sims", pool_spec(), 1, 0), "default")
        body.start_task = m.BatchStartTask(command_line="/bin/sh -c setup")
        async with client_for(emulator) as client:
            await client.create_pool(body)
        emulator.fail_start_tasks("sims", exit_code=3)
        emulator.advance(10)
        observed = (await backend.observe(frozenset())).pools["sims"]
        assert observed.nodes == NodeStates(start_task_failed=1)
        assert observed.node_errors == (
            "start task, exit code 3: FailureExitCode: "
            "The task process exited with an unexpected exit code",
        )


class TestCost:
    async def test_one_filtered_listing_per_broken_pool_and_none_while_counts_stand(
        self, backend: AzureBackend, emulator: BatchEmulator, clock: Clock
    ) -> None:
        for name in ("sims", "more", "fine"):
            await backend.execute(CreatePool(name, pool_spec(), 2, 0))
        emulator.advance(10)
        emulator.make_unusable("sims")
        emulator.make_unusable("more", count=1)
        emulator.counters.reset()
        backend.requests.counts.clear()
        observed = await backend.observe()
        assert operations(backend) == Counter(
            {"GET /pools": 1, "GET /jobs": 1, "GET /nodecounts": 1, "GET /pools/{id}/nodes": 2}
        )
        for target in emulator.counters.targets(LIST_NODES):
            assert f"$filter={BROKEN_NODES_FILTER}" in target
            assert "$select=id,state,errors,startTaskInfo" in target
        assert observed.pools["more"].node_errors == (
            "NodeUnusable: The node is unusable because of an infrastructure failure",
        )
        assert observed.pools["fine"].node_errors == ()
        # the counts stand: the errors are reused, one request per pass for the counts
        backend.requests.counts.clear()
        for _ in range(3):
            clock.now += 5
            again = await backend.observe()
        assert operations(backend) == Counter(
            {"GET /pools": 3, "GET /jobs": 3, "GET /nodecounts": 3}
        )
        assert again.pools["more"].node_errors == observed.pools["more"].node_errors
        # a count moves: that pool alone is listed again; so is one whose listing aged
        emulator.make_unusable("more")
        backend.requests.counts.clear()
        await backend.observe()
        assert operations(backend)["GET /pools/{id}/nodes"] == 1
        clock.now += 600
        backend.requests.counts.clear()
        await backend.observe()
        assert operations(backend)["GET /pools/{id}/nodes"] == 2

    async def test_a_failing_error_listing_never_fails_the_pass(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await backend.execute(CreatePool("sims", pool_spec(), 2, 0))
        emulator.advance(10)
        emulator.make_unusable("sims", message="gone")
        emulator.faults.inject(
            Fault.status_code(404, "PoolNotFound"), operations={LIST_NODES}, times=1
        )
        observed = (await backend.observe()).pools["sims"]
        assert (observed.nodes, observed.node_errors) == (NodeStates(unusable=2), ())
        observed = (await backend.observe()).pools["sims"]  # tried again next pass
        assert observed.node_errors == ("NodeUnusable: gone",)


class TestPrefetch:
    async def test_off_by_default_and_on_when_asked(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        plain = desired(simulation(image=IMAGE), pools={"sims": pool_spec()})
        await run_pass(plain, backend, clock_of(emulator))
        container = emulator.pool("sims")["virtualMachineConfiguration"]["containerConfiguration"]
        assert "containerImageNames" not in container
        want = desired(
            simulation(image=IMAGE, pool="other"), pools={"other": pool_spec(prefetchImages=True)}
        )
        await run_pass(want, backend, clock_of(emulator))
        container = emulator.pool("other")["virtualMachineConfiguration"]["containerConfiguration"]
        assert container["containerImageNames"] == [IMAGE]
