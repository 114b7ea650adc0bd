"""One pass from the command line, shared by ``plan`` and ``apply``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import click

from controller.backends import Backend
from controller.daemon import RevisionKeyError, revision_key, utc_now
from controller.planner import PlannerConfig, Progress
from controller.reconcile import PassResult, desired_state, run_pass
from controller.spec import (
    RunOptionsPolicy,
    SecretAccess,
    SpecError,
    build_catalog,
    load_directory,
)


@dataclass(frozen=True)
class PassSettings:
    """The operator's options that shape a pass, as ``plan`` and ``apply`` read them."""

    state_dir: Path
    allow_empty_prune: bool = False
    settle: float = 5.0
    prune_delay: float = 10.0
    allow_secret_env: tuple[str, ...] = ()
    run_options: RunOptionsPolicy = field(default_factory=RunOptionsPolicy)

    def planner(self) -> PlannerConfig:
        """The planner's tuning."""
        return PlannerConfig(
            settle=timedelta(seconds=self.settle),
            prune_delay=timedelta(seconds=self.prune_delay),
        )

    def access(self) -> SecretAccess:
        """Which variables ``fromEnv`` may read."""
        return SecretAccess(allow=self.allow_secret_env)

    def key(self) -> bytes:
        """The revision key of the state directory; one clear line if it is unusable."""
        try:
            return revision_key(self.state_dir)
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


@dataclass
class PassMemory:
    """What one pass hands the next: progress deadlines and prune-delay clocks."""

    progress: Mapping[str, Progress] = field(default_factory=dict)
    absent: Mapping[tuple[str, str], datetime] = field(default_factory=dict)

    def remember(self, result: PassResult) -> None:
        """Keep what ``result``'s plan tracks across passes."""
        self.progress = result.plan.progress
        self.absent = result.plan.absent


async def one_pass(
    specs: Path,
    backend: Backend,
    settings: PassSettings,
    *,
    execute: bool,
    memory: PassMemory | None = None,
) -> tuple[PassResult, tuple[SpecError, ...]]:
    """Load the specs and run one pass (``execute=False``: plan only)."""
    memory = memory or PassMemory()
    catalog = build_catalog(load_directory(specs))
    desired, errors = desired_state(
        catalog,
        os.environ,
        revision_key=settings.key(),
        access=settings.access(),
        allow_empty_prune=settings.allow_empty_prune,
        run_options=settings.run_options,
    )
    result = await run_pass(
        desired,
        backend,
        utc_now,
        execute=execute,
        config=settings.planner(),
        progress=memory.progress,
        absent=memory.absent,
    )
    memory.remember(result)
    return result, errors
