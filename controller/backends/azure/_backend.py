"""The Azure Batch backend: one snapshot per pass from a few list calls, bulk task adds.

Observation costs, per pass: one ``list pools`` and one ``list jobs`` (both ``$select``),
one ``list pool node counts`` (every pool's, one page per 10 pools), one filtered
``list nodes`` per pool of this fleet whose broken nodes changed (:mod:`._nodes`), and
per simfleet job observed one ``task counts`` request, plus — only when the counts
moved, a task is preparing or simfleet changed the job — a listing of its pending tasks
(``$filter``) or of all of them, one page per 1,000 tasks
(:mod:`controller.backends.azure._observation`). Never one request per task. Only this
fleet's jobs cost anything beyond the job listing: another fleet's, a lease job or one
simfleet did not create is reported without its tasks (see :mod:`._mapping`). A scoped
observation (``observe(jobs)``) lists the pools and only the named jobs' tasks.
New simulators go through ``addtaskcollection`` in chunks of at most 100 (the reconciler
sends each chunk as its own ``execute``, under its one in-flight limit), each chunk with
a deadline of its own (the SDK's ``create_tasks`` would re-send server errors forever).
Long-running operations (resize, delete, removing nodes) are fired and left: the next
pass observes their effect. A pool shrinks only by removing idle nodes by name
(:mod:`._shrinking`). Pool writes go through one seam (:mod:`._poolwrites`): the data
plane, or Azure Resource Manager when the account's resource id is configured
(:mod:`._arm`), the only way to give a pool the managed identities its registries name.
Without ARM, the observation says so (``Observed.pool_identity_refusal``) and the planner
holds such pools. Removing nodes by name is a data-plane operation on either path.

Errors leave as :mod:`controller.backends._errors` classes; ``TaskExists``,
``JobExists``, ``PoolExists`` and "not found" on deletion mean the work is already done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any

from azure.batch import models as m
from azure.core.exceptions import AzureError, HttpResponseError

from controller.backends._errors import (
    BackendError,
    OutputGoneError,
    PermanentBackendError,
    TransientBackendError,
)
from controller.backends._fleets import DEFAULT_FLEET, check_fleet_name
from controller.backends._lease import Lease
from controller.backends._protocol import OutputChunk, OutputStream, byte_range
from controller.backends.azure import _arm, _mapping, _shrinking
from controller.backends.azure._client import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    AzureSettings,
    RequestCounter,
    WriteFence,
    make_client,
)
from controller.backends.azure._errors import code_of
from controller.backends.azure._lease import AzureLease
from controller.backends.azure._nodes import NodeHealth
from controller.backends.azure._observation import TaskObserver
from controller.backends.azure._poolwrites import DataPlanePools, PoolWrites
from controller.backends.azure._tails import StderrTails
from controller.backends.azure._throttle import Throttle
from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    NewTask,
    Observed,
    ObservedPool,
    ObservedTask,
    RecordLogin,
    RegistryLogin,
    ResizePool,
    ShrinkPool,
    StopTask,
    TaskTemplate,
)

CHUNK = 100  # Batch's limit per addtaskcollection request
#: A task file's answers that mean its output is gone, not that anything failed.
_FILES_GONE = frozenset({404, 409})
_ALREADY = frozenset({"PoolExists", "JobExists", "TaskExists"})
_GONE = frozenset(
    {
        "PoolNotFound",
        "JobNotFound",
        "TaskNotFound",
        "PoolBeingDeleted",
        "JobBeingDeleted",
        "TaskCompleted",
    }
)


class AzureBackend:
    """Azure Batch through ``azure.batch.aio``; satisfies :class:`controller.backends.Backend`."""

    name = "azure"
    tasks_per_request = CHUNK

    def __init__(
        self,
        settings: AzureSettings,
        *,
        concurrency: int = 4,
        chunk_deadline: float = 60.0,
        credential: Any = None,
        connection_verify: str | bool = True,
        listing_max_age: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
        fleet: str = DEFAULT_FLEET,
        lease: Lease | None = None,
        timeouts: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    ) -> None:
        """Prepare a client; nothing is sent before the first call.

        Args:
            settings: account, endpoint and key (or none for DefaultAzureCredential);
                with a subscription and resource group, pools are written through ARM.
            concurrency: task collections and task listings in flight at once.
            chunk_deadline: seconds one addtaskcollection request may take.
            credential: a token credential instead of the key / DefaultAzureCredential
                (with ARM configured it signs the ARM requests too).
            connection_verify: True, or the CA bundle of a private https endpoint.
            listing_max_age: seconds a job's task listing is reused while its task counts
                do not move (0: list every pass); bounds how long a lagging count can
                hide a change. The errors of a pool's broken nodes are reused as long.
            monotonic: the clock listing ages are measured with.
            fleet: the fleet this controller acts for: what it creates carries it, and
                only its objects are changed (see :mod:`._mapping`).
            lease: the fleet's lease: no write leaves while it is not held (the fence),
                and every request names its holder identity. None: unfenced (tests,
                and tools that never write).
            timeouts: seconds to connect, and to wait for an answer (a hung request
                fails as unreachable instead of stalling the pass).

        Raises:
            ValueError: ``fleet`` is not a fleet name, or not the lease's fleet.
            PermanentBackendError: ARM is configured (``settings.arm``) but the only
                credential is the shared key, which cannot sign ARM requests.
        """
        self.fleet = check_fleet_name(fleet)
        if lease is not None and lease.fleet != self.fleet:
            raise ValueError(f"the lease of fleet {lease.fleet!r} cannot fence fleet {fleet!r}")
        if settings.arm and credential is None and settings.access_key:
            raise PermanentBackendError(_arm.KEY_CANNOT_SIGN, code="MissingConfiguration")
        # counted with the lease's requests, for one figure per operation in /metrics
        self.requests = lease.requests if isinstance(lease, AzureLease) else RequestCounter()
        identity = lease.identity if lease is not None else ""
        fence = WriteFence(lease.valid, lease.fleet) if lease is not None else None
        self._client, self._credential = make_client(
            settings,
            self.requests,
            credential=credential,
            connection_verify=connection_verify,
            identity=identity,
            fence=fence,
            timeouts=timeouts,
        )
        self._pool_writes: PoolWrites = DataPlanePools(self._client)
        self._identity_refusal = _arm.NO_ARM
        if settings.arm:  # the token credential make_client chose signs ARM requests too
            self._pool_writes = _arm.ArmPools(
                settings,
                self.requests,
                self._credential,
                connection_verify=connection_verify,
                identity=identity,
                fence=fence,
                timeouts=timeouts,
            )
            self._identity_refusal = ""
        self._limit = asyncio.Semaphore(concurrency)
        self._chunk_deadline = chunk_deadline
        self._tasks = TaskObserver(self._client, max_age=listing_max_age, clock=monotonic)
        self._tails = StderrTails(self._read_limited, self._secret_values)
        self._throttle = lease.throttle if isinstance(lease, AzureLease) else Throttle()
        self._nodes = NodeHealth(
            self._client, self._throttle, max_age=listing_max_age, clock=monotonic
        )

    # ----------------------------------------------------------------------- observing

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        """Every pool, and every job (``jobs`` None) or only the named ones that exist.

        A scope still costs one listing of all jobs (``$select``, one request per 1,000
        jobs): cheaper than one request per named job, and it tells which are gone.
        ``frozenset()`` observes the pools alone.
        """
        try:
            self._throttle.hold()
            # One listing after the other, not both at once: a 429 on the first must stop
            # the second from being sent at all (a request in flight cannot be called
            # back, and the emulator counts it as sent inside the Retry-After window).
            pools = await self._pools()
            listed = await self._jobs(jobs)
            if jobs != frozenset():
                alive = {j.id for j in listed}
                self._tasks.forget_except(alive)
                self._tails.forget_except(alive)
            wanted = [
                j
                for j in listed
                if jobs is None or j.id in jobs or _mapping.simulation_mark(j) in jobs
            ]
            # a job being deleted has nothing to count, and may be gone by the time we ask
            owned = [
                j.id
                for j in wanted
                if _mapping.owned(j.metadata, self.fleet) and not _mapping.deleting(j)
            ]
            pools, tasks = await asyncio.gather(
                self._with_nodes(pools),
                asyncio.gather(*(self._tasks_of(job) for job in owned)),
            )
        except Exception as exc:
            raise self._throttle.classified(exc, "observe") from exc
        by_job = dict(zip(owned, tasks, strict=True))
        return Observed(
            pools={p.name: p for p in pools},
            jobs={
                j.id: _mapping.observed_job(j, by_job.get(j.id) or (), self.fleet)
                for j in wanted
                if j.id not in by_job or by_job[j.id] is not None  # None: gone meanwhile
            },
            pool_identity_refusal=self._identity_refusal,
        )

    async def _pools(self) -> list[ObservedPool]:
        return [
            _mapping.observed_pool(p, self.fleet)
            async for p in self._client.list_pools(select=_mapping.POOL_SELECT)
        ]

    async def _with_nodes(self, pools: list[ObservedPool]) -> list[ObservedPool]:
        """The pools with their node counts, and the errors of this fleet's broken nodes
        (see :mod:`._nodes`: one request for the counts of every pool, one more per pool
        whose broken nodes changed).

        ``currentDedicatedNodes`` counts a node from its allocation on, minutes before it
        can run anything, and goes on counting one that never will; the counts tell
        ``apply --wait`` that nothing can start yet, and status why. A pool the counts
        do not list (created since) reports None: its current nodes count.
        """
        counts = await self._nodes.counts()
        self._nodes.forget_except(set(counts))
        mine = [p for p in pools if p.owned and p.name in counts]
        errors = dict(
            zip(
                [p.name for p in mine],
                await asyncio.gather(*(self._nodes.errors(p.name, counts[p.name]) for p in mine)),
                strict=True,
            )
        )
        return [
            dataclasses.replace(
                p,
                usable_nodes=states.usable,
                nodes=states,
                node_errors=errors.get(p.name, ()),
            )
            if (states := counts.get(p.name)) is not None
            else p
            for p in pools
        ]

    async def _jobs(self, jobs: frozenset[str] | None) -> list[m.BatchJob]:
        """Every job (``$select``), unless the scope is empty: a pools-only observation."""
        if jobs == frozenset():
            return []
        return [j async for j in self._client.list_jobs(select=_mapping.JOB_SELECT)]

    async def _tasks_of(self, job: str) -> tuple[ObservedTask, ...] | None:
        """The job's tasks (stderr tails filled in where they can be read); None when the
        job was deleted between the job listing and this request: it is gone."""
        async with self._limit:
            self._throttle.hold()  # another listing may have been throttled meanwhile
            try:
                tasks = await self._tasks.tasks(job)
            except Exception as exc:
                error = self._throttle.classified(exc, f"list tasks of {job}")
                if error.code == "JobNotFound":
                    return None
                raise error from exc
        return await self._tails.fill(job, tasks)

    async def _read_limited(
        self, job: str, task_id: str, stream: OutputStream, offset: int
    ) -> OutputChunk:
        async with self._limit:
            return await self.read_output(job, task_id, stream, offset)

    async def _secret_values(self, job: str, task_id: str, names: tuple[str, ...]) -> list[str]:
        """A task's own values of its secrets, to mask its stderr tail against."""
        async with self._limit:
            self._throttle.hold()
            try:
                task = await self._client.get_task(
                    job, task_id, select=["id", "environmentSettings"]
                )
            except AzureError as exc:  # a side read: its caller decides what a failure costs
                raise self._throttle.classified(exc, f"read the secrets of {task_id}") from exc
        return _mapping.secret_values(task, names)

    # ----------------------------------------------------------------------- executing

    async def execute(self, action: Action) -> None:
        """Carry out one action. Safe to call concurrently: what calls share is the SDK
        client (made for it), the ``Retry-After`` mark (only ever extended) and the
        observation memory, which numbers changes instead of dropping listings, so an
        observation in flight cannot lose one (see :mod:`._listings`)."""
        self._tasks.changed(action)
        match action:
            case CreatePool():
                await self._call(
                    self._pool_writes.create(_mapping.pool_create(action, self.fleet)),
                    f"create pool {action.name}",
                    ok=_ALREADY,
                )
            case ResizePool(name, dedicated, spot):
                await self._call(
                    self._pool_writes.resize(name, dedicated, spot), f"resize pool {name}"
                )
            case ShrinkPool():
                await self._shrink(action)
            case DeletePool(name):
                await self._call(self._pool_writes.delete(name), f"delete pool {name}", ok=_GONE)
            case CreateJob(name, pool, simulation):
                job_body = _mapping.job_create(name, pool, self.fleet, simulation)
                await self._call(
                    self._client.create_job(job_body),
                    f"create job {name}",
                    ok=_ALREADY,
                )
            case DeleteJob(name):
                await self._call(
                    self._client.begin_delete_job(name), f"delete job {name}", ok=_GONE
                )
            case AddTasks(job, template, tasks, _, login):
                await self._add_tasks(job, template, tasks, login, action.simulation)
            case RecordLogin(name):
                await self._call(
                    self._client.update_pool(name, _mapping.pool_login_update(action, self.fleet)),
                    f"record the registry login of pool {name}",
                )
            case StopTask(job, task_id):
                await self._call(
                    self._client.terminate_task(job, task_id), f"terminate task {task_id}", ok=_GONE
                )
            case DeleteTask(job, task_id):
                await self._call(
                    self._client.delete_task(job, task_id), f"delete task {task_id}", ok=_GONE
                )

    async def _shrink(self, action: ShrinkPool) -> None:
        """Remove idle nodes by name, or lower targets no node stands above (see
        :mod:`._shrinking`); a pool without idle nodes to remove is left for a later pass."""
        name = action.name
        if not _shrinking.needs_removal(action):  # lowering targets removes nothing
            await self._call(
                self._pool_writes.resize(name, action.dedicated, action.spot),
                f"resize pool {name}",
            )
            return
        doing = f"list idle nodes of pool {name}"
        try:
            self._throttle.hold()
            idle = [
                (node.id or "", bool(node.is_dedicated))
                async for node in self._client.list_nodes(
                    name, filter=_shrinking.IDLE_FILTER, select=_shrinking.IDLE_SELECT
                )
            ]
        except Exception as exc:
            raise self._throttle.classified(exc, doing) from exc
        nodes = _shrinking.chosen(action, idle)
        if nodes:
            await self._call(
                self._client.begin_remove_nodes(name, _shrinking.removal(nodes)),
                f"remove {len(nodes)} idle node(s) of pool {name}",
            )

    async def _call(self, request: Any, doing: str, ok: frozenset[str] = frozenset()) -> Any:
        try:
            self._throttle.hold()
            return await request
        except HttpResponseError as exc:
            if code_of(exc) in ok:
                return None
            raise self._throttle.classified(exc, doing) from exc
        except Exception as exc:
            raise self._throttle.classified(exc, doing) from exc
        finally:
            if inspect.iscoroutine(request):
                request.close()  # refused inside a Retry-After window: never sent, never awaited

    async def _add_tasks(
        self,
        job: str,
        template: TaskTemplate,
        tasks: tuple[NewTask, ...],
        login: RegistryLogin | None,
        simulation: str = "",
    ) -> None:
        bodies = [_mapping.task_create(job, template, t, login, simulation) for t in tasks]
        chunks = [bodies[i : i + CHUNK] for i in range(0, len(bodies), CHUNK)]
        results = await asyncio.gather(
            *(self._add_chunk(job, chunk) for chunk in chunks), return_exceptions=True
        )
        problems: list[BaseException] = []
        for result in results:
            problems.extend(result if isinstance(result, list) else [result])
        if not problems:
            return
        detail = "; ".join(str(p) for p in problems[:5])
        transient = [p for p in problems if isinstance(p, TransientBackendError)]
        throttled = any(p.retry_after for p in transient)
        if throttled or len(transient) == len(problems):  # a Retry-After rules the whole pass
            retry = max((e.retry_after or 0.0 for e in transient), default=0.0) or None
            raise TransientBackendError(
                f"add tasks to {job}: {detail}", code=transient[0].code, retry_after=retry
            )
        permanent = next(p for p in problems if not isinstance(p, TransientBackendError))
        raise PermanentBackendError(
            f"add tasks to {job}: {detail}", code=getattr(permanent, "code", None)
        )

    async def _add_chunk(
        self, job: str, chunk: list[m.BatchTaskCreateOptions]
    ) -> list[BackendError]:
        """Send one collection; return the per-task failures that are not "already there"
        (``servererror`` ones transient, ``clienterror`` ones permanent).

        A collection over Batch's 1 MB limit is split in halves. No limit of its own: the
        reconciler's in-flight limit counts every chunk it sends (one per ``execute``).
        """
        try:
            async with asyncio.timeout(self._chunk_deadline):
                self._throttle.hold()  # a sibling chunk may have been throttled
                result = await self._client.create_task_collection(
                    job, m.BatchTaskGroup(task_values=chunk)
                )
        except HttpResponseError as exc:
            if code_of(exc) == "RequestBodyTooLarge" and len(chunk) > 1:
                half = len(chunk) // 2
                halves = await asyncio.gather(
                    self._add_chunk(job, chunk[:half]), self._add_chunk(job, chunk[half:])
                )
                return halves[0] + halves[1]
            raise self._throttle.classified(exc, f"add {len(chunk)} tasks to {job}") from exc
        except Exception as exc:
            raise self._throttle.classified(exc, f"add {len(chunk)} tasks to {job}") from exc
        failures: list[BackendError] = []
        for item in result.result_values or ():
            code = item.error.code if item.error is not None else None
            status = _mapping_value(item.status)
            if status == "success" or code in _ALREADY:
                continue
            kind = TransientBackendError if status == "servererror" else PermanentBackendError
            failures.append(kind(f"{item.task_id}: {code or status}", code=code))
        return failures

    # ---------------------------------------------------------------------------- output

    async def read_output(
        self,
        job: str,
        task_id: str,
        stream: OutputStream,
        offset: int = 0,
        length: int | None = None,
    ) -> OutputChunk:
        path = f"{stream}.txt"
        doing = f"read {path} of {task_id}"
        try:
            self._throttle.hold()
            props = await self._client.get_task_file_properties(job, task_id, path)
            size = int(props.content_length)
            start, end = byte_range(offset, length, size)
            if end <= start:
                return OutputChunk(b"", start, size)
            parts = await self._client.download_task_file(
                job, task_id, path, ocp_range=f"bytes={start}-{end - 1}"
            )
            data = b"".join([part async for part in parts])
        except HttpResponseError as exc:
            if exc.status_code in _FILES_GONE:
                raise _gone(exc, doing) from exc
            raise self._throttle.classified(exc, doing) from exc
        except AzureError as exc:  # a connection dropped mid-answer
            raise self._throttle.classified(exc, doing) from exc
        return OutputChunk(data, start, size)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Batch pushes nothing; the daemon's resync and follow-up passes observe changes."""

    def forget(self) -> None:
        """Drop every cached task listing: after a time as standby, another controller
        may have replaced tasks without moving their counts."""
        self._tasks.forget_except(set())
        self._nodes.forget_except(set())

    async def close(self, *, stop_simulators: bool = False) -> None:
        """Close the HTTP session. Simulators on Batch keep running: that is the point."""
        del stop_simulators
        await self._pool_writes.close()
        await self._client.close()
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()

    def request_counts(self) -> Mapping[tuple[str, str], int]:
        """Requests sent so far by (operation, outcome)."""
        return dict(self.requests.counts)


def _gone(exc: HttpResponseError, doing: str) -> OutputGoneError:
    """A task's file that Batch no longer has (or never had), said as one line.

    404: the node that held the files left the pool (or the task or file is gone); 409:
    Batch has no files for the task (never started, retention time over, node
    reclaimed). The file's properties are read with HEAD, whose error answers carry no
    body: then the status is all there is to name.
    """
    code = code_of(exc)
    answer = f"{exc.status_code} {code}" if code else str(exc.status_code)
    return OutputGoneError(
        f"{doing}: {answer}: not available any more: Batch keeps a task's files on the "
        f"node that ran it, only while the node is in the pool and for the task's "
        f"retention time (7 days by default); a task that never started has none",
        code=code,
    )


def _mapping_value(status: Any) -> str:
    return str(getattr(status, "value", status) or "").lower()
