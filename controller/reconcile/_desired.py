"""Desired state: a spec catalog turned into the planner's :class:`Desired`.

Secrets are resolved from an environment mapping the caller passes in; whatever cannot
be resolved (a missing variable, a refused one, run options the policy forbids) becomes a
spec error at its field and holds pruning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from controller.planner import (
    Desired,
    DesiredSimulation,
    login_digest,
    login_for,
    revision,
    template_of,
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
    simulations = {
        name: dataclasses.replace(
            sim, login=login_for(sim.spec.image, pools.get(sim.spec.pool), passwords)
        )
        for name, sim in simulations.items()
    }
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
        login_digests={
            name: digest
            for name, spec in pools.items()
            if (digest := login_digest(revision_key, spec, passwords))
        },
    )
    return desired, tuple(sorted(set(errors)))


def desired_digest(desired: Desired) -> str:
    """A short digest of everything the specs ask for (template revisions, counts, pools).

    The fleet's leader publishes it in its lease, with the digest it last saw converged,
    so ``apply --wait`` beside a running daemon can tell when the leader has done exactly
    what this ``apply`` was given. Two controllers agree on it when their specs and their
    revision keys agree (secret values enter only through the keyed template revision).
    """
    body = {
        "pools": {name: spec.model_dump(mode="json") for name, spec in desired.pools.items()},
        "simulations": {
            name: [sim.spec.model_dump(mode="json"), revision(template_of(sim))]
            for name, sim in desired.simulations.items()
        },
        "prune": desired.prune_allowed,
    }
    canonical = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
