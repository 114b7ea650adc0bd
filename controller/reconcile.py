"""The one pass: desired state → observe → plan → execute → result.

``run_pass`` is the only place where spec, backend and planner meet; the daemon, ``simfleet
apply`` and ``simfleet plan`` (which stops before executing) all call it, so they can never
disagree about what a pass does. ``desired_state`` turns a spec catalog into the planner's
:class:`Desired`, resolving secrets from an environment mapping that the caller passes in.

Errors from the backend are classified at its boundary; here a transient one ends the pass
early (no request may be sent inside a ``Retry-After`` window) and a permanent one is
recorded against its object while the other actions go on.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from pydantic import SecretStr

from controller.backends import Backend, BackendError, TransientBackendError
from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    Desired,
    DesiredSimulation,
    Observed,
    Plan,
    PlannerConfig,
    Progress,
    ResizePool,
    Status,
    StopTask,
    plan,
    subject,
)
from controller.spec import (
    Catalog,
    PoolSpec,
    RunOptionsPolicy,
    SecretAccess,
    SimulationSpec,
    SpecError,
    SpecObject,
    run_options_errors,
)

Clock = Callable[[], datetime]
log = structlog.get_logger("simfleet.reconcile")


# ------------------------------------------------------------------------ desired state


def _error_at(obj: SpecObject, path: str, message: str) -> SpecError:
    line, column = obj.positions.get(path, (obj.line, obj.column))
    return SpecError(obj.file, line, column, path, message)


def _missing_variable(obj: SpecObject, path: str, variable: str) -> SpecError:
    return _error_at(obj, path, f"environment variable {variable} is not set")


def _resolve_pools(
    catalog: Catalog, environ: Mapping[str, str]
) -> tuple[dict[str, PoolSpec], dict[str, SecretStr], list[SpecError]]:
    """Pools whose registry passwords are all set, the passwords, and errors for the rest."""
    pools: dict[str, PoolSpec] = {}
    passwords: dict[str, SecretStr] = {}
    errors: list[SpecError] = []
    for name, obj in catalog.pools.items():
        assert isinstance(obj.spec, PoolSpec)
        missing = [
            _missing_variable(obj, f"spec.registries[{i}].passwordFromEnv", r.password_from_env)
            for i, r in enumerate(obj.spec.registries)
            if r.password_from_env is not None and r.password_from_env not in environ
        ]
        errors += missing
        if missing:
            continue
        pools[name] = obj.spec
        for registry in obj.spec.registries:
            if registry.password_from_env is not None:
                passwords[registry.server] = SecretStr(environ[registry.password_from_env])
    return pools, passwords, errors


def _pool_password_variables(catalog: Catalog) -> set[str]:
    """Every variable a Pool reads a registry password from: never a simulator's."""
    return {
        registry.password_from_env
        for obj in catalog.pools.values()
        if isinstance(obj.spec, PoolSpec)
        for registry in obj.spec.registries
        if registry.password_from_env is not None
    }


def _secret_problem(access: SecretAccess, variable: str, environ: Mapping[str, str]) -> str | None:
    refusal = access.refusal(variable)
    if refusal is not None:
        return refusal
    return None if variable in environ else f"environment variable {variable} is not set"


def _resolve_simulations(
    catalog: Catalog,
    environ: Mapping[str, str],
    access: SecretAccess,
    revision_key: bytes,
    run_options: RunOptionsPolicy,
) -> tuple[dict[str, DesiredSimulation], list[SpecError]]:
    """Simulations whose secrets may be read and are set and whose run options the policy
    allows, with values; errors for the rest."""
    simulations: dict[str, DesiredSimulation] = {}
    errors: list[SpecError] = []
    access = access.with_reserved(_pool_password_variables(catalog))
    for name, obj in catalog.simulations.items():
        assert isinstance(obj.spec, SimulationSpec)
        refs = obj.spec.secret_env
        problems = [
            _error_at(obj, f"spec.secretEnv.{key}.fromEnv", problem)
            for key, ref in refs.items()
            if (problem := _secret_problem(access, ref.from_env, environ)) is not None
        ]
        problems += run_options_errors(obj, run_options)
        errors += problems
        if problems:
            continue
        secrets = {key: SecretStr(environ[ref.from_env]) for key, ref in refs.items()}
        workdir = str(Path(obj.file).resolve().parent)
        simulations[name] = DesiredSimulation(name, obj.spec, secrets, workdir, revision_key)
    return simulations, errors


def _prune_hold(catalog: Catalog, errors: list[SpecError], allow_empty_prune: bool) -> str:
    """Why pruning must wait, or "" when it may go ahead."""
    if errors:
        return f"{len(errors)} spec error(s) must be fixed first"
    if catalog.missing and not allow_empty_prune:
        return "the specs directory is missing (run with --allow-empty-prune to prune all)"
    if catalog.empty and not allow_empty_prune:
        return "the specs directory is empty (run with --allow-empty-prune to prune all)"
    return ""


def desired_state(
    catalog: Catalog,
    environ: Mapping[str, str],
    *,
    revision_key: bytes,
    access: SecretAccess | None = None,
    allow_empty_prune: bool = False,
    run_options: RunOptionsPolicy | None = None,
) -> tuple[Desired, tuple[SpecError, ...]]:
    """Build the planner's desired state from loaded specs.

    Secret values are read from ``environ`` (the controller's environment). A missing
    variable, or one the spec may not read (the controller's own credentials, or outside
    the operator's allow-list), is a spec error at the ``fromEnv`` field; the object it
    belongs to is left out, and like any spec error it holds pruning, so its existing
    simulators stay untouched. So is a simulation whose ``containerRunOptions`` the
    operator's policy refuses (an error at that field): nothing of it starts.

    Args:
        catalog: the specs in force (last good version of each failing file).
        environ: where ``secretEnv`` and ``passwordFromEnv`` values come from.
        revision_key: the controller's key for secret values in template revisions.
        access: which variables ``fromEnv`` may read (default: any not reserved).
        allow_empty_prune: prune even when the directory is empty or missing.
        run_options: the operator's run-options policy (default: the strict allow-list).

    Returns:
        The desired state and every spec error (loading, secrets, run options).
    """
    pools, passwords, pool_errors = _resolve_pools(catalog, environ)
    simulations, simulation_errors = _resolve_simulations(
        catalog, environ, access or SecretAccess(), revision_key, run_options or RunOptionsPolicy()
    )
    errors = [*catalog.errors, *pool_errors, *simulation_errors]
    held = _prune_hold(catalog, errors, allow_empty_prune)
    failing = {e.file for e in errors}
    notes = {
        name: f"{obj.file} has errors; "
        + ("its last good version stays in force" if name in simulations else "left as it is")
        for name, obj in catalog.simulations.items()
        if obj.file in failing
    }
    desired = Desired(
        pools=pools,
        simulations=simulations,
        prune_held_because=held,
        registry_passwords=passwords,
        notes=notes,
    )
    return desired, tuple(sorted(set(errors)))


# ------------------------------------------------------------------------------- pass


def describe(action: Action) -> str:
    """One line about an action, safe to log and show (no secrets)."""
    match action:
        case CreatePool(name, spec, dedicated, spot):
            return f"create pool {name} ({spec.vm_size}, {dedicated} dedicated + {spot} spot)"
        case ResizePool(name, dedicated, spot, from_dedicated, from_spot):
            return f"resize pool {name} {from_dedicated}+{from_spot} → {dedicated}+{spot} nodes"
        case DeletePool(name):
            return f"delete pool {name}"
        case CreateJob(name, pool):
            return f"create simulation {name} on pool {pool}"
        case DeleteJob(name):
            return f"delete simulation {name} and its simulators"
        case AddTasks(job, template, tasks):
            slots = ", ".join(str(t.slot) for t in tasks[:10]) + (", …" if len(tasks) > 10 else "")
            return f"start {len(tasks)} simulator(s) of {job} ({template.image}) in slot(s) {slots}"
        case StopTask(job, task_id, slot, reason):
            return f"stop simulator {task_id} of {job} (slot {slot}, {reason})"
        case DeleteTask(job, task_id):
            return f"forget exited simulator {task_id} of {job}"
    raise AssertionError(action)


@dataclass(frozen=True)
class ActionFailure:
    """An action the backend refused or could not complete."""

    action: Action
    message: str
    code: str | None
    transient: bool


@dataclass(frozen=True)
class PassResult:
    """What one pass saw, decided and did.

    Attributes:
        plan: the planner's decision (status is computed from the observed snapshot).
        observed: the snapshot the plan was made from.
        executed: actions the backend carried out.
        failures: actions that failed.
        retry_after: when a throttled backend may be called again, if it asked.
        started_at / duration: for logs and metrics.
    """

    plan: Plan
    observed: Observed
    executed: tuple[Action, ...]
    failures: tuple[ActionFailure, ...]
    retry_after: datetime | None
    started_at: datetime
    duration: timedelta

    @functools.cached_property
    def status(self) -> Status:
        """The plan's status with failed actions added to their objects' messages
        (computed once; metrics, ``/status`` and ``apply`` all read it)."""
        return with_failures(self.plan.status, self.failures)


def with_failures(status: Status, failures: tuple[ActionFailure, ...]) -> Status:
    """Append "… failed: reason" to the message of each object an action failed on."""
    if not failures:
        return status
    notes: dict[tuple[str, str], list[str]] = {}
    for failure in failures:
        notes.setdefault(subject(failure.action), []).append(
            f"{describe(failure.action)} failed: {failure.message}"
        )

    def extend(message: str, extra: list[str] | None) -> str:
        return "; ".join([message, *extra] if message else extra) if extra else message

    return Status(
        simulations=tuple(
            dataclasses.replace(s, message=extend(s.message, notes.get(("simulation", s.name))))
            for s in status.simulations
        ),
        pools=tuple(
            dataclasses.replace(p, message=extend(p.message, notes.get(("pool", p.name))))
            for p in status.pools
        ),
    )


async def run_pass(
    desired: Desired,
    backend: Backend,
    clock: Clock,
    *,
    execute: bool = True,
    config: PlannerConfig | None = None,
    progress: Mapping[str, Progress] | None = None,
    absent: Mapping[tuple[str, str], datetime] | None = None,
) -> PassResult:
    """Observe the backend, plan, and (unless ``execute`` is False) carry the plan out.

    Args:
        desired: what the specs ask for.
        backend: where simulators run.
        clock: the source of "now".
        execute: False for ``simfleet plan``: observe and plan only.
        config: planner tuning.
        progress: the previous pass's ``plan.progress`` (progress deadlines span passes).
        absent: the previous pass's ``plan.absent`` (the prune delay spans passes).

    Returns:
        The pass's result; it never raises for backend errors of single actions.
    """
    started = clock()
    observed = await backend.observe()
    decided = plan(desired, observed, clock(), config, progress, absent)
    for (kind, name), reason in sorted(decided.failures.items()):
        log.warning("planning_failed", kind=kind, name=name, error=reason)
    executed: list[Action] = []
    failures: list[ActionFailure] = []
    retry_after: datetime | None = None
    for action in decided.actions if execute else ():
        try:
            await backend.execute(action)
        except BackendError as exc:
            transient = isinstance(exc, TransientBackendError)
            failures.append(ActionFailure(action, str(exc), exc.code, transient=transient))
            log.warning("action_failed", action=describe(action), error=str(exc), code=exc.code)
            if isinstance(exc, TransientBackendError) and exc.retry_after is not None:
                retry_after = clock() + timedelta(seconds=exc.retry_after)
                break  # nothing more may be sent inside the Retry-After window
        else:
            executed.append(action)
            log.info("action", action=describe(action))
    return PassResult(
        plan=decided,
        observed=observed,
        executed=tuple(executed),
        failures=tuple(failures),
        retry_after=retry_after,
        started_at=started,
        duration=clock() - started,
    )
