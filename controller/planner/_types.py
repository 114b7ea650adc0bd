"""The planner's vocabulary: desired state, observed state, actions and the plan.

Backends import these types to report what they see (:class:`Observed`) and to carry out
what the planner decides (the action classes). Everything is a frozen dataclass: a pass
reads one snapshot and never mutates it, and a plan can be compared as data in tests.

Times are timezone-aware ``datetime`` values handed in by the caller; nothing here reads a
clock. Secrets travel as ``pydantic.SecretStr`` so a ``repr`` of any value here is safe to
log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import SecretStr

from controller.spec import NodeImage, PoolSpec, Registry, SimulationSpec

# --------------------------------------------------------------------------- desired


@dataclass(frozen=True)
class DesiredSimulation:
    """A Simulation spec with its secrets resolved from the controller's environment.

    Attributes:
        name: the simulation's name (the Batch job id).
        spec: the validated spec.
        secrets: ``secretEnv`` name → value; part of the template revision, never shown.
        workdir: where the local process runtime starts the command (the spec file's
            folder); not part of the template, ignored by Azure.
        revision_key: the controller's secret key for the template revision: secret
            values enter the revision only through an HMAC under it, so no task id lets
            anyone test guesses of a secret offline (see :mod:`._ids`).
    """

    name: str
    spec: SimulationSpec
    secrets: Mapping[str, SecretStr] = field(default_factory=dict)
    workdir: str | None = None
    revision_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Desired:
    """Everything the spec files ask for, as one value.

    Attributes:
        pools / simulations: by name.
        prune_held_because: why nothing may be deleted now — a spec file fails to load, or
            the directory is empty or missing (unless the user asked explicitly); "" when
            pruning may go ahead.
        registry_passwords: registry server → password, resolved from the environment.
        notes: simulation or pool name → why its spec is not (fully) in force, e.g. its
            file fails to load and its last good version runs. Shown in status.
    """

    pools: Mapping[str, PoolSpec] = field(default_factory=dict)
    simulations: Mapping[str, DesiredSimulation] = field(default_factory=dict)
    prune_held_because: str = ""
    registry_passwords: Mapping[str, SecretStr] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def prune_allowed(self) -> bool:
        """Whether deleting what no spec asks for may go ahead."""
        return not self.prune_held_because


# -------------------------------------------------------------------------- observed


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
    failure_code: str | None = None  # Batch's failureInfo.code, e.g. ContainerPullImageFailed
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
    requeues: int = 0  # Batch requeueCount: how often a preempted node sent it back
    stopping: bool = False  # a stop was sent and it is still ending: holds its slot
    image: str = ""  # the container image it runs, when the backend reports it
    secret_names: tuple[str, ...] = ()  # its secretEnv names, when the backend reports them
    run_options: str | None = None  # its containerRunOptions, when the backend reports them

    @property
    def live(self) -> bool:
        """Pending or running: it holds its slot."""
        return self.state is not SimulatorState.EXITED


@dataclass(frozen=True)
class ObservedJob:
    """A Batch job (one per Simulation) and its tasks."""

    name: str
    pool: str
    owned: bool
    state: JobState = JobState.ACTIVE
    tasks: tuple[ObservedTask, ...] = ()
    created_at: datetime | None = None


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
class ObservedPool:
    """A Batch pool: its targets, what it has allocated, and its fixed configuration."""

    name: str
    owned: bool
    config: PoolConfig
    state: PoolState = PoolState.STEADY
    target_dedicated: int = 0
    target_spot: int = 0
    current_dedicated: int = 0
    current_spot: int = 0
    resize_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observed:
    """One snapshot of the backend, taken once per pass and passed down unchanged."""

    pools: Mapping[str, ObservedPool] = field(default_factory=dict)
    jobs: Mapping[str, ObservedJob] = field(default_factory=dict)


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class SecretEnv:
    """One ``secretEnv`` entry: variable ``name`` gets the value of the controller's
    ``from_env``. Backends that persist tasks keep only the two names, never ``value``."""

    name: str
    from_env: str
    value: SecretStr


@dataclass(frozen=True)
class TaskTemplate:
    """What every simulator of one template revision runs.

    Changing any field but ``max_lifetime`` rolls the simulators over (see ``_ids``).
    ``secret_digest`` stands for the secret values in the revision: a keyed digest of
    them, "" when there are none.
    """

    image: str
    command: str | tuple[str, ...] | None
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[SecretEnv, ...]
    container_run_options: str
    max_lifetime: timedelta
    secret_digest: str = ""


@dataclass(frozen=True)
class NewTask:
    """One simulator to add: its id carries slot, revision and attempt."""

    id: str
    slot: int
    revision: str
    attempt: int
    restarts: int = 0
    failures: int = 0


@dataclass(frozen=True)
class CreatePool:
    """Create a pool owned by simfleet with these node targets.

    ``passwords`` holds the registry passwords (server → value) the pool's nodes log in
    with; ``images`` are prefetched onto each node (the images of its simulations).
    """

    name: str
    spec: PoolSpec
    dedicated: int
    spot: int
    passwords: Mapping[str, SecretStr] = field(default_factory=dict)
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResizePool:
    """Change a pool's node targets."""

    name: str
    dedicated: int
    spot: int
    from_dedicated: int = 0
    from_spot: int = 0


@dataclass(frozen=True)
class DeletePool:
    """Delete a pool simfleet created and no spec asks for any more."""

    name: str


@dataclass(frozen=True)
class CreateJob:
    """Create the job of a simulation, owned by simfleet, on its pool."""

    name: str
    pool: str


@dataclass(frozen=True)
class DeleteJob:
    """Delete a job (and so its simulators) that no spec asks for any more."""

    name: str


@dataclass(frozen=True)
class AddTasks:
    """Add simulators to a job in bulk; all share one template (one revision)."""

    job: str
    template: TaskTemplate
    tasks: tuple[NewTask, ...]
    workdir: str | None = None


class StopReason(StrEnum):
    """Why simfleet stops a simulator: shown in plan output and logs."""

    SCALE_DOWN = "scale-down"
    ROLLOUT = "rollout"
    DUPLICATE = "duplicate"
    RECYCLE = "recycle"


@dataclass(frozen=True)
class StopTask:
    """Terminate a live simulator; its record stays for its logs."""

    job: str
    task_id: str
    slot: int
    reason: StopReason


@dataclass(frozen=True)
class DeleteTask:
    """Forget an exited simulator beyond the kept history."""

    job: str
    task_id: str


Action = (
    CreatePool | ResizePool | DeletePool | CreateJob | DeleteJob | AddTasks | StopTask | DeleteTask
)


def subject(action: Action) -> tuple[str, str]:
    """The kind and name of the object an action changes: ("pool", "sims")."""
    match action:
        case CreatePool(name=name) | ResizePool(name=name) | DeletePool(name=name):
            return "pool", name
        case CreateJob(name=name) | DeleteJob(name=name):
            return "simulation", name
        case AddTasks(job=job) | StopTask(job=job) | DeleteTask(job=job):
            return "simulation", job
    raise AssertionError(action)


# ---------------------------------------------------------------------------- status


class ConditionType(StrEnum):
    """The three conditions every simulation reports."""

    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    STALLED = "Stalled"


class Reason(StrEnum):
    """Why a condition holds: one CamelCase word, as Kubernetes writes them."""

    MINIMUM_AVAILABLE = "MinimumSimulatorsAvailable"
    MINIMUM_UNAVAILABLE = "MinimumSimulatorsUnavailable"
    COMPLETE = "RolloutComplete"
    ROLLING_OUT = "RollingOut"
    SCALING = "Scaling"
    RECOVERING = "Recovering"
    DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    SUSPENDED = "Suspended"


@dataclass(frozen=True)
class Condition:
    """One condition of a simulation."""

    type: ConditionType
    status: bool
    reason: Reason
    message: str


@dataclass(frozen=True)
class Progress:
    """The best marks since the simulation stopped being converged, and when they improved."""

    best: tuple[int, int]
    since: datetime


@dataclass(frozen=True)
class SimulatorStatus:
    """One slot's simulator, as ``/status`` shows it."""

    slot: int
    id: str
    state: str  # a SimulatorState, or "waiting" (back-off) / "succeeded" / "failed"
    restarts: int
    up_to_date: bool
    last_exit: ExitInfo | None = None
    pid: int | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class SimulationStatus:
    """One simulation's row in ``simfleet status``."""

    name: str
    pool: str
    image: str
    desired: int
    ready: int
    up_to_date: int
    restarts: int
    message: str
    revision: str
    created_at: datetime | None = None
    suspended: bool = False
    simulators: tuple[SimulatorStatus, ...] = ()
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class PoolStatus:
    """One pool's row in ``/status``."""

    name: str
    dedicated: int
    spot: int
    target_dedicated: int
    target_spot: int
    state: str
    message: str


@dataclass(frozen=True)
class Status:
    """What the planner concluded about every object, before its actions run."""

    simulations: tuple[SimulationStatus, ...] = ()
    pools: tuple[PoolStatus, ...] = ()


@dataclass(frozen=True)
class Change:
    """One thing a plan does (or, with ``applies=False``, reports but will not do)."""

    kind: str  # "pool" or "simulation"
    name: str
    verb: str  # create, scale, roll out, recycle, restart, resize, needs replacement, prune
    detail: str
    applies: bool = True

    def __str__(self) -> str:
        return (
            f"{self.verb} {self.kind} {self.name}: {self.detail}"
            if self.detail
            else (f"{self.verb} {self.kind} {self.name}")
        )


@dataclass(frozen=True)
class Plan:
    """The result of one planning step.

    Attributes:
        actions: what to do now, in order (pools, jobs, then tasks; deletions last).
        status: the state of every object as observed, with messages.
        requeue_after: the earliest moment something becomes due (a back-off ends, a
            progress deadline passes), or None; the daemon wakes then.
        progress: per simulation not yet converged, its progress so far; hand it to the
            next pass's ``plan`` so deadlines span passes.
        changes: what the actions do, per object, in words (``simfleet plan``).
        absent: per owned object no spec defines (``("simulation", name)`` or
            ``("pool", name)``), when its absence was first seen; hand it to the next
            pass's ``plan`` so the prune delay spans passes.
        failures: per object whose planning raised, what went wrong; the object got a
            status row with the reason and no actions, the others were planned as usual.
    """

    actions: tuple[Action, ...]
    status: Status
    requeue_after: datetime | None = None
    progress: Mapping[str, Progress] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()
    absent: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    failures: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        """Nothing left to do: no action, every simulation converged (all its slots served
        on the current template, or finished for good under its restart policy), nothing
        waiting out the prune delay and nothing that failed to plan."""
        return not self.actions and not self.progress and not self.absent and not self.failures
