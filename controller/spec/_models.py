"""The spec format of product.md as pydantic models: what a user may write, and its defaults.

Models are frozen and forbid unknown fields, so a typo is an error rather than a silently
ignored setting. Field names are snake_case in Python and camelCase in YAML (the alias).
Validation messages are written for users; :mod:`controller.spec._messages` turns them
into ``file:line:col: path: message`` lines. Nothing here reads files or the environment:
``secretEnv`` only names variables, which the reconcile layer resolves.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from controller.spec._references import ImageReference
from controller.spec._values import AUTO, Auto, CountOrAuto, Duration, IntOrPercent, Percent

API_VERSION = "simfleet/v1"

#: Batch's id rule: letters, digits, ``-`` and ``_``, at most 64 characters.
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
#: Environment variable names as POSIX shells accept them.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Batch's hard limit on a task's life, counted from when it was added.
BATCH_TASK_LIMIT = timedelta(days=180)
#: The longest maxLifetime: recycling needs time to finish before Batch's limit.
MAX_LIFETIME_LIMIT = timedelta(days=170)

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        alias_generator=lambda name: re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name),
    )


class RestartPolicy(StrEnum):
    """When a simulator that exited is replaced."""

    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


class NodeCounts(_Model):
    """How many nodes a pool has; ``auto`` sizes a count to the simulators on the pool."""

    dedicated: CountOrAuto = Field(default=AUTO, description="Dedicated nodes, or auto.")
    spot: CountOrAuto = Field(default=0, description='Spot ("low priority") nodes, or auto.')
    max: int = Field(
        default=10, ge=0, strict=True, description="Upper bound on dedicated + spot when auto."
    )

    @model_validator(mode="after")
    def _fixed_counts_fit_max(self) -> NodeCounts:
        fixed = sum(c for c in (self.dedicated, self.spot) if not isinstance(c, Auto))
        has_auto = AUTO in (self.dedicated, self.spot)
        if has_auto and fixed > self.max:
            raise ValueError(f"max ({self.max}) is below the fixed node count ({fixed})")
        return self


class NodeImage(_Model):
    """The marketplace image of a pool's nodes. The default is current and container-capable."""

    publisher: str = "microsoft-dsvm"
    offer: str = "ubuntu-hpc"
    sku: str = "2204"
    version: str = "latest"
    node_agent_sku: str = "batch.node.ubuntu 22.04"


class Registry(_Model):
    """A private container registry: by managed identity, or by username + password."""

    server: Annotated[str, StringConstraints(min_length=1)]
    identity: str | None = Field(
        default=None, description="Resource id of a user-assigned managed identity with AcrPull."
    )
    username: str | None = None
    password_from_env: EnvName | None = Field(
        default=None, description="Controller environment variable holding the password."
    )

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> Registry:
        by_password = self.username is not None or self.password_from_env is not None
        if self.identity is not None and by_password:
            raise ValueError("use either identity or username + passwordFromEnv, not both")
        if by_password and (self.username is None or self.password_from_env is None):
            raise ValueError("username and passwordFromEnv go together")
        return self


class PoolSpec(_Model):
    """``kind: Pool`` — a Batch pool of nodes that simulators run on."""

    vm_size: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="Azure VM size of every node, e.g. standard_d4s_v5."
    )
    task_slots_per_node: int = Field(
        default=1, ge=1, le=256, strict=True, description="Simulators per node."
    )
    nodes: NodeCounts = Field(default_factory=NodeCounts)
    node_image: NodeImage = Field(default_factory=NodeImage)
    registries: tuple[Registry, ...] = ()


class SecretRef(_Model):
    """Where a secret value comes from: always the controller's environment, never the file."""

    from_env: EnvName


class RestartBackoff(_Model):
    """How long before a simulator is replaced: doubles per failure, resets after a good run."""

    initial: Duration = timedelta(seconds=10)
    max: Duration = timedelta(minutes=5)
    reset_after: Duration = timedelta(minutes=10)

    @model_validator(mode="after")
    def _initial_below_max(self) -> RestartBackoff:
        if self.initial > self.max:
            raise ValueError("initial must not be longer than max")
        return self


class Rollout(_Model):
    """How far a template change may go above and below the desired count."""

    max_surge: IntOrPercent = Percent(25)
    max_unavailable: IntOrPercent = 0
    progress_deadline: Duration = Field(
        default=timedelta(minutes=10),
        description="No progress for this long makes the simulation Stalled.",
    )

    @model_validator(mode="after")
    def _not_both_zero(self) -> Rollout:
        if self.max_surge in (0, Percent(0)) and self.max_unavailable in (0, Percent(0)):
            raise ValueError("maxSurge and maxUnavailable cannot both be 0")
        if self.progress_deadline <= timedelta(0):
            raise ValueError("progressDeadline must be positive")
        return self


Command = str | tuple[str, ...]


class SimulationSpec(_Model):
    """``kind: Simulation`` — N identical simulators, one Batch job."""

    pool: Name = Field(description="Name of the Pool the simulators run on.")
    simulators: int = Field(default=1, ge=0, le=100_000, strict=True)
    image: ImageReference = Field(
        description="Container image (the local process runtime only records it)."
    )
    command: Command | None = Field(
        default=None, description="A string run by /bin/sh -c, or a list run as it is."
    )
    env: dict[EnvName, str] = Field(default_factory=dict)
    secret_env: dict[EnvName, SecretRef] = Field(default_factory=dict)
    container_run_options: str = ""
    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    restart_backoff: RestartBackoff = Field(default_factory=RestartBackoff)
    rollout: Rollout = Field(default_factory=Rollout)
    max_lifetime: Duration = timedelta(days=150)
    suspend: bool = Field(default=False, strict=True)

    @model_validator(mode="after")
    def _lifetime_within_batch_limit(self) -> SimulationSpec:
        if self.max_lifetime <= timedelta(0):
            raise ValueError("maxLifetime must be positive")
        if self.max_lifetime > MAX_LIFETIME_LIMIT:
            raise ValueError(
                "maxLifetime must be at most 170d: recycling needs time to finish before "
                "Batch ends every task 180 days after it was added"
            )
        return self

    @model_validator(mode="after")
    def _command_not_empty(self) -> SimulationSpec:
        if self.command is not None and len(self.command) == 0:
            raise ValueError("command must not be empty; leave it out to use the image's own")
        return self


class Metadata(_Model):
    """Kubernetes-shaped metadata; ``name`` becomes the Batch pool or job id."""

    name: Name
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PoolDocument(_Model):
    """One ``kind: Pool`` document."""

    api_version: Literal["simfleet/v1"]
    kind: Literal["Pool"]
    metadata: Metadata
    spec: PoolSpec


class SimulationDocument(_Model):
    """One ``kind: Simulation`` document."""

    api_version: Literal["simfleet/v1"]
    kind: Literal["Simulation"]
    metadata: Metadata
    spec: SimulationSpec


Document = Annotated[PoolDocument | SimulationDocument, Field(discriminator="kind")]
KINDS: dict[str, type[PoolDocument] | type[SimulationDocument]] = {
    "Pool": PoolDocument,
    "Simulation": SimulationDocument,
}
