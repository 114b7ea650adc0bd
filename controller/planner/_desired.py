"""Desired state: what the spec files ask for, secrets resolved, as one value.

The planner compares this with :mod:`._observed` and never changes it; the reconcile
layer builds it from the catalog of spec files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from controller.planner._actions import RegistryLogin
from controller.spec import PoolSpec, SimulationSpec


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
        login: how its simulators pull their image (their registry's entry in the pool's
            spec, password as the controller has it now; see :mod:`._logins`), if any.
    """

    name: str
    spec: SimulationSpec
    secrets: Mapping[str, SecretStr] = field(default_factory=dict)
    workdir: str | None = None
    revision_key: bytes = field(default=b"", repr=False)
    login: RegistryLogin | None = None


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
        login_digests: pool name → keyed digest of its registry passwords, as a pool
            records it (see :mod:`._logins`); absent or "" when it has none.
    """

    pools: Mapping[str, PoolSpec] = field(default_factory=dict)
    simulations: Mapping[str, DesiredSimulation] = field(default_factory=dict)
    prune_held_because: str = ""
    registry_passwords: Mapping[str, SecretStr] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)
    login_digests: Mapping[str, str] = field(default_factory=dict)

    @property
    def prune_allowed(self) -> bool:
        """Whether deleting what no spec asks for may go ahead."""
        return not self.prune_held_because
