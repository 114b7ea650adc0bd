"""Observed state: one snapshot of the backend, as backends report it.

Every value is frozen: a pass reads one snapshot and never mutates it. Times are
timezone-aware ``datetime`` values handed in by the backend; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from controller.spec import NodeImage, PoolSpec, Registry


class SimulatorState(StrEnum):
    """Where one simulator (a Batch task) is in its life."""

    PENDING = "pending"  # added, waiting for a slot on the pool (Batch: active/preparing)
    RUNNING = "running"
    EXITED = "exited"  # Batch: completed


class ExitReason(StrEnum):
    """Why a simulator is no longer running."""

    SUCCEEDED = "succeeded"  # exit code 0
    FAILED = "failed"  # non-zero exit code or a Batch failure such as an image pull error
    STOPPED = "stopped"  # terminated on purpose by simfleet (scale down, rollout, shutdown)
    LOST = "lost"  # the runtime lost track of it (node gone, process vanished)


class PoolState(StrEnum):
    """A pool's allocation state, as Batch reports it."""

    STEADY = "steady"
    RESIZING = "resizing"
    STOPPING = "stopping"
    DELETING = "deleting"


class JobState(StrEnum):
    """A job's state; only ``active`` jobs take new tasks."""

    ACTIVE = "active"
    TERMINATING = "terminating"
    COMPLETED = "completed"
    DELETING = "deleting"
    DISABLED = "disabled"  # Batch's disabling, disabled and enabling


@dataclass(frozen=True)
class ExitInfo:
    """The last words of a simulator: shown in status, used for back-off decisions."""

    reason: ExitReason
    exit_code: int | None = None
    failure_code: str | None = None  # Batch's failureInfo.code, e.g. ContainerInvalidImage
    message: str = ""
    stderr_tail: str = ""

    @property
    def is_failure(self) -> bool:
        """A failure for ``restartPolicy: OnFailure``: anything but a clean exit 0."""
        return self.reason is not ExitReason.SUCCEEDED


@dataclass(frozen=True)
class ObservedTask:
    """One simulator as the backend reports it.

    ``slot``, ``revision`` and ``attempt`` come from the deterministic task id;
    ``restarts`` and ``failures`` were written beside the task when it was created (the
    retry state travels with the task, so a restarted controller knows it).
    """

    id: str
    slot: int
    revision: str
    attempt: int
    state: SimulatorState
    created_at: datetime
    started_at: datetime | None = None
    exited_at: datetime | None = None
    exit: ExitInfo | None = None
    restarts: int = 0
    failures: int = 0  # consecutive failures before this attempt started
    pid: int | None = None
    # Batch requeueCount: how often a shrink or node removal someone asked for sent it
    # back to the queue (a Spot preemption or a failed node does not count). Reported,
    # never planned on: a requeued task is the same simulator, not a restart.
    requeues: int = 0
    stopping: bool = False  # a stop was sent and it is still ending: holds its slot
    #: Pending, but on a node already, which gets its container ready: the image pull
    #: (minutes, the first time) and the container's creation (Batch: ``preparing``).
    starting: bool = False
    image: str = ""  # the container image it runs, when the backend reports it
    secret_names: tuple[str, ...] = ()  # its secretEnv names, when the backend reports them
    run_options: str | None = None  # its containerRunOptions, when the backend reports them
    #: Set by the planner, never a backend: the job of a task that is not in its
    #: simulation's current job (a pool replacement moves it; see ``_replacement``).
    job: str = ""

    @property
    def live(self) -> bool:
        """Pending or running: it holds its slot."""
        return self.state is not SimulatorState.EXITED


@dataclass(frozen=True)
class ObservedJob:
    """A Batch job (one per Simulation) and its tasks.

    ``owned``: it belongs to this controller's fleet. Another fleet's job, or one simfleet
    did not create, is reported with no tasks and ``owner`` saying whose it is.
    """

    name: str
    pool: str
    owned: bool
    state: JobState = JobState.ACTIVE
    tasks: tuple[ObservedTask, ...] = ()
    created_at: datetime | None = None
    owner: str = ""  # whose it is when not owned, in words ("fleet 'b'"); "": not simfleet's
    #: The simulation it belongs to when its id is not the simulation's name (a job on a
    #: replacement pool, see ``_replacement``); "": its own id.
    simulation: str = ""


@dataclass(frozen=True)
class PoolConfig:
    """The fields of a pool that Batch cannot change while it has nodes."""

    vm_size: str
    task_slots_per_node: int
    node_image: NodeImage
    registries: tuple[Registry, ...] = ()

    @classmethod
    def of(cls, spec: PoolSpec) -> PoolConfig:
        """The immutable part of a pool spec."""
        return cls(spec.vm_size.lower(), spec.task_slots_per_node, spec.node_image, spec.registries)


@dataclass(frozen=True)
class NodeStates:
    """A pool's nodes (dedicated and Spot together) by the states that matter to simfleet.

    Batch counts a node as current from its allocation until it leaves, whatever it can
    do; these counts tell a pool that is still booting from one whose nodes never become
    usable (a bad prefetch image, a registry it cannot log in to, a failed start task).
    """

    usable: int = 0  # idle or running: it can take a simulator now
    starting: int = 0  # creating, starting, waiting for its start task, rebooting, reimaging
    unusable: int = 0  # Batch gave up on it: errors say why
    start_task_failed: int = 0
    preempted: int = 0  # a Spot node taken back; it may come back
    leaving: int = 0  # leaving the pool, deallocating or deallocated
    other: int = 0  # offline or unknown (Batch lost contact with it)

    @property
    def total(self) -> int:
        """Every node the pool has, whatever its state."""
        return (
            self.usable
            + self.starting
            + self.unusable
            + self.start_task_failed
            + self.preempted
            + self.leaving
            + self.other
        )

    @property
    def broken(self) -> int:
        """Nodes that will not take a simulator without someone fixing something."""
        return self.unusable + self.start_task_failed


@dataclass(frozen=True)
class ObservedPool:
    """A Batch pool: its targets, what it has allocated, and its fixed configuration.

    ``owned`` and ``owner`` as for :class:`ObservedJob`.
    """

    name: str
    owned: bool
    config: PoolConfig
    state: PoolState = PoolState.STEADY
    target_dedicated: int = 0
    target_spot: int = 0
    current_dedicated: int = 0
    current_spot: int = 0
    resize_errors: tuple[str, ...] = ()
    usable_nodes: int | None = None
    owner: str = ""  # whose it is when not owned, in words ("fleet 'b'"); "": not simfleet's
    nodes: NodeStates | None = None  # None: the backend did not count them this pass
    node_errors: tuple[str, ...] = ()  # why broken nodes are broken, one line per distinct error
    allocation_changed_at: datetime | None = None  # Batch: allocationStateTransitionTime
    login_digest: str | None = None  # keyed digest of its registry passwords (see _logins)
    #: The spec pool it is a generation of when its id is not that name (a replacement
    #: pool, see ``_replacement``); "": its own id.
    spec_pool: str = ""

    @property
    def usable(self) -> int:
        """Nodes that can run a simulator now (idle or running). Batch counts a node as
        current from the moment it is allocated, minutes before it can run anything, and
        goes on counting one that never will, so a backend that can tell says so in
        ``usable_nodes`` or ``nodes``; otherwise every current node counts."""
        if self.usable_nodes is not None:
            return self.usable_nodes
        if self.nodes is not None:
            return self.nodes.usable
        return self.current_dedicated + self.current_spot


@dataclass(frozen=True)
class Observed:
    """One snapshot of the backend, taken once per pass and passed down unchanged.

    ``pool_identity_refusal`` is what the backend can do rather than what it holds: why
    it cannot give a pool it creates the managed identities its registries name (Azure
    without Resource Manager), or "" when it can or has no such notion. The planner then
    holds such pools, with these words, instead of making a pool whose nodes can never
    pull its images.
    """

    pools: Mapping[str, ObservedPool] = field(default_factory=dict)
    jobs: Mapping[str, ObservedJob] = field(default_factory=dict)
    pool_identity_refusal: str = ""
