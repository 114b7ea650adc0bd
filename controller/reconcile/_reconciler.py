"""Where the loop's state lives: the one :class:`Reconciler` and its steps.

The daemon, ``simfleet apply`` (with or without ``--wait``) and ``simfleet plan`` all drive
one reconciler through :meth:`Reconciler.step`, so they can never disagree about what a
step does: read the specs, observe, plan, execute, publish. Between steps it keeps

- the last good catalog (a file that breaks keeps its last good version in force);
- the desired state and the fleet as last seen (:mod:`._snapshot`), so a step woken by a
  spec edit observes and plans only the simulations the edit changed (:mod:`._scope`);
- rollout progress — in the state directory (:mod:`._progress_file`), so progress
  deadlines survive a restart — the prune delay's absence clocks and the pools' sizing
  memory (the scale-down delay's clocks, resize retries);
- the ``Retry-After`` window (:mod:`._window`), measured on its one injected clock.

Status is computed after execution: the executed actions' known effects are applied to
the snapshot and the touched simulations are planned again on it, without executing
anything, so a step's status already shows what it did and no second pass is needed to
publish it. What the backend does afterwards by itself (a pending simulator starting)
shows with the next observation of that simulation.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from controller.backends import DEFAULT_FLEET, Backend, TransientBackendError
from controller.planner import (
    Action,
    Desired,
    Observed,
    Plan,
    PlannerConfig,
    PoolMemory,
    Progress,
    Status,
    subject,
)
from controller.reconcile._clock import Clock
from controller.reconcile._desired import desired_state
from controller.reconcile._executor import MAX_IN_FLIGHT, Execution, Executor
from controller.reconcile._planning import merged_status, plan_step, status_after
from controller.reconcile._progress_file import ProgressFile
from controller.reconcile._result import PassResult
from controller.reconcile._scope import changed
from controller.reconcile._snapshot import merged, with_effects
from controller.reconcile._window import RetryWindow
from controller.spec import (
    Catalog,
    ParsedFiles,
    RunOptionsPolicy,
    SecretAccess,
    SpecError,
    build_catalog,
    load_directory,
)

log = structlog.get_logger("simfleet.reconcile")


@dataclass(frozen=True)
class Settings:
    """What shapes every step, fixed for the reconciler's life.

    Attributes:
        specs: the specs directory.
        revision_key: the key for secret values in template revisions.
        environ: where ``secretEnv`` and ``passwordFromEnv`` values come from.
        access: which variables ``fromEnv`` may read.
        allow_empty_prune: prune even when the directory is empty or missing.
        run_options: the operator's policy for ``containerRunOptions``.
        planner: planner tuning (settle time, prune delay).
        max_in_flight: backend requests in flight at once, over everything a step sends.
        state_dir: where rollout progress is kept across restarts (None: memory only).
        explain: compute the human change summary (``plan``, ``apply``; not the daemon).
        fleet: the fleet the steps act for (its progress file is its own).
    """

    specs: Path
    revision_key: bytes = field(default=b"", repr=False)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    access: SecretAccess = field(default_factory=SecretAccess)
    allow_empty_prune: bool = False
    run_options: RunOptionsPolicy = field(default_factory=RunOptionsPolicy)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    max_in_flight: int = MAX_IN_FLIGHT
    state_dir: Path | None = None
    explain: bool = True
    fleet: str = DEFAULT_FLEET


class Reconciler:
    """Owns the loop's state and runs its steps (see the module's docstring)."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        *,
        clock: Clock | None = None,
        progress: Mapping[str, Progress] | None = None,
        absent: Mapping[tuple[str, str], datetime] | None = None,
        sizing: Mapping[str, PoolMemory] | None = None,
        on_load: Callable[[Desired, tuple[SpecError, ...]], None] | None = None,
    ) -> None:
        """Args:
        settings: what shapes every step.
        backend: where simulators run.
        clock: wall and monotonic time (default: the system's).
        progress / absent / sizing: start from these instead of the state directory's
            progress, fresh prune-delay clocks and no sizing memory.
        on_load: told each step's desired state and spec errors before anything is sent
            (the daemon teaches its log redactor the secrets there).
        """
        self._on_load = on_load
        self.settings = settings
        self.backend = backend
        self.clock = clock or Clock()
        self.window = RetryWindow(self.clock.monotonic)
        self._executor = Executor(backend, settings.max_in_flight)
        self._file = (
            ProgressFile(settings.state_dir, settings.fleet)
            if settings.state_dir is not None
            else None
        )
        self._progress: Mapping[str, Progress] = (
            progress if progress is not None else (self._file.load() if self._file else {})
        )
        self._absent: Mapping[tuple[str, str], datetime] = absent or {}
        self._sizing: Mapping[str, PoolMemory] = sizing or {}
        self._catalog: Catalog | None = None
        self._parsed = ParsedFiles()  # an edit re-parses only the files it changed
        self._desired: Desired | None = None
        self._snapshot: Observed | None = None
        self._status = Status()
        self._due: datetime | None = None

    @property
    def progress(self) -> Mapping[str, Progress]:
        """Rollout progress per simulation not yet converged."""
        return self._progress

    def load(self) -> tuple[Desired, tuple[SpecError, ...]]:
        """Read the specs directory into the desired state (the last good version of a
        failing file stays in force) and its spec errors."""
        loaded = load_directory(self.settings.specs, self._parsed)
        self._catalog = build_catalog(loaded, self._catalog)
        return desired_state(
            self._catalog,
            self.settings.environ,
            revision_key=self.settings.revision_key,
            access=self.settings.access,
            allow_empty_prune=self.settings.allow_empty_prune,
            run_options=self.settings.run_options,
        )

    async def step(
        self, *, full: bool = True, execute: bool = True, recheck: frozenset[str] = frozenset()
    ) -> PassResult:
        """Read the specs and reconcile once.

        Args:
            full: observe and plan every simulation. False: only those whose desired
                state changed since the last step (none: every pool, no job) — a step
                woken by a spec edit, or ``apply --wait`` polling pools without nodes.
            execute: False for ``simfleet plan``: observe and plan, change nothing.
            recheck: simulations a step that is not full observes and plans as well (the
                daemon passes those its previous step acted on).

        Raises:
            BackendError: the observation failed (a ``Retry-After`` it carried is kept
                in :attr:`window`); single actions never raise.
        """
        desired, errors = await asyncio.to_thread(self.load)
        if self._on_load is not None:
            self._on_load(desired, errors)
        scope = None if full or self._snapshot is None else changed(self._desired, desired)
        if scope is not None:
            scope |= recheck
        result = await self.reconcile(desired, errors, scope=scope, execute=execute)
        self._desired = desired
        return result

    async def reconcile(
        self,
        desired: Desired,
        errors: tuple[SpecError, ...] = (),
        *,
        scope: frozenset[str] | None = None,
        execute: bool = True,
    ) -> PassResult:
        """Observe ``scope`` (None: everything), plan and (unless ``execute`` is False)
        execute for a desired state already built; :meth:`step` after reading the specs."""
        started = self.clock.wall()
        cached, self._snapshot = self._snapshot, None  # a step that raises leaves no view
        try:
            fresh = await self.backend.observe(jobs=scope)
        except TransientBackendError as exc:
            self.window.extend(exc.retry_after)
            raise
        observed = merged(cached, fresh, scope) if cached is not None else fresh
        settings = self.settings
        decided = plan_step(
            desired,
            observed,
            self.clock.wall(),
            settings.planner,
            self._progress,
            self._absent,
            self._sizing,
            scope=scope,
            explain=settings.explain,
        )
        execution = await self._executor.run(decided.actions) if execute else Execution()
        self.window.extend(execution.retry_after)
        after = with_effects(observed, execution.executed, self.clock.wall())
        status = merged_status(self._status, decided.status, scope)
        touched = _simulations_of(execution.executed)
        if execution.executed:
            now = self.clock.wall()
            replanned = status_after(desired, after, now, settings.planner, decided, touched)
            status = merged_status(status, replanned, touched)
        due = self._next_due(decided.requeue_after, scope)
        self._remember(decided, after, status, execute=execute)
        finished = self.clock.wall()
        return PassResult(
            plan=decided,
            observed=observed,
            executed=execution.executed,
            failures=execution.failures,
            retry_after=_at(finished, execution.retry_after),
            started_at=started,
            duration=finished - started,
            after=status,
            errors=errors,
            desired=desired,
            scope=scope,
            touched=touched,
            due=due,
            left=after,
        )

    def _next_due(self, planned: datetime | None, scope: frozenset[str] | None) -> datetime | None:
        """When a timer is next due: a scoped plan's ``requeue_after`` covers only its
        scope, so the earlier steps' moment is kept (a wake-up too many costs one pass)."""
        if scope is None:
            self._due = planned
        else:
            pending = [d for d in (self._due, planned) if d is not None]
            self._due = min(pending, default=None)
        return self._due

    def _remember(self, decided: Plan, after: Observed, status: Status, *, execute: bool) -> None:
        """Keep what the next step starts from; progress also in the state directory
        (a step that executes nothing — ``plan`` — leaves the timers as they were)."""
        self._snapshot = after
        self._status = status
        if not execute:
            return
        self._progress = decided.progress
        self._absent = decided.absent
        self._sizing = decided.sizing
        if self._file is not None:
            try:
                self._file.save(self._progress)
            except OSError as exc:
                log.warning("progress_not_saved", path=str(self._file.path), error=str(exc))


def _simulations_of(actions: tuple[Action, ...]) -> frozenset[str]:
    return frozenset(name for kind, name in map(subject, actions) if kind == "simulation")


def _at(now: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else now + timedelta(seconds=seconds)
