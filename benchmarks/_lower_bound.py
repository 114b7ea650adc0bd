"""The lower-bound client: the same ``azure-batch`` aio SDK against the same emulator,
sending only the requests a figure cannot do without, with the same in-flight limit.

What "necessary" means, per figure:

* **Cold writes** (:func:`cold_writes`): the writes of simfleet's own first plan from
  nothing, with simfleet's own request bodies (``controller.backends.azure._mapping``):
  each pool's creation, one create-job per simulation and one addtaskcollection per 100
  tasks. Pools first; every job as soon as the pools are sent; each job's chunks as soon
  as that job exists; never more than ``in_flight`` requests outstanding. No reads: a
  client that already knows the account is empty. Because the bodies and ids are
  simfleet's, the same call also fills an emulator with a converged fleet for the
  figures that start from one.
* **Edit → acting request** (:func:`edit_round_trip`): after one simulation's file gains
  a simulator, a client must at least look at the pools (one listing: the pool may need
  to grow), look at that job (its task counts: its cached listing is still valid when
  they have not moved) and send the addtaskcollection; three requests one after another.
  The figure runs from the first request's start to the moment the emulator sees the
  third arrive (the daemon's figure ends at the same event). Reading the spec file and
  noticing the change are not counted: they cost no request (the daemon's watcher also
  lets a change settle for its debounce, 50 ms today: a setting, not a bound).
* **Per-request cost** (:func:`request_cost`): ``Pools_GetPool`` sent one after another on
  one kept-alive connection at 0 ms injected latency: the round trip a client sees and
  the time the emulator spends inside its handler. A response written in two parts on a
  kept-alive connection would show up here as ~40 ms (Nagle's algorithm meeting delayed
  ACKs), which would make the emulator, not simfleet, what every figure measures.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from _processes import Emulator, Fleet
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from controller.backends import DEFAULT_FLEET
from controller.backends.azure import _mapping
from controller.daemon import revision_key
from controller.planner import AddTasks, CreateJob, CreatePool, Observed, plan
from controller.reconcile import desired_state
from controller.spec import build_catalog, load_directory

CHUNK = 100  # Batch's limit per addtaskcollection
TASK_FILTER = "Tasks_CreateTaskCollection"


def client(emulator: Emulator) -> BatchClient:
    credential = AzureNamedKeyCredential(*emulator_credentials(emulator))
    return BatchClient(emulator.url, credential, retry_total=0)


def emulator_credentials(emulator: Emulator) -> tuple[str, str]:
    env = emulator.environ()
    return env["AZURE_BATCH_ACCOUNT"], env["AZURE_BATCH_ACCESS_KEY"]


@dataclass(frozen=True)
class Writes:
    """simfleet's first plan from nothing, as request bodies."""

    pools: tuple[m.BatchPoolCreateOptions, ...]
    jobs: dict[str, m.BatchJobCreateOptions]
    chunks: dict[str, list[list[m.BatchTaskCreateOptions]]]

    @property
    def count(self) -> int:
        return len(self.pools) + len(self.jobs) + sum(len(c) for c in self.chunks.values())


def first_plan(fleet: Fleet) -> Writes:
    """The writes simfleet's planner asks for on an empty account, for ``fleet``'s specs."""
    catalog = build_catalog(load_directory(fleet.specs))
    desired, errors = desired_state(catalog, {}, revision_key=revision_key(fleet.state_dir))
    if errors:
        raise ValueError(f"bench specs do not load: {errors}")
    actions = plan(desired, Observed(pools={}, jobs={}), datetime.now(UTC)).actions
    pools = tuple(
        _mapping.pool_create(a, DEFAULT_FLEET) for a in actions if isinstance(a, CreatePool)
    )
    jobs = {
        a.name: _mapping.job_create(a.name, a.pool, DEFAULT_FLEET)
        for a in actions
        if isinstance(a, CreateJob)
    }
    chunks: dict[str, list[list[m.BatchTaskCreateOptions]]] = {name: [] for name in jobs}
    for action in actions:
        if isinstance(action, AddTasks):
            bodies = [_mapping.task_create(action.job, action.template, t) for t in action.tasks]
            chunks[action.job] += [bodies[i : i + CHUNK] for i in range(0, len(bodies), CHUNK)]
    return Writes(pools, jobs, chunks)


async def _send(writes: Writes, batch: BatchClient, in_flight: int) -> None:
    limit = asyncio.Semaphore(in_flight)

    async def one(request: object) -> None:
        async with limit:
            await request  # type: ignore[misc]

    await asyncio.gather(*(one(batch.create_pool(p)) for p in writes.pools))

    async def job(name: str) -> None:
        await one(batch.create_job(writes.jobs[name]))
        await asyncio.gather(
            *(
                one(batch.create_task_collection(name, m.BatchTaskGroup(task_values=chunk)))
                for chunk in writes.chunks[name]
            )
        )

    await asyncio.gather(*(job(name) for name in writes.jobs))


def cold_writes(emulator: Emulator, fleet: Fleet, in_flight: int) -> Writes:
    """Send ``fleet``'s first plan to an empty emulator, ``in_flight`` at a time."""
    writes = first_plan(fleet)

    async def go() -> None:
        async with client(emulator) as batch:
            await _send(writes, batch, in_flight)

    asyncio.run(go())
    return writes


async def _edit_once(batch: BatchClient, emulator: Emulator, job: str, task_id: str) -> float:
    started = time.monotonic()
    mark = emulator.mark()
    _ = [p async for p in batch.list_pools(select=["id", "targetDedicatedNodes"])]
    await batch.get_job_task_counts(job)
    task = m.BatchTaskCreateOptions(id=task_id, command_line="sleep 3600")
    await batch.create_task_collection(job, m.BatchTaskGroup(task_values=[task]))
    arrived = next(r.arrived for r in emulator.requests(mark) if r.operation == TASK_FILTER)
    return arrived - started


def edit_round_trip(emulator: Emulator, pool: str, rounds: int) -> list[float]:
    """Seconds from the first request of a minimal reaction to an edit to the arrival of
    its addtaskcollection, ``rounds`` times (see the module docstring). The tasks go to a
    job of its own on ``pool``, which simfleet does not own and so never touches."""
    job = "lower-bound"

    async def go() -> list[float]:
        async with client(emulator) as batch:
            await batch.create_job(
                m.BatchJobCreateOptions(id=job, pool_info=m.BatchPoolInfo(pool_id=pool))
            )
            return [await _edit_once(batch, emulator, job, f"edit-{i}") for i in range(rounds)]

    return asyncio.run(go())


@dataclass(frozen=True)
class RequestCost:
    round_trip: float  # median seconds, client side
    handler: float  # median seconds inside the emulator (arrival → answer ready)


def request_cost(emulator: Emulator, pool: str, job: str, count: int) -> dict[str, RequestCost]:
    """One request after another on one connection (see the module docstring): ``get
    pool`` (the smallest answer), and an addtaskcollection of 100 tasks (the write every
    cold figure is made of; at 10 ms injected latency, 16 in flight cannot go faster than
    the emulator handles them one after another)."""

    async def timed(send: Callable[[int], Awaitable[object]]) -> list[float]:
        times = []
        for i in range(count):
            started = time.perf_counter()
            await send(i)
            times.append(time.perf_counter() - started)
        return times

    def chunk(i: int) -> m.BatchTaskGroup:
        tasks = [
            m.BatchTaskCreateOptions(id=f"cost-{i}-{n}", command_line="sleep 3600")
            for n in range(CHUNK)
        ]
        return m.BatchTaskGroup(task_values=tasks)

    async def go() -> dict[str, list[float]]:
        async with client(emulator) as batch:
            await batch.get_pool(pool)  # open the connection
            return {
                "get pool": await timed(lambda _: batch.get_pool(pool)),
                f"add {CHUNK} tasks": await timed(
                    lambda i: batch.create_task_collection(job, chunk(i))
                ),
            }

    mark = emulator.mark()
    times = asyncio.run(go())
    log = emulator.requests(mark)[1:]  # after the connection's first request
    inside = {"get pool": log[:count], f"add {CHUNK} tasks": log[count:]}
    return {
        name: RequestCost(
            statistics.median(times[name]),
            statistics.median(r.answered - r.arrived for r in inside[name]),
        )
        for name in times
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
