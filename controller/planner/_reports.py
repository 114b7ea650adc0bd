"""What the planner reports: status rows, conditions, progress, changes and the plan.

``Status`` is what ``simfleet status`` and ``/status`` show; ``Change`` is a line of
``simfleet plan``; ``Plan`` carries the actions of one pass together with what the next
pass needs back (progress, absence clocks). Computed by the planner, never read back
from a backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from controller.planner._actions import Action, ObjectKind
from controller.planner._observed import ExitInfo, NodeStates
from controller.planner._sizing import PoolMemory


class ConditionType(StrEnum):
    """The three conditions every simulation reports, and the one a counted pool reports."""

    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    STALLED = "Stalled"
    NODES_USABLE = "NodesUsable"  # a pool's: no node is unusable or failed its start task


class Reason(StrEnum):
    """Why a condition holds: one CamelCase word, as Kubernetes writes them."""

    MINIMUM_AVAILABLE = "MinimumSimulatorsAvailable"
    MINIMUM_UNAVAILABLE = "MinimumSimulatorsUnavailable"
    COMPLETE = "RolloutComplete"
    ROLLING_OUT = "RollingOut"
    SCALING = "Scaling"
    WAITING_FOR_NODES = "WaitingForNodes"
    RECOVERING = "Recovering"
    DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    SUSPENDED = "Suspended"
    NODES_USABLE = "NodesUsable"
    NODES_UNUSABLE = "NodesUnusable"
    START_TASK_FAILED = "StartTaskFailed"


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


class SlotState(StrEnum):
    """What ``/status`` shows for one slot: its simulator's state, or why it has none."""

    PENDING = "pending"  # waiting for a node, or about to be added
    RUNNING = "running"
    STOPPING = "stopping"  # a stop was sent; it still holds its slot
    WAITING = "waiting"  # back-off before a restart
    SUCCEEDED = "succeeded"  # finished for good under restartPolicy
    FAILED = "failed"  # failed for good under restartPolicy Never


class PoolPhase(StrEnum):
    """What ``/status`` shows for a pool: Batch's allocation state, or being created."""

    CREATING = "creating"
    HELD = "held"  # not created: the status message says why
    STEADY = "steady"
    RESIZING = "resizing"
    STOPPING = "stopping"
    DELETING = "deleting"


class Verb(StrEnum):
    """What a :class:`Change` does to its object (``simfleet plan``)."""

    CREATE = "create"
    SCALE = "scale"
    ROLL_OUT = "roll out"
    RECYCLE = "recycle"
    RESTART = "restart"
    RESIZE = "resize"
    UPDATE = "update"
    NEEDS_REPLACEMENT = "needs replacement"
    REPLACE = "replace"  # a pool: create its new generation, move simulators, delete the old
    PRUNE = "prune"
    CANNOT_PLAN = "cannot plan"


@dataclass(frozen=True)
class SimulatorStatus:
    """One slot's simulator, as ``/status`` shows it; ``available``: it has run for the
    settle time and is not being stopped (a running one that is not yet is settling)."""

    slot: int
    id: str
    state: SlotState
    restarts: int
    up_to_date: bool
    last_exit: ExitInfo | None = None
    pid: int | None = None
    started_at: datetime | None = None
    available: bool = False


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
    """One pool's row in ``/status``; ``nodes`` None when the backend did not count them."""

    name: str
    dedicated: int
    spot: int
    target_dedicated: int
    target_spot: int
    state: PoolPhase
    message: str
    nodes: NodeStates | None = None
    node_errors: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Status:
    """What the planner concluded about every object, before its actions run."""

    simulations: tuple[SimulationStatus, ...] = ()
    pools: tuple[PoolStatus, ...] = ()


@dataclass(frozen=True)
class Change:
    """One thing a plan does (or, with ``applies=False``, reports but will not do)."""

    kind: ObjectKind
    name: str
    verb: Verb
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
        changes: what the actions do, per object, in words (``simfleet plan``), in the
            order of the phases: pools, simulations, prunes; () with ``explain=False``.
        absent: per owned object no spec defines (``("simulation", name)`` or
            ``("pool", name)``), when its absence was first seen; hand it to the next
            pass's ``plan`` so the prune delay spans passes.
        failures: per object whose planning raised, what went wrong; the object got a
            status row with the reason and no actions, the others were planned as usual.
        sizing: per pool, what sizing remembers (the scale-down delay's clock, resize
            retries); hand it to the next pass's ``plan`` so they span passes. A shrink
            held back does not keep a plan from being converged: it is about nodes, not
            about what runs.
    """

    actions: tuple[Action, ...]
    status: Status
    requeue_after: datetime | None = None
    progress: Mapping[str, Progress] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()
    absent: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    failures: Mapping[tuple[str, str], str] = field(default_factory=dict)
    sizing: Mapping[str, PoolMemory] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        """Nothing left to do: no action, every simulation converged (all its slots served
        on the current template, or finished for good under its restart policy), nothing
        waiting out the prune delay and nothing that failed to plan."""
        return not self.actions and not self.progress and not self.absent and not self.failures
