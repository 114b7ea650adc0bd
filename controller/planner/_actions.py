"""Actions: what the planner decides and backends carry out, one frozen value each.

Each action knows the object it changes (:attr:`subject`) and how to say what it does in
one line (:meth:`describe`, safe to log: no secret ever appears). That is the one place
the planner writes out what every action type means, so callers need no ``match`` of
their own for either question.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from pydantic import SecretStr

from controller.spec import PoolSpec


class ObjectKind(StrEnum):
    """The two kinds of object a plan changes."""

    POOL = "pool"
    SIMULATION = "simulation"


class StopReason(StrEnum):
    """Why simfleet stops a simulator: shown in plan output and logs."""

    SCALE_DOWN = "scale-down"
    ROLLOUT = "rollout"
    DUPLICATE = "duplicate"
    RECYCLE = "recycle"
    REPLACEMENT = "pool-replacement"  # its pool is being replaced: it moves to the new one


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
class RegistryLogin:
    """How a simulator's node logs in to pull its image: a managed identity, or a
    username with the password as the controller has it now (never stored by simfleet).

    Carried by each new simulator rather than relied on from the pool: a pool's own
    registry login can change only while it has no node, so after a password rotation
    only a login of the simulator's own pulls with the new password.
    """

    server: str
    username: str | None = None
    password: SecretStr | None = None
    identity: str | None = None


@dataclass(frozen=True)
class NewTask:
    """One simulator to add: its id carries slot, revision and attempt."""

    id: str
    slot: int
    revision: str
    attempt: int
    restarts: int = 0
    failures: int = 0


class _Action(ABC):
    """What every action answers: the object it changes, and one line about it."""

    __slots__ = ()

    @property
    @abstractmethod
    def subject(self) -> tuple[ObjectKind, str]:
        """The kind and name of the object the action changes: ("pool", "sims")."""

    @abstractmethod
    def describe(self) -> str:
        """One line about the action, safe to log and show (no secrets)."""


@dataclass(frozen=True)
class CreatePool(_Action):
    """Create a pool owned by simfleet with these node targets.

    ``passwords`` holds the registry passwords (server → value) the pool's nodes log in
    with; ``images`` are prefetched onto each node (the images of its simulations);
    ``login_digest`` is the keyed digest of those passwords the pool records (see
    :mod:`._logins`), "" when it has none. ``spec_pool`` names the spec pool it is a
    generation of (marked on the pool, see ``_replacement``); "" when that is ``name``.
    """

    name: str
    spec: PoolSpec
    dedicated: int
    spot: int
    passwords: Mapping[str, SecretStr] = field(default_factory=dict)
    images: tuple[str, ...] = ()
    login_digest: str = ""
    spec_pool: str = ""

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.POOL, self.name

    def describe(self) -> str:
        return (
            f"create pool {self.name} ({self.spec.vm_size}, {self.dedicated} dedicated"
            f" + {self.spot} spot)"
        )


@dataclass(frozen=True)
class ResizePool(_Action):
    """Change a pool's node targets."""

    name: str
    dedicated: int
    spot: int
    from_dedicated: int = 0
    from_spot: int = 0

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.POOL, self.name

    def describe(self) -> str:
        return (
            f"resize pool {self.name} {self.from_dedicated}+{self.from_spot}"
            f" → {self.dedicated}+{self.spot} nodes"
        )


@dataclass(frozen=True)
class ShrinkPool(_Action):
    """Lower a pool's node targets to ``dedicated`` + ``spot`` without taking a busy node.

    A plain resize down lets the service pick the nodes to remove, busy ones included
    (Batch's default deallocation requeues their tasks). So a backend removes only idle
    nodes, at most as many as the pool has above the target of their kind (``current_*``
    is what the pass observed), letting any task that starts meanwhile finish first; a
    kind without nodes above its target just has its target lowered, which removes
    nothing. A pool with fewer idle nodes than asked keeps the rest: the next pass, once
    more of them are idle, asks again.
    """

    name: str
    dedicated: int
    spot: int
    from_dedicated: int = 0
    from_spot: int = 0
    current_dedicated: int = 0
    current_spot: int = 0

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.POOL, self.name

    def targets_after(self, busy: int) -> tuple[int, int]:
        """The targets once the idle nodes are gone, for a backend that knows only how many
        nodes are ``busy``, not which: tasks are taken to sit on the nodes that stay, and
        busy nodes beyond the targets stay too (dedicated ones first).

        Worked numbers: 5+0 current, shrinking to 1+0 with 3 busy nodes → 3+0; with none
        busy → 1+0; 1+2 current, shrinking to 0+1 with 2 busy nodes → 1+1.
        """
        extra = max(0, busy - self.dedicated - self.spot)
        extra_dedicated = min(max(0, self.current_dedicated - self.dedicated), extra)
        extra_spot = min(max(0, self.current_spot - self.spot), extra - extra_dedicated)
        return self.dedicated + extra_dedicated, self.spot + extra_spot

    def describe(self) -> str:
        return (
            f"shrink pool {self.name} {self.from_dedicated}+{self.from_spot}"
            f" → {self.dedicated}+{self.spot} nodes (idle nodes only)"
        )


@dataclass(frozen=True)
class RecordLogin(_Action):
    """Record on a pool the keyed digest of its registry passwords as they are now.

    What a password rotation changes on a live pool: new simulators already pull with
    their own login (:class:`RegistryLogin`); this records that the change was seen, so it
    is reported once and not again. ``spec`` is what the pool's other records say, and
    ``spec_pool`` the spec pool it is a generation of ("": ``name``; see ``_replacement``).
    """

    name: str
    spec: PoolSpec
    login_digest: str
    spec_pool: str = ""

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.POOL, self.name

    def describe(self) -> str:
        return f"record the new registry password of pool {self.name}"


@dataclass(frozen=True)
class DeletePool(_Action):
    """Delete a pool simfleet created and no spec asks for any more."""

    name: str

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.POOL, self.name

    def describe(self) -> str:
        return f"delete pool {self.name}"


@dataclass(frozen=True)
class CreateJob(_Action):
    """Create the job of a simulation, owned by simfleet, on its pool.

    ``simulation`` names the simulation when the job's id is not its name (its job on a
    replacement pool, marked on the job; see ``_replacement``).
    """

    name: str
    pool: str
    simulation: str = ""

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.SIMULATION, self.simulation or self.name

    def describe(self) -> str:
        if self.simulation:
            return f"create job {self.name} of simulation {self.simulation} on pool {self.pool}"
        return f"create simulation {self.name} on pool {self.pool}"


@dataclass(frozen=True)
class DeleteJob(_Action):
    """Delete a job (and so its simulators) that no spec asks for any more, or (``moved``
    names the pool) a simulation's job on a replaced pool once it is empty."""

    name: str
    moved: str = ""
    simulation: str = ""  # when the job's id is not the simulation's name

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.SIMULATION, self.simulation or self.name

    def describe(self) -> str:
        if self.moved:
            return f"delete job {self.name}: its simulators moved to pool {self.moved}"
        return f"delete simulation {self.name} and its simulators"


@dataclass(frozen=True)
class AddTasks(_Action):
    """Add simulators to a job in bulk; all share one template (one revision).

    ``login``: how their node pulls the image, when the pool's spec names its registry.
    Not part of the template: a rotated password must not roll running simulators.
    """

    job: str
    template: TaskTemplate
    tasks: tuple[NewTask, ...]
    workdir: str | None = None
    login: RegistryLogin | None = None
    simulation: str = ""  # when the job's id is not the simulation's name

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.SIMULATION, self.simulation or self.job

    def describe(self) -> str:
        shown = ", ".join(str(t.slot) for t in self.tasks[:10])
        slots = shown + (", …" if len(self.tasks) > 10 else "")
        return (
            f"start {len(self.tasks)} simulator(s) of {self.job} ({self.template.image})"
            f" in slot(s) {slots}"
        )


@dataclass(frozen=True)
class StopTask(_Action):
    """Terminate a live simulator; its record stays for its logs."""

    job: str
    task_id: str
    slot: int
    reason: StopReason
    simulation: str = ""  # when the job's id is not the simulation's name

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.SIMULATION, self.simulation or self.job

    def describe(self) -> str:
        return f"stop simulator {self.task_id} of {self.job} (slot {self.slot}, {self.reason})"


@dataclass(frozen=True)
class DeleteTask(_Action):
    """Forget an exited simulator beyond the kept history."""

    job: str
    task_id: str
    simulation: str = ""  # when the job's id is not the simulation's name

    @property
    def subject(self) -> tuple[ObjectKind, str]:
        return ObjectKind.SIMULATION, self.simulation or self.job

    def describe(self) -> str:
        return f"forget exited simulator {self.task_id} of {self.job}"


Action = (
    CreatePool
    | ResizePool
    | ShrinkPool
    | RecordLogin
    | DeletePool
    | CreateJob
    | DeleteJob
    | AddTasks
    | StopTask
    | DeleteTask
)

#: Stops, deletions and shrinks: a pass runs them after everything that adds, so a pass
#: that both adds and removes never leaves the fleet smaller than asked in between.
REMOVALS = (StopTask, DeleteTask, DeleteJob, DeletePool, ShrinkPool)


def subject(action: Action) -> tuple[ObjectKind, str]:
    """The kind and name of the object an action changes: ("pool", "sims")."""
    return action.subject
