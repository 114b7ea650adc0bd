"""The spec format of product.md as pydantic models: what a user may write, and its defaults.

Models are frozen and forbid unknown fields, so a typo is an error rather than a silently
ignored setting. Field names are snake_case in Python and camelCase in YAML (the alias).
Validation messages are written for users; :mod:`controller.spec._messages` turns them
into ``file:line:col: path: message`` lines. Nothing here reads files or the environment:
``secretEnv`` only names variables, which the reconcile layer resolves.

Every string field is a :mod:`controller.spec._text` type (no NUL, no lone surrogate, no
control character where it makes no sense), and every duration field has a
:class:`~controller.spec._values.DurationRange`, so a value no process, Batch request or
date calculation can carry is refused here, at its ``file:line:col``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from controller.spec._references import ImageReference
from controller.spec._text import LINE, Line, NonBlank, Text
from controller.spec._values import (
    AUTO,
    MAX_COUNT,
    Auto,
    CountOrAuto,
    DurationRange,
    IntOrPercent,
    Percent,
)

API_VERSION = "simfleet/v1"

#: Batch's id rule: letters, digits, ``-`` and ``_``, at most 64 characters.
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
#: Environment variable names as POSIX shells accept them.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Batch's hard limit on a task's life, counted from when it was added.
BATCH_TASK_LIMIT = timedelta(days=180)
#: The longest maxLifetime: recycling needs time to finish before Batch's limit.
MAX_LIFETIME_LIMIT = timedelta(days=170)

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN), LINE]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN), LINE]

_SECOND = timedelta(seconds=1)
#: A back-off of at least a second: a crash loop with none restarted a simulator 1,218
#: times in 12 s. More than a day between restarts is what ``restartPolicy: Never`` is for.
BackoffDuration = Annotated[timedelta, DurationRange(_SECOND, timedelta(days=1))]
#: ``resetAfter``: no simulator runs longer than the longest ``maxLifetime``.
ResetDuration = Annotated[timedelta, DurationRange(_SECOND, MAX_LIFETIME_LIMIT)]
#: ``progressDeadline``: a rollout that shows no progress for a month is stuck.
DeadlineDuration = Annotated[timedelta, DurationRange(_SECOND, timedelta(days=30))]
LifetimeDuration = Annotated[
    timedelta,
    DurationRange(
        _SECOND,
        MAX_LIFETIME_LIMIT,
        "recycling needs time to finish before Batch ends every task 180 days after it was added",
    ),
]


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
        default=10,
        ge=0,
        le=MAX_COUNT,
        strict=True,
        description="Upper bound on dedicated + spot when auto.",
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

    publisher: NonBlank = "microsoft-dsvm"
    offer: NonBlank = "ubuntu-hpc"
    sku: NonBlank = "2204"
    version: NonBlank = "latest"
    node_agent_sku: NonBlank = "batch.node.ubuntu 22.04"


class Registry(_Model):
    """A private container registry: by managed identity, or by username + password."""

    server: NonBlank
    identity: NonBlank | None = Field(
        default=None, description="Resource id of a user-assigned managed identity with AcrPull."
    )
    username: NonBlank | None = None
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

    vm_size: NonBlank = Field(description="Azure VM size of every node, e.g. standard_d4s_v5.")
    task_slots_per_node: int = Field(
        default=1, ge=1, le=256, strict=True, description="Simulators per node."
    )
    nodes: NodeCounts = Field(default_factory=NodeCounts)
    node_image: NodeImage = Field(default_factory=NodeImage)
    registries: tuple[Registry, ...] = ()
    prefetch_images: bool = Field(
        default=False,
        strict=True,
        description="Pull the images of the pool's simulations onto every node as it starts "
        "(Batch's containerImageNames). Fixed when the pool is created, never updated, and "
        "an image that cannot be pulled makes every node unusable; off by default.",
    )


class SecretRef(_Model):
    """Where a secret value comes from: always the controller's environment, never the file."""

    from_env: EnvName


class RestartBackoff(_Model):
    """How long before a simulator is replaced: doubles per failure, resets after a good run."""

    initial: BackoffDuration = Field(
        default=timedelta(seconds=10), description="The first wait; between 1s and 1d."
    )
    max: BackoffDuration = Field(
        default=timedelta(minutes=5), description="The longest wait; between 1s and 1d."
    )
    reset_after: ResetDuration = Field(
        default=timedelta(minutes=10),
        description="A run this long resets the back-off; between 1s and 170d.",
    )

    @model_validator(mode="after")
    def _initial_below_max(self) -> RestartBackoff:
        if self.initial > self.max:
            raise ValueError("initial must not be longer than max")
        return self


class Rollout(_Model):
    """How far a template change may go above and below the desired count."""

    max_surge: IntOrPercent = Percent(25)
    max_unavailable: IntOrPercent = 0
    progress_deadline: DeadlineDuration = Field(
        default=timedelta(minutes=10),
        description="No progress for this long makes the simulation Stalled; between 1s and 30d.",
    )

    @model_validator(mode="after")
    def _not_both_zero(self) -> Rollout:
        if self.max_surge in (0, Percent(0)) and self.max_unavailable in (0, Percent(0)):
            raise ValueError("maxSurge and maxUnavailable cannot both be 0")
        return self


def _command_given(command: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
    """A command that is written must say what to run (``None`` here is an explicit null)."""
    leave_out = "; leave the field out to use the image's own command"
    if command is None or len(command) == 0:
        raise ValueError("must not be empty" + leave_out)
    program = command if isinstance(command, str) else command[0]
    if not program.strip():
        what = "" if isinstance(command, str) else "the program (the first item) "
        raise ValueError(what + "must not be blank" + leave_out)
    return command


Command = Annotated[Text | tuple[Text, ...] | None, AfterValidator(_command_given)]


def _not_in_env(name: str, info: ValidationInfo) -> str:
    """A ``secretEnv`` name must not also be set by ``env`` (one value per variable)."""
    if name in (info.data.get("env") or {}):
        raise ValueError(
            f"{name} is also set in env; a variable takes its value from env or from"
            " secretEnv, not both"
        )
    return name


SecretEnvName = Annotated[EnvName, AfterValidator(_not_in_env)]


class SimulationSpec(_Model):
    """``kind: Simulation`` — N identical simulators, one Batch job."""

    pool: Name = Field(description="Name of the Pool the simulators run on.")
    simulators: int = Field(default=1, ge=0, le=MAX_COUNT, strict=True)
    image: ImageReference = Field(
        description="Container image (the local process runtime only records it)."
    )
    command: Command = Field(
        default=None, description="A string run by /bin/sh -c, or a list run as it is."
    )
    env: dict[EnvName, Text] = Field(default_factory=dict)
    secret_env: dict[SecretEnvName, SecretRef] = Field(default_factory=dict)
    container_run_options: Line = ""
    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    restart_backoff: RestartBackoff = Field(default_factory=RestartBackoff)
    rollout: Rollout = Field(default_factory=Rollout)
    max_lifetime: LifetimeDuration = Field(
        default=timedelta(days=150),
        description="Recycle a simulator after this long; between 1s and 170d.",
    )
    suspend: bool = Field(default=False, strict=True)


class Metadata(_Model):
    """Kubernetes-shaped metadata; ``name`` becomes the Batch pool or job id."""

    name: Name
    labels: dict[Line, Line] = Field(default_factory=dict)
    annotations: dict[Line, Text] = Field(default_factory=dict)


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
