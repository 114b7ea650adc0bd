"""The operator's options as a reconciler's settings, shared by ``run``, ``plan`` and
``apply`` (each of which then only drives :class:`~controller.reconcile.Reconciler` steps)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import click

from controller.backends import DEFAULT_FLEET, Backend
from controller.cli._options import Delays
from controller.daemon import RevisionKeyError, revision_key
from controller.planner import PlannerConfig
from controller.reconcile import MAX_IN_FLIGHT, Reconciler, Settings
from controller.spec import RunOptionsPolicy, SecretAccess


@dataclass(frozen=True)
class PassSettings:
    """The operator's options that shape a pass, as ``plan`` and ``apply`` read them."""

    state_dir: Path
    allow_empty_prune: bool = False
    settle: float = 5.0
    delays: Delays = field(default_factory=Delays)
    allow_secret_env: tuple[str, ...] = ()
    run_options: RunOptionsPolicy = field(default_factory=RunOptionsPolicy)
    max_in_flight: int = MAX_IN_FLIGHT
    key_file: Path | None = None
    fleet: str = DEFAULT_FLEET

    def planner(self) -> PlannerConfig:
        """The planner's tuning."""
        return PlannerConfig(
            settle=timedelta(seconds=self.settle),
            prune_delay=timedelta(seconds=self.delays.prune),
            scale_down_delay=timedelta(seconds=self.delays.scale_down),
        )

    def access(self) -> SecretAccess:
        """Which variables ``fromEnv`` may read."""
        return SecretAccess(allow=self.allow_secret_env)

    def key(self) -> bytes:
        """The revision key of the state directory; one clear line if it is unusable."""
        try:
            return revision_key(self.state_dir, self.key_file)
        except RevisionKeyError as exc:
            raise click.ClickException(str(exc)) from None


def require_specs(specs: Path, allow_empty_prune: bool) -> None:
    """A missing (or mistyped) specs directory ends ``plan`` and ``apply`` with one line,
    unless pruning everything is what was asked for: it would otherwise look like a fleet
    that matches specs asking for nothing."""
    if not specs.is_dir() and not allow_empty_prune:
        what = "is not a directory" if specs.exists() else "does not exist"
        raise click.ClickException(
            f"the specs directory {specs} {what} "
            "(--allow-empty-prune plans the removal of everything instead)"
        )


def reconciler(specs: Path, backend: Backend, settings: PassSettings) -> Reconciler:
    """The reconciler ``plan`` and ``apply`` step: the process's environment for secrets,
    the change summary on, progress kept in the state directory."""
    return Reconciler(
        Settings(
            specs=specs,
            revision_key=settings.key(),
            environ=os.environ,
            access=settings.access(),
            allow_empty_prune=settings.allow_empty_prune,
            run_options=settings.run_options,
            planner=settings.planner(),
            max_in_flight=settings.max_in_flight,
            state_dir=settings.state_dir,
            explain=True,
            fleet=settings.fleet,
        ),
        backend,
    )
