"""What the local backend remembers about pools, jobs and tasks, and its JSON form.

Records are frozen values; the store replaces a record instead of changing it, so every
state change is one visible assignment. The JSON codec lives here, next to the fields it
must keep in step with.

What must never be recorded: a secret's value. A task keeps, for each ``secretEnv``
entry, only the variable's ``name`` and the controller variable it comes from
(``from_env``); a task started after a controller restart resolves the value again from
the environment at spawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from controller.planner import (
    ExitInfo,
    ExitReason,
    PoolConfig,
    TaskTemplate,
    parse_task_id,
    wall_clock_limit,
)
from controller.spec import BATCH_TASK_LIMIT, NodeImage, Registry

#: (job name, task id): how the backend addresses one task.
TaskRef = tuple[str, str]


class TaskPhase(StrEnum):
    """A task's life in the local backend (finer than the planner's ``SimulatorState``)."""

    PENDING = "pending"  # waiting for a free slot on its pool
    LAUNCHING = "launching"  # saved just before spawning: a crash here may leave a process
    RUNNING = "running"
    EXITED = "exited"


class StopIntent(StrEnum):
    """Why simfleet is ending a running task; decides the exit reason it gets."""

    STOP = "stop"  # StopTask, DeleteJob, DeletePool → STOPPED
    SHUTDOWN = "shutdown"  # close(stop_simulators=True) → STOPPED
    LIFETIME = "lifetime"  # ran past maxLifetime → FAILED, MaxWallClockTimeExceeded


@dataclass(frozen=True)
class SecretRef:
    """A ``secretEnv`` entry without its value: variable ``name`` ← controller's ``from_env``."""

    name: str
    from_env: str


@dataclass(frozen=True)
class TemplateRecord:
    """The part of a :class:`TaskTemplate` a task needs to start later, minus secret values."""

    image: str
    command: str | tuple[str, ...] | None
    env: tuple[tuple[str, str], ...]
    secrets: tuple[SecretRef, ...]
    wall_clock_limit: float  # seconds: maxLifetime plus the recycling margin
    run_options: str = ""  # containerRunOptions, for the docker runtime

    @classmethod
    def of(cls, template: TaskTemplate) -> TemplateRecord:
        """Drop the secret values of ``template``."""
        return cls(
            image=template.image,
            command=template.command,
            env=template.env,
            secrets=tuple(SecretRef(s.name, s.from_env) for s in template.secret_env),
            wall_clock_limit=wall_clock_limit(template.max_lifetime).total_seconds(),
            run_options=template.container_run_options,
        )

    @classmethod
    def unknown(cls) -> TemplateRecord:
        """For a task known only from its id (adopted from the process table, or whose
        record was unreadable): nothing to start it again from, Batch's task limit."""
        return cls("", None, (), (), BATCH_TASK_LIMIT.total_seconds())

    @property
    def known(self) -> bool:
        """Whether this is a real template, not :meth:`unknown`'s stand-in."""
        return self != TemplateRecord.unknown()


@dataclass(frozen=True)
class TaskRecord:
    """One simulator: what it runs, where it is in its life, and its process handle.

    ``pid`` and ``start_ticks`` identify the wrapper process leading the task's process
    group (see :mod:`controller.backends.local._processes`); ``seq`` orders tasks by
    creation for the FIFO start of pending tasks.
    """

    job: str
    id: str
    seq: int
    slot: int
    revision: str
    attempt: int
    restarts: int
    failures: int
    template: TemplateRecord
    workdir: str | None
    created_at: datetime
    phase: TaskPhase = TaskPhase.PENDING
    pid: int | None = None
    start_ticks: int | None = None
    started_at: datetime | None = None
    exited_at: datetime | None = None
    exit: ExitInfo | None = None
    stopping: StopIntent | None = None

    @property
    def ref(self) -> TaskRef:
        """The task's address in the store."""
        return (self.job, self.id)

    @property
    def live(self) -> bool:
        """Not exited yet: it holds its slot in the simulation."""
        return self.phase is not TaskPhase.EXITED


@dataclass(frozen=True)
class JobRecord:
    """A simulation's job; ``deleting`` while its tasks are being stopped before removal."""

    name: str
    pool: str
    created_at: datetime
    deleting: bool = False
    simulation: str = ""  # its simulation when not its own id (a replacement pool's job)


@dataclass(frozen=True)
class PoolRecord:
    """A pool; local nodes exist as soon as they are asked for (current = target)."""

    name: str
    config: PoolConfig
    target_dedicated: int
    target_spot: int
    created_at: datetime
    deleting: bool = False
    spec_pool: str = ""  # the spec pool it is a generation of, when not its own id

    @property
    def capacity(self) -> int:
        """How many simulators may run on the pool at once."""
        if self.deleting:
            return 0
        return (self.target_dedicated + self.target_spot) * self.config.task_slots_per_node


# ------------------------------------------------------------------------------ JSON


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _required_time(value: Any) -> datetime:
    parsed = _parse_time(value)
    if parsed is None:
        raise ValueError("createdAt is missing")
    return parsed


def pool_to_json(pool: PoolRecord) -> dict[str, Any]:
    """The JSON object of a pool record."""
    return {
        "name": pool.name,
        "vmSize": pool.config.vm_size,
        "taskSlotsPerNode": pool.config.task_slots_per_node,
        "nodeImage": pool.config.node_image.model_dump(mode="json"),
        "registries": [r.model_dump(mode="json") for r in pool.config.registries],
        "targetDedicated": pool.target_dedicated,
        "targetSpot": pool.target_spot,
        "createdAt": _time(pool.created_at),
        "deleting": pool.deleting,
        "specPool": pool.spec_pool,
    }


def pool_from_json(data: dict[str, Any]) -> PoolRecord:
    """A pool record from :func:`pool_to_json`'s output."""
    config = PoolConfig(
        vm_size=data["vmSize"],
        task_slots_per_node=data["taskSlotsPerNode"],
        node_image=NodeImage.model_validate(data["nodeImage"]),
        registries=tuple(Registry.model_validate(r) for r in data["registries"]),
    )
    created_at = _required_time(data["createdAt"])
    return PoolRecord(
        name=data["name"],
        config=config,
        target_dedicated=data["targetDedicated"],
        target_spot=data["targetSpot"],
        created_at=created_at,
        deleting=data["deleting"],
        spec_pool=data.get("specPool", ""),
    )


def job_to_json(job: JobRecord) -> dict[str, Any]:
    """The JSON object of a job record."""
    return {
        "name": job.name,
        "pool": job.pool,
        "createdAt": _time(job.created_at),
        "deleting": job.deleting,
        "simulation": job.simulation,
    }


def job_from_json(data: dict[str, Any]) -> JobRecord:
    """A job record from :func:`job_to_json`'s output."""
    created_at = _required_time(data["createdAt"])
    return JobRecord(
        data["name"], data["pool"], created_at, data["deleting"], data.get("simulation", "")
    )


def _exit_to_json(info: ExitInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "reason": info.reason.value,
        "exitCode": info.exit_code,
        "failureCode": info.failure_code,
        "message": info.message,
        "stderrTail": info.stderr_tail,
    }


def _exit_from_json(data: dict[str, Any] | None) -> ExitInfo | None:
    if data is None:
        return None
    return ExitInfo(
        reason=ExitReason(data["reason"]),
        exit_code=data["exitCode"],
        failure_code=data["failureCode"],
        message=data["message"],
        stderr_tail=data["stderrTail"],
    )


def task_to_json(task: TaskRecord) -> dict[str, Any]:
    """The JSON object of a task record; secrets appear by name only."""
    template = task.template
    command = list(template.command) if isinstance(template.command, tuple) else template.command
    return {
        "job": task.job,
        "id": task.id,
        "seq": task.seq,
        "slot": task.slot,
        "revision": task.revision,
        "attempt": task.attempt,
        "restarts": task.restarts,
        "failures": task.failures,
        "template": {
            "image": template.image,
            "command": command,
            "env": [list(pair) for pair in template.env],
            "secretEnv": [{"name": s.name, "fromEnv": s.from_env} for s in template.secrets],
            "wallClockLimit": template.wall_clock_limit,
            "runOptions": template.run_options,
        },
        "workdir": task.workdir,
        "createdAt": _time(task.created_at),
        "phase": task.phase.value,
        "pid": task.pid,
        "startTicks": task.start_ticks,
        "startedAt": _time(task.started_at),
        "exitedAt": _time(task.exited_at),
        "exit": _exit_to_json(task.exit),
        "stopping": None if task.stopping is None else task.stopping.value,
    }


def task_from_json(data: dict[str, Any]) -> TaskRecord:
    """A task record from :func:`task_to_json`'s output."""
    raw = data["template"]
    command = raw["command"]
    template = TemplateRecord(
        image=raw["image"],
        command=tuple(command) if isinstance(command, list) else command,
        env=tuple((name, value) for name, value in raw["env"]),
        secrets=tuple(SecretRef(s["name"], s["fromEnv"]) for s in raw["secretEnv"]),
        wall_clock_limit=raw["wallClockLimit"],
        run_options=raw.get("runOptions", ""),
    )
    created_at = _required_time(data["createdAt"])
    return TaskRecord(
        job=data["job"],
        id=data["id"],
        seq=data["seq"],
        slot=data["slot"],
        revision=data["revision"],
        attempt=data["attempt"],
        restarts=data["restarts"],
        failures=data["failures"],
        template=template,
        workdir=data["workdir"],
        created_at=created_at,
        phase=TaskPhase(data["phase"]),
        pid=data["pid"],
        start_ticks=data["startTicks"],
        started_at=_parse_time(data["startedAt"]),
        exited_at=_parse_time(data["exitedAt"]),
        exit=_exit_from_json(data["exit"]),
        stopping=None if data["stopping"] is None else StopIntent(data["stopping"]),
    )


def salvage_task(data: Any, reason: str, now: datetime) -> TaskRecord | None:
    """A lost task from a record :func:`task_from_json` could not read, if its job and id
    still can be: slot, revision and attempt come from the id (see
    :func:`~controller.planner.parse_task_id`), or from the record when they are numbers.

    Returns:
        The task, exited and LOST with ``reason``; None if nothing identifies it.
    """
    if not isinstance(data, dict):
        return None
    job, task_id = data.get("job"), data.get("id")
    if not isinstance(job, str) or not isinstance(task_id, str):
        return None
    key = parse_task_id(job, task_id)
    numbers = {k: data.get(k) for k in ("seq", "slot", "attempt", "restarts", "failures")}
    ints = {
        k: v if isinstance(v, int) and not isinstance(v, bool) else 0 for k, v in numbers.items()
    }
    revision = data.get("revision")
    return TaskRecord(
        job=job,
        id=task_id,
        seq=ints["seq"],
        slot=key.slot if key else ints["slot"],
        revision=key.revision if key else revision if isinstance(revision, str) else "",
        attempt=key.attempt if key else ints["attempt"],
        restarts=ints["restarts"],
        failures=ints["failures"],
        template=TemplateRecord.unknown(),
        workdir=None,
        created_at=now,
        phase=TaskPhase.EXITED,
        exited_at=now,
        exit=ExitInfo(ExitReason.LOST, message=f"its record could not be read ({reason})"),
    )
