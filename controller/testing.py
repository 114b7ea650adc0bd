"""Fakes that tests and users share: a controllable clock, an in-memory backend and a
stand-in for the daemon's ``/status``.

:class:`FakeBackend` behaves like a tiny, instant Azure Batch: pools get their nodes at
once, tasks run as soon as a slot is free, stops take effect at once. It satisfies the
:class:`controller.backends.Backend` protocol, so the planner, ``run_pass`` and the daemon
can be exercised without processes or HTTP — the way structlog ships ``testing.py``.
Scenario tests still run the real backends; this is for properties and fast unit tests.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from controller.backends import (
    TAIL_LINES,
    OutputChunk,
    OutputStream,
    PermanentBackendError,
    byte_range,
    redacted_tail,
)
from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    ExitInfo,
    ExitReason,
    NodeStates,
    Observed,
    ObservedJob,
    ObservedPool,
    ObservedTask,
    PoolConfig,
    RecordLogin,
    ResizePool,
    ShrinkPool,
    SimulatorState,
    StopTask,
)
from controller.spec import PoolSpec

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeClock:
    """A clock that only moves when told to."""

    current: datetime = EPOCH

    def __call__(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        """Seconds since :data:`EPOCH` on this clock (it never goes back)."""
        return (self.current - EPOCH).total_seconds()

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` and return the new time."""
        self.current += timedelta(seconds=seconds)
        return self.current


@dataclass
class _Job:
    pool: str
    owned: bool = True
    tasks: dict[str, ObservedTask] = field(default_factory=dict)
    created_at: datetime | None = None
    owner: str = ""
    simulation: str = ""  # its simulation, when not its own id (see ``CreateJob``)


class FakeBackend:
    """An in-memory, instant backend with Batch's rules on capacity and ownership.

    Attributes:
        observations: the ``jobs`` argument of every ``observe`` call, in order (None: a
            full observation), for tests that count requests.
        nodes_arrive: False: a pool's nodes stay at zero (its targets are set) until
            :meth:`grant_nodes`, as on Batch while nodes boot.
    """

    name = "fake"
    tasks_per_request = 10_000

    def __init__(
        self, clock: Callable[[], datetime] | None = None, *, nodes_arrive: bool = True
    ) -> None:
        self.clock = clock or FakeClock()
        self.nodes_arrive = nodes_arrive
        self.pools: dict[str, ObservedPool] = {}
        self.jobs: dict[str, _Job] = {}
        self.executed: list[Action] = []
        self.observations: list[frozenset[str] | None] = []
        self.forgotten = 0  # how often forget() was called
        self.output: dict[tuple[str, str, OutputStream], bytes] = {}
        self._callbacks: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ Backend protocol

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        self.observations.append(jobs)
        return self.snapshot(jobs)

    async def execute(self, action: Action) -> None:
        self.apply(action)

    async def read_output(
        self,
        job: str,
        task_id: str,
        stream: OutputStream,
        offset: int = 0,
        length: int | None = None,
    ) -> OutputChunk:
        if job not in self.jobs or task_id not in self.jobs[job].tasks:
            raise PermanentBackendError(f"no task {task_id} in {job}", code="TaskNotFound")
        data = self.output.get((job, task_id, stream), b"")
        start, end = byte_range(offset, length, len(data))
        return OutputChunk(data[start:end], start, len(data))

    def forget(self) -> None:
        """Nothing cached: every observation reads the fake's own records (counted in
        ``forgotten``, for tests of a controller taking a fleet over)."""
        self.forgotten += 1

    def request_counts(self) -> Mapping[tuple[str, str], int]:
        """No HTTP requests: nothing to count."""
        return {}

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    async def close(self, *, stop_simulators: bool = False) -> None:
        if stop_simulators:
            for name, job in self.jobs.items():
                for task in list(job.tasks.values()):
                    if task.live:
                        self._end(name, task.id, ExitInfo(ExitReason.STOPPED))

    # --------------------------------------------------------------------- synchronous API

    def snapshot(self, jobs: frozenset[str] | None = None) -> Observed:
        """The current state as one immutable value (every pool; the ``jobs`` named, or
        all of them when None)."""
        return Observed(
            pools={name: self._counted(pool) for name, pool in self.pools.items()},
            jobs={
                name: ObservedJob(
                    name,
                    job.pool,
                    job.owned,
                    tasks=tuple(job.tasks.values()),
                    created_at=job.created_at,
                    owner=job.owner,
                    simulation=job.simulation,
                )
                for name, job in self.jobs.items()
                if jobs is None or (job.simulation or name) in jobs
            },
        )

    def apply(self, action: Action) -> None:
        """Carry out one action at once."""
        self.executed.append(action)
        now = self.clock()
        match action:
            case CreatePool() | RecordLogin() | ResizePool() | ShrinkPool() | DeletePool():
                self._apply_to_pool(action)
            case CreateJob(name, pool, simulation):
                self.jobs.setdefault(name, _Job(pool, created_at=now, simulation=simulation))
            case DeleteJob(name):
                self.jobs.pop(name, None)
            case AddTasks(job, template, tasks):
                if job not in self.jobs:
                    raise PermanentBackendError(f"job {job} does not exist", code="JobNotFound")
                for new in tasks:
                    self.jobs[job].tasks.setdefault(
                        new.id,
                        ObservedTask(
                            new.id,
                            new.slot,
                            new.revision,
                            new.attempt,
                            SimulatorState.PENDING,
                            now,
                            restarts=new.restarts,
                            failures=new.failures,
                            image=template.image,
                            run_options=template.container_run_options,
                        ),
                    )
            case StopTask(job, task_id):
                task = self._tasks(job).get(task_id)
                if task is not None and task.live:
                    self._end(job, task_id, ExitInfo(ExitReason.STOPPED))
                    self._notify()  # it ended: the local backend says so too
            case DeleteTask(job, task_id):
                self._tasks(job).pop(task_id, None)
        self.schedule()

    def _apply_to_pool(
        self, action: CreatePool | RecordLogin | ResizePool | ShrinkPool | DeletePool
    ) -> None:
        match action:
            case CreatePool(name, spec, dedicated, spot):
                if name not in self.pools:
                    self.pools[name] = ObservedPool(
                        name,
                        True,
                        PoolConfig.of(spec),
                        target_dedicated=dedicated,
                        target_spot=spot,
                        login_digest=action.login_digest,  # recorded as Batch metadata is
                        spec_pool="" if action.spec_pool == name else action.spec_pool,
                    )
                    self._arrive(name)
            case RecordLogin(name, _, digest):
                self.pools[name] = dataclasses.replace(self._pool(name), login_digest=digest)
            case ResizePool(name, dedicated, spot):
                self.pools[name] = dataclasses.replace(
                    self._pool(name), target_dedicated=dedicated, target_spot=spot
                )
                self._arrive(name)
            case ShrinkPool():
                self._shrink(action)
            case DeletePool(name):
                self.pools.pop(name, None)
                self._requeue_on(name)

    def grant_nodes(self, pool: str) -> None:
        """Let a pool's nodes arrive (with ``nodes_arrive=False``), as a boot finishing."""
        self.pools[pool] = dataclasses.replace(
            self.pools[pool],
            current_dedicated=self.pools[pool].target_dedicated,
            current_spot=self.pools[pool].target_spot,
        )
        self.schedule()

    def _arrive(self, pool: str) -> None:
        if self.nodes_arrive:
            self.grant_nodes(pool)

    def _notify(self) -> None:
        """Tell the ``on_change`` callbacks, as the local backend does when a simulator
        started or ended (here a start comes as soon as a slot is free, an end as soon as
        it was stopped)."""
        for callback in self._callbacks:
            callback()

    def schedule(self) -> None:
        """Start pending tasks while their pool has free slots (oldest first); say so."""
        started = False
        now = self.clock()
        for pool_name, pool in self.pools.items():
            capacity = pool.usable * pool.config.task_slots_per_node  # broken nodes run nothing
            members = [
                (job_name, task)
                for job_name, job in self.jobs.items()
                if job.pool == pool_name
                for task in job.tasks.values()
            ]
            running = sum(1 for _, t in members if t.state is SimulatorState.RUNNING)
            pending = sorted(
                ((j, t) for j, t in members if t.state is SimulatorState.PENDING),
                key=lambda jt: (jt[1].created_at, jt[1].id),
            )
            for job_name, task in pending[: max(0, capacity - running)]:
                self.jobs[job_name].tasks[task.id] = dataclasses.replace(
                    task, state=SimulatorState.RUNNING, started_at=now
                )
                started = True
        if started:
            self._notify()

    def crash(
        self, job: str, task_id: str, exit_code: int = 1, stderr: str = "", stdout: str = ""
    ) -> None:
        """Make a running simulator exit, as a crash would, having written ``stdout`` and
        ``stderr`` (read back with ``read_output``; the exit keeps the stderr tail the
        real backends keep: its last ``TAIL_LINES`` lines)."""
        for stream, text in ((OutputStream.STDOUT, stdout), (OutputStream.STDERR, stderr)):
            self.output[job, task_id, stream] = self.output.get((job, task_id, stream), b"") + (
                text.encode()
            )
        reason = ExitReason.SUCCEEDED if exit_code == 0 else ExitReason.FAILED
        tail = redacted_tail(stderr.encode(), (), cut=False, lines=TAIL_LINES)
        info = ExitInfo(
            reason, exit_code, message=f"exited with code {exit_code}", stderr_tail=tail
        )
        self._end(job, task_id, info)
        self.schedule()
        self._notify()

    def add_foreign_job(self, name: str, pool: str, owner: str = "") -> None:
        """A job someone else created: simfleet must never touch it.

        ``owner``: whose it is, as a backend says it (``"fleet 'b'"``); "" for a job
        simfleet did not create at all.
        """
        self.jobs[name] = _Job(pool, owned=False, owner=owner)

    def add_foreign_pool(self, name: str, spec: PoolSpec, owner: str = "", nodes: int = 1) -> None:
        """A pool someone else created (``owner`` as for :meth:`add_foreign_job`), with
        ``nodes`` dedicated nodes: simfleet must never resize or delete it."""
        self.pools[name] = ObservedPool(
            name,
            False,
            PoolConfig.of(spec),
            target_dedicated=nodes,
            current_dedicated=nodes,
            owner=owner,
        )

    def live_tasks(self, job: str) -> list[ObservedTask]:
        """The pending and running tasks of a job."""
        return [t for t in self.jobs[job].tasks.values() if t.live] if job in self.jobs else []

    def _shrink(self, action: ShrinkPool) -> None:
        """Remove idle nodes only, as the Azure backend does: running tasks are packed onto
        as few nodes as hold them, and those stay."""
        pool = self._pool(action.name)
        running = sum(
            1
            for job in self.jobs.values()
            if job.pool == action.name
            for t in job.tasks.values()
            if t.state is SimulatorState.RUNNING
        )
        busy = -(-running // pool.config.task_slots_per_node)
        dedicated, spot = action.targets_after(busy)
        self.pools[action.name] = dataclasses.replace(
            pool,
            target_dedicated=dedicated,
            target_spot=spot,
            current_dedicated=min(pool.current_dedicated, dedicated),
            current_spot=min(pool.current_spot, spot),
        )

    def _requeue_on(self, pool: str) -> None:
        """A pool's nodes are gone: its running tasks wait again, as Batch requeues them."""
        for job in self.jobs.values():
            if job.pool == pool:
                for task in list(job.tasks.values()):
                    if task.state is SimulatorState.RUNNING:
                        job.tasks[task.id] = dataclasses.replace(
                            task, state=SimulatorState.PENDING, started_at=None
                        )

    def break_nodes(self, pool: str, nodes: NodeStates, errors: tuple[str, ...] = ()) -> None:
        """Report the pool's nodes as ``nodes`` (some unusable, say) with these errors,
        until :meth:`heal_nodes`; its current counts stay as they are, as on Batch."""
        self.pools[pool] = dataclasses.replace(
            self._pool(pool), nodes=nodes, usable_nodes=nodes.usable, node_errors=errors
        )

    def heal_nodes(self, pool: str) -> None:
        """Every node of the pool is usable again."""
        self.pools[pool] = dataclasses.replace(
            self._pool(pool), nodes=None, usable_nodes=None, node_errors=()
        )

    @staticmethod
    def _counted(pool: ObservedPool) -> ObservedPool:
        """A pool as observed: every current node usable, unless broken on purpose."""
        if pool.nodes is not None:
            return pool
        usable = pool.current_dedicated + pool.current_spot
        return dataclasses.replace(pool, nodes=NodeStates(usable=usable))

    def _pool(self, name: str) -> ObservedPool:
        if name not in self.pools:
            raise PermanentBackendError(f"no pool {name}", code="PoolNotFound")
        return self.pools[name]

    def _tasks(self, job: str) -> dict[str, ObservedTask]:
        """A job's tasks; none for a job that is gone (a stop or delete of a task in a
        job that is gone is done, as Batch's ``JobNotFound`` is taken to mean)."""
        return self.jobs[job].tasks if job in self.jobs else {}

    def _end(self, job: str, task_id: str, info: ExitInfo) -> None:
        task = self.jobs[job].tasks[task_id]
        self.jobs[job].tasks[task_id] = dataclasses.replace(
            task, state=SimulatorState.EXITED, exited_at=self.clock(), exit=info
        )


@contextmanager
def status_endpoint(next_document: Callable[[], Any | None]) -> Iterator[str]:
    """``HOST:PORT`` of a stand-in for the daemon's ``/status`` on loopback, for the
    commands that read it (``status``): each GET answers ``next_document()`` as JSON,
    or 503 (as a daemon still starting) when that is None."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            document = next_document()
            if document is None:
                self.send_error(503)
                return
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
