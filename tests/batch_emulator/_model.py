"""The emulated account's objects: pools, nodes, jobs, tasks and task files.

Each object keeps the JSON the client sent when creating it (`spec`, wire names, exactly
as received) plus the state Batch itself manages (states, timestamps, counters). The
`_render` module turns both into response bodies; the `_world`, `_pools` and `_jobs`
modules change the state. Ids are case-preserving but unique and looked up without regard
to case, as in Batch, so every registry is keyed by `key(id)`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ._clock import Event
from ._wire import new_etag, parse_duration

_order = itertools.count(1)


def key(ident: str) -> str:
    return ident.lower()


@dataclass
class Stamped:
    """ETag and last-modified time, renewed on every change the client can see."""

    created: float
    etag: str = field(default_factory=new_etag, init=False)
    last_modified: float = field(init=False)
    order: int = field(default_factory=lambda: next(_order), init=False)  # listing order

    def __post_init__(self) -> None:
        self.last_modified = self.created

    def touch(self, now: float) -> None:
        self.etag = new_etag()
        self.last_modified = now


@dataclass
class TaskFile:
    content: bytearray
    created: float
    modified: float


@dataclass
class Node:
    id: str
    pool_id: str
    dedicated: bool
    state: str  # BatchNodeState
    state_since: float
    allocated: float
    ip: str
    booted: float | None = None
    leaving: bool = False  # chosen for removal by a shrink or pool deletion
    running: dict[tuple[str, str], int] = field(default_factory=dict)  # (job key, task key)
    total_run: int = 0
    total_succeeded: int = 0
    event: Event | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)  # BatchNodeError bodies
    start_task_info: dict[str, Any] | None = None  # BatchStartTaskInfo, once it ran

    def set_state(self, state: str, now: float) -> None:
        if state != self.state:
            self.state, self.state_since = state, now

    def used_slots(self) -> int:
        return sum(self.running.values())

    @property
    def schedulable(self) -> bool:
        return not self.leaving and self.state in ("idle", "running")


@dataclass
class Pool(Stamped):
    id: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    state: str = "active"
    state_since: float = 0.0
    allocation_state: str = "steady"
    allocation_since: float = 0.0
    target_dedicated: int = 0
    target_low_priority: int = 0
    resize_timeout: float = 900.0
    resize_errors: list[dict[str, Any]] = field(default_factory=list)
    pending_errors: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, Node] = field(default_factory=dict)
    node_serial: int = 0
    draining: bool = False  # allocation done, waiting for leaving nodes to finish tasks
    event: Event | None = None
    # User-assigned managed identities (ARM resource ids): set only through ARM, read-only
    # on the data plane, and what a registry's `identityReference` must name to pull.
    identities: tuple[str, ...] = ()

    @property
    def slots_per_node(self) -> int:
        return int(self.spec.get("taskSlotsPerNode", 1))

    @property
    def fill_type(self) -> str:
        return str(self.spec.get("taskSchedulingPolicy", {}).get("nodeFillType", "spread"))

    def members(self, dedicated: bool) -> list[Node]:
        """Nodes of one kind that are staying in the pool."""
        return [n for n in self.nodes.values() if n.dedicated == dedicated and not n.leaving]


@dataclass
class Task(Stamped):
    id: str = ""
    job_id: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    seq: int = 0  # FIFO position; kept across requeues and retries
    state: str = "active"
    state_since: float = 0.0
    previous_state: str | None = None
    previous_since: float | None = None
    node: tuple[str, str] | None = None  # (pool id, node id) of the current/last run
    ever_ran: bool = False
    start_time: float | None = None
    end_time: float | None = None
    exit_code: int | None = None
    result: str | None = None
    failure_info: dict[str, Any] | None = None
    retry_count: int = 0
    last_retry: float | None = None
    requeue_count: int = 0
    last_requeue: float | None = None
    files: dict[str, TaskFile] = field(default_factory=dict)
    # (pool id, node id, node boot time) of the machine holding `files` (`_taskfiles`).
    files_home: tuple[str, str, float | None] | None = None
    events: list[Event] = field(default_factory=list)

    def set_state(self, state: str, now: float) -> None:
        if state == self.state:
            return
        self.previous_state, self.previous_since = self.state, self.state_since
        self.state, self.state_since = state, now
        self.touch(now)

    def cancel_events(self) -> None:
        for event in self.events:
            event.cancel()
        self.events.clear()

    @property
    def required_slots(self) -> int:
        return int(self.spec.get("requiredSlots", 1))

    def constraint_seconds(self, name: str) -> float | None:
        value = self.spec.get("constraints", {}).get(name)
        return None if value is None else parse_duration(value)

    @property
    def max_retries(self) -> int:
        return int(self.spec.get("constraints", {}).get("maxTaskRetryCount", 0))


@dataclass
class Job(Stamped):
    id: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    state: str = "active"
    state_since: float = 0.0
    previous_state: str | None = None
    previous_since: float | None = None
    end_time: float | None = None
    terminate_reason: str | None = None
    tasks: dict[str, Task] = field(default_factory=dict)
    event: Event | None = None

    def set_state(self, state: str, now: float) -> None:
        if state == self.state:
            return
        self.previous_state, self.previous_since = self.state, self.state_since
        self.state, self.state_since = state, now
        self.touch(now)

    @property
    def pool_id(self) -> str | None:
        value = self.spec.get("poolInfo", {}).get("poolId")
        return None if value is None else str(value)

    @property
    def priority(self) -> int:
        return int(self.spec.get("priority", 0))

    @property
    def max_parallel(self) -> int:
        return int(self.spec.get("maxParallelTasks", -1))
