"""The only module that knows both the SDK's models and the planner's vocabulary.

Outbound: planner actions → ``BatchPoolCreateOptions``, ``BatchJobCreateOptions``,
``BatchTaskCreateOptions``. Inbound: ``BatchPool`` / ``BatchJob`` / ``BatchTask`` (as
listed with ``$select``) → ``ObservedPool`` / ``ObservedJob`` / ``ObservedTask``.

Ownership: every pool and job simfleet creates carries the metadata items
``simfleet-managed = true`` and ``simfleet-fleet = <fleet>``. An object is this
controller's (``owned``) when both match its fleet; one with the mark and no fleet item
was made before fleets existed and belongs to ``default`` (so a default-fleet controller
adopts it as it is, with no request). Anything else is reported as not owned, with whose
it is — another fleet, a fleet's lease job (``simfleet-lease = <fleet>``), or nobody
simfleet knows — and never touched; its tasks are never listed.

A pool of a replacement generation carries ``simfleet-pool = <spec pool>``, and a
simulation's job on it ``simfleet-simulation = <simulation>`` (see
:mod:`controller.planner._replacement`); every pool simfleet creates carries the first.

Tasks have no metadata, so a task's retry state (restarts, consecutive failures) travels
in its display name, and its slot, revision and attempt in its id.
A pool's registries cannot be read back with their ``passwordFromEnv`` names, so the
spec's registry list (no secret in it) is kept in pool metadata for comparison.

Inbound records are what the backend keeps between passes (100,000 tasks in a big
fleet), so the strings every task of a revision repeats — revision, image, run options,
secret names — are interned: one copy per distinct value, not one per task.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from azure.batch import models as m

from controller.backends._environment import simulator_variables
from controller.backends._fleets import DEFAULT_FLEET
from controller.backends.azure._lease import LEASE  # the mark of a fleet's lease job
from controller.planner import (
    CreatePool,
    ExitInfo,
    ExitReason,
    JobState,
    NewTask,
    NodeStates,
    ObservedJob,
    ObservedPool,
    ObservedTask,
    PoolConfig,
    PoolState,
    RecordLogin,
    RegistryLogin,
    SimulatorState,
    TaskTemplate,
    login_of,
    parse_task_id,
    wall_clock_limit,
)
from controller.spec import NodeImage, PoolSpec, Registry

MANAGED = "simfleet-managed"
FLEET = "simfleet-fleet"
REGISTRIES = "simfleet-registries"
SPEC_POOL = "simfleet-pool"
SIMULATION = "simfleet-simulation"
LOGIN = "simfleet-registry-login"  # keyed digest of the registry passwords (planner._logins)
POOL_SELECT = [
    "id",
    "state",
    "allocationState",
    "allocationStateTransitionTime",
    "vmSize",
    "taskSlotsPerNode",
    "metadata",
    "virtualMachineConfiguration",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "currentDedicatedNodes",
    "currentLowPriorityNodes",
    "resizeErrors",
]
JOB_SELECT = ["id", "state", "poolInfo", "metadata", "creationTime"]
TASK_SELECT = ["id", "displayName", "state", "creationTime", "executionInfo", "containerSettings"]
#: Who a task runs as on its node: the pool-wide auto-user, elevated, so a containerized
#: simulator has the rights it has under ``--runtime docker`` (root in its container).
ADMIN_AUTO_USER = m.UserIdentity(
    auto_user=m.AutoUserSpecification(scope="pool", elevation_level="admin")
)
#: Fill a node's slots before using the next one (Batch's default spreads tasks), so a
#: pool that has more nodes than it needs has idle ones to remove (see ``_shrinking``).
PACK = m.BatchTaskSchedulingPolicy(node_fill_type="pack")
#: Batch's failure code when a task was terminated (by us, or by maxWallClockTime).
TASK_ENDED = "TaskEnded"
_RETRY_STATE = re.compile(r"restarts=(\d+) failures=(\d+)")
#: The secretEnv names of a task, in its display name: which of its environment
#: settings hold values its stderr tail must be masked against (never the values).
_SECRET_NAMES = re.compile(r"secrets=([A-Za-z0-9_,]+)")


def _metadata(items: Sequence[m.BatchMetadataItem] | None) -> dict[str, str]:
    return {item.name: item.value for item in items or ()}


def ownership(items: Sequence[m.BatchMetadataItem] | None, fleet: str) -> tuple[bool, str]:
    """Whether an object is ``fleet``'s and, if not, whose it is in words ("": nobody's)."""
    meta = _metadata(items)
    lease = meta.get(LEASE)
    if lease is not None:
        return False, f"the lease of fleet '{lease}'"
    if meta.get(MANAGED) != "true":
        return False, ""
    owner = meta.get(FLEET, DEFAULT_FLEET)
    return (True, "") if owner == fleet else (False, f"fleet '{owner}'")


def owned(items: Sequence[m.BatchMetadataItem] | None, fleet: str) -> bool:
    """Whether an object is ``fleet``'s (see :func:`ownership`)."""
    return ownership(items, fleet)[0]


def _marks(fleet: str) -> list[m.BatchMetadataItem]:
    """The metadata that makes a new pool or job ``fleet``'s."""
    return [
        m.BatchMetadataItem(name=MANAGED, value="true"),
        m.BatchMetadataItem(name=FLEET, value=fleet),
    ]


# ----------------------------------------------------------------------------- outbound


def pool_create(action: CreatePool, fleet: str) -> m.BatchPoolCreateOptions:
    """The request body that creates ``action``'s pool for ``fleet``."""
    spec = action.spec
    registries = [registry_reference(login_of(r, action.passwords)) for r in spec.registries]
    image = spec.node_image
    config = m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(
            publisher=image.publisher, offer=image.offer, sku=image.sku, version=image.version
        ),
        node_agent_sku_id=image.node_agent_sku,
        container_configuration=m.BatchContainerConfiguration(
            type="dockerCompatible",
            container_image_names=list(action.images) or None,
            container_registries=registries or None,
        ),
    )
    return m.BatchPoolCreateOptions(
        id=action.name,
        vm_size=spec.vm_size,
        virtual_machine_configuration=config,
        target_dedicated_nodes=action.dedicated,
        target_low_priority_nodes=action.spot,
        task_slots_per_node=spec.task_slots_per_node,
        task_scheduling_policy=PACK,
        metadata=pool_metadata(spec, fleet, action.login_digest, action.spec_pool or action.name),
    )


def pool_metadata(
    spec: PoolSpec, fleet: str, login_digest: str, spec_pool: str
) -> list[m.BatchMetadataItem]:
    """Everything a pool records: whose it is, its registries (no password), the keyed
    digest of their passwords and the spec pool it is a generation of. A metadata update
    replaces the whole list, so creation and :class:`RecordLogin` both write it from here."""
    listed = [r.model_dump(by_alias=True, exclude_none=True) for r in spec.registries]
    items = [
        *_marks(fleet),
        m.BatchMetadataItem(name=REGISTRIES, value=json.dumps(listed, sort_keys=True)),
        m.BatchMetadataItem(name=SPEC_POOL, value=spec_pool),
    ]
    if login_digest:
        items.append(m.BatchMetadataItem(name=LOGIN, value=login_digest))
    return items


def pool_login_update(action: RecordLogin, fleet: str) -> m.BatchPoolUpdateOptions:
    """The PATCH body that records a pool's new login digest (metadata only: allowed on
    a pool with nodes, unlike its registries)."""
    marks = pool_metadata(action.spec, fleet, action.login_digest, action.spec_pool or action.name)
    return m.BatchPoolUpdateOptions(metadata=marks)


def registry_reference(login: RegistryLogin) -> m.ContainerRegistryReference:
    """A registry login as Batch takes it, for a pool or a single task."""
    return m.ContainerRegistryReference(
        registry_server=login.server,
        identity_reference=m.BatchNodeIdentityReference(resource_id=login.identity)
        if login.identity
        else None,
        username=login.username,
        password=login.password.get_secret_value() if login.password is not None else None,
    )


def job_create(name: str, pool: str, fleet: str, simulation: str = "") -> m.BatchJobCreateOptions:
    """The request body that creates a simulation's job for ``fleet`` (``simulation``: its
    simulation, when that is not ``name``)."""
    marks = _marks(fleet)
    if simulation:
        marks.append(m.BatchMetadataItem(name=SIMULATION, value=simulation))
    return m.BatchJobCreateOptions(id=name, pool_info=m.BatchPoolInfo(pool_id=pool), metadata=marks)


def simulation_mark(job: m.BatchJob) -> str:
    """The simulation a listed job is marked with ("" when none: its id is the name)."""
    return _metadata(job.metadata).get(SIMULATION, "")


def command_line(command: str | tuple[str, ...] | None) -> str:
    """Batch's command line: a string runs under ``/bin/sh -c``; a list as it is."""
    if command is None:
        return ""  # the container image's own entrypoint and command
    if isinstance(command, str):
        return shlex.join(["/bin/sh", "-c", command])
    return shlex.join(command)


def task_create(
    job: str,
    template: TaskTemplate,
    task: NewTask,
    login: RegistryLogin | None = None,
    simulation: str = "",
) -> m.BatchTaskCreateOptions:
    """The body of one task in an addtaskcollection request; ``login``: the simulator's own
    registry login, so it pulls with the password as it is now (see ``planner._logins``);
    ``simulation``: its simulation, when that is not ``job``."""
    secret_names = {s.name for s in template.secret_env}
    variables = simulator_variables(simulation or job, task.slot, task.id)
    values = {**variables, **dict(template.env)}
    environment = [
        m.EnvironmentSetting(name=k, value=v) for k, v in values.items() if k not in secret_names
    ]
    environment += [
        m.EnvironmentSetting(name=s.name, value=s.value.get_secret_value())
        for s in template.secret_env
    ]
    secrets = ",".join(s.name for s in template.secret_env)
    return m.BatchTaskCreateOptions(
        id=task.id,
        display_name=f"{job} slot {task.slot} restarts={task.restarts} failures={task.failures}"
        + (f" secrets={secrets}" if secrets else ""),
        command_line=command_line(template.command),
        container_settings=m.BatchTaskContainerSettings(
            image_name=template.image,
            container_run_options=template.container_run_options or None,
            working_directory="containerImageDefault",
            registry=registry_reference(login) if login is not None else None,
        ),
        environment_settings=environment or None,
        # Batch runs a container as the task's user: by default a non-admin auto-user, for
        # whom a working directory the image made as root is read-only. Locally (docker)
        # the container runs as root; the pool's auto-user with admin elevation gives
        # the simulator the same rights on Batch (issue 10, item 2).
        user_identity=ADMIN_AUTO_USER,
        constraints=m.BatchTaskConstraints(
            max_wall_clock_time=wall_clock_limit(template.max_lifetime),
            max_task_retry_count=0,
        ),
    )


# ------------------------------------------------------------------------------ inbound


def deleting(job: m.BatchJob) -> bool:
    """Whether Batch is deleting the job (its tasks are not worth a request any more)."""
    return _value(job.state) == "deleting"


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str) or "").lower()


#: The node listing that says why nodes are broken: only broken ones, only what says why.
BROKEN_NODES_FILTER = "state eq 'unusable' or state eq 'starttaskfailed'"
NODE_SELECT = ["id", "state", "errors", "startTaskInfo"]


def node_states(counts: m.BatchPoolNodeCounts) -> NodeStates:
    """A pool's node counts (dedicated and Spot added up) by the states simfleet tells apart."""
    tallies = [t for t in (counts.dedicated, counts.low_priority) if t is not None]

    def total(*names: str) -> int:
        return sum(getattr(t, name) or 0 for t in tallies for name in names)

    return NodeStates(
        usable=total("idle", "running"),
        starting=total(
            "creating",
            "starting",
            "waiting_for_start_task",
            "rebooting",
            "reimaging",
            "upgrading_os",
        ),
        unusable=total("unusable"),
        start_task_failed=total("start_task_failed"),
        preempted=total("preempted"),
        leaving=total("leaving_pool", "deallocating", "deallocated"),
        other=total("offline", "unknown"),
    )


def _failure_words(code: str | None, message: str | None, details: Sequence[Any] | None) -> str:
    """``Code: message (Name: value; …)``, as Batch's errors and failure infos read."""
    extra = "; ".join(f"{d.name}: {d.value}" for d in details or () if d.value)
    head = ": ".join(part for part in (code, message) if part) or "no error given"
    return f"{head} ({extra})" if extra else head


def node_errors(node: m.BatchNode) -> list[str]:
    """Why a broken node is broken: its errors, and its start task's failure if it had one."""
    lines = [_failure_words(e.code, e.message, e.error_details) for e in node.errors or ()]
    start = node.start_task_info
    failure = start.failure_info if start is not None else None
    if failure is not None:
        words = _failure_words(failure.code, failure.message, failure.details)
        code = f", exit code {start.exit_code}" if start and start.exit_code is not None else ""
        lines.append(f"start task{code}: {words}")
    return lines or [f"{_value(node.state)} without errors"]


def observed_pool(pool: m.BatchPool, fleet: str) -> ObservedPool:
    """A listed pool as ``fleet``'s controller sees it."""
    meta = _metadata(pool.metadata)
    vm = pool.virtual_machine_configuration
    ref = vm.image_reference if vm is not None else None
    image = NodeImage(
        publisher=(ref.publisher if ref else None) or "",
        offer=(ref.offer if ref else None) or "",
        sku=(ref.sku if ref else None) or "",
        version=(ref.version if ref else None) or "",
        node_agent_sku=(vm.node_agent_sku_id if vm else None) or "",
    )
    registries = tuple(
        Registry.model_validate(item) for item in json.loads(meta.get(REGISTRIES, "[]"))
    )
    state = _value(pool.state)
    allocation = _value(pool.allocation_state)
    if state == "deleting":
        pool_state = PoolState.DELETING
    elif allocation == "resizing":
        pool_state = PoolState.RESIZING
    elif allocation == "stopping":
        pool_state = PoolState.STOPPING
    else:
        pool_state = PoolState.STEADY
    mine, owner = ownership(pool.metadata, fleet)
    spec_pool = meta.get(SPEC_POOL, "")
    return ObservedPool(
        name=pool.id,
        owned=mine,
        owner=owner,
        spec_pool="" if spec_pool == pool.id else spec_pool,
        config=PoolConfig(
            vm_size=(pool.vm_size or "").lower(),
            task_slots_per_node=pool.task_slots_per_node or 1,
            node_image=image,
            registries=registries,
        ),
        state=pool_state,
        target_dedicated=pool.target_dedicated_nodes or 0,
        target_spot=pool.target_low_priority_nodes or 0,
        current_dedicated=pool.current_dedicated_nodes or 0,
        current_spot=pool.current_low_priority_nodes or 0,
        resize_errors=tuple(
            f"{e.code}: {e.message}" if e.message else str(e.code) for e in pool.resize_errors or ()
        ),
        allocation_changed_at=pool.allocation_state_transition_time,
        login_digest=meta.get(LOGIN, ""),
    )


_JOB_STATES = {
    "active": JobState.ACTIVE,
    "terminating": JobState.TERMINATING,
    "completed": JobState.COMPLETED,
    "deleting": JobState.DELETING,
}


def observed_job(job: m.BatchJob, tasks: Sequence[ObservedTask], fleet: str) -> ObservedJob:
    """A listed job, with its tasks, as ``fleet``'s controller sees it."""
    mine, owner = ownership(job.metadata, fleet)
    return ObservedJob(
        name=job.id,
        pool=(job.pool_info.pool_id or "") if job.pool_info else "",
        owned=mine,
        owner=owner,
        state=_JOB_STATES.get(_value(job.state), JobState.DISABLED),
        tasks=tuple(tasks),
        created_at=job.creation_time,
        simulation=simulation_mark(job),
    )


def _exit(info: m.BatchTaskExecutionInfo | None) -> ExitInfo:
    if info is None:
        return ExitInfo(ExitReason.LOST, message="completed without execution information")
    failure = info.failure_info
    if _value(info.result) == "success" or (failure is None and info.exit_code == 0):
        return ExitInfo(ExitReason.SUCCEEDED, info.exit_code, message="exited with code 0")
    if failure is not None and failure.code == TASK_ENDED and not failure.details:
        return ExitInfo(ExitReason.STOPPED, info.exit_code, TASK_ENDED, failure.message or "")
    detail = "; ".join(f"{d.name}: {d.value}" for d in failure.details or ()) if failure else ""
    message = (failure.message or "") if failure else f"exited with code {info.exit_code}"
    return ExitInfo(
        ExitReason.FAILED,
        info.exit_code,
        failure.code if failure else None,
        f"{message} ({detail})" if detail else message,
    )


def observed_task(job: str, task: m.BatchTask) -> ObservedTask | None:
    """A listed task as the planner sees it; None for a task simfleet did not create."""
    key = parse_task_id(job, task.id)
    if key is None:
        return None
    retry = _RETRY_STATE.search(task.display_name or "")
    restarts, failures = (int(retry[1]), int(retry[2])) if retry else (key.attempt, 0)
    state = _value(task.state)
    info = task.execution_info
    simulator_state = {"running": SimulatorState.RUNNING, "completed": SimulatorState.EXITED}.get(
        state, SimulatorState.PENDING
    )
    settings = task.container_settings
    return ObservedTask(
        id=task.id,
        slot=key.slot,
        revision=sys.intern(key.revision),
        attempt=key.attempt,
        state=simulator_state,
        created_at=task.creation_time,
        started_at=info.start_time if info is not None else None,
        exited_at=info.end_time if info is not None else None,
        exit=_exit(info) if simulator_state is SimulatorState.EXITED else None,
        restarts=restarts,
        failures=failures,
        requeues=info.requeue_count if info is not None else 0,
        starting=state == "preparing",
        image=sys.intern(settings.image_name or "") if settings else "",
        secret_names=secret_names(task.display_name),
        run_options=sys.intern(settings.container_run_options or "") if settings else None,
    )


def secret_names(display_name: str | None) -> tuple[str, ...]:
    """The secretEnv names a task's display name lists (see :func:`task_create`)."""
    found = _SECRET_NAMES.search(display_name or "")
    return _names(found[1]) if found else ()


@functools.lru_cache(maxsize=256)
def _names(listed: str) -> tuple[str, ...]:
    """One shared tuple per distinct list: a fleet's tasks share a handful of them."""
    return tuple(sys.intern(n) for n in listed.split(",") if n)


def secret_values(task: m.BatchTask, names: Sequence[str]) -> list[str]:
    """The values of the named environment settings of a task (to mask, never to show)."""
    wanted = set(names)
    return [
        setting.value
        for setting in task.environment_settings or ()
        if setting.name in wanted and setting.value
    ]
