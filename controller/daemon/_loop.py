"""The control loop: one pass at a time, then sleep until something is due.

Wake-ups come from three places — the spec watcher, the backend (a simulator exited) and
timers (resync period, a back-off ending, a ``Retry-After`` window closing). Triggers
that arrive during a pass coalesce into one more pass right after it. Each pass reloads
the whole specs directory and calls :func:`controller.reconcile.run_pass`, so the loop
holds no state about the fleet beyond the last good version of each spec file.

``ready`` and ``stopped`` are events tests and the CLI await (kopf's ``ready_flag``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from controller.backends import (
    MIN_SECRET_LENGTH,
    Backend,
    BackendError,
    TransientBackendError,
    too_short,
)
from controller.daemon import _http
from controller.daemon._document import status_document
from controller.daemon._logging import REDACTOR
from controller.daemon._metrics import Metrics
from controller.daemon._revision import git_revision
from controller.daemon._watching import watch
from controller.planner import Desired, PlannerConfig, Progress, Status
from controller.reconcile import desired_state, run_pass
from controller.spec import (
    Catalog,
    RunOptionsPolicy,
    SecretAccess,
    SpecError,
    build_catalog,
    load_directory,
)

log = structlog.get_logger("simfleet.daemon")


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class DaemonConfig:
    """Settings of ``simfleet run``.

    Attributes:
        specs: the specs directory.
        host / port: where the HTTP endpoints listen (port 0 picks a free one).
        resync: seconds between passes when nothing happens.
        after_change: seconds to the next pass after one that changed something. A pass's
            status is computed before its actions run, so a prompt follow-up pass is what
            publishes their effect (bench: edit → running in /status, median 150 ms).
        allow_empty_prune: prune even when the directory is empty or missing.
        planner: planner tuning (the prune delay among it).
        revision_key: the key for secret values in template revisions (:mod:`._keys`).
        access: which controller variables a spec's ``fromEnv`` may read.
        run_options: the operator's policy for ``containerRunOptions``.
    """

    specs: Path
    host: str = "127.0.0.1"
    port: int = 9120
    resync: float = 30.0
    after_change: float = 0.1
    allow_empty_prune: bool = False
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    revision_key: bytes = field(default=b"", repr=False)
    access: SecretAccess = field(default_factory=SecretAccess)
    run_options: RunOptionsPolicy = field(default_factory=RunOptionsPolicy)


def secret_values(desired: Desired) -> list[str]:
    """Every secret value in the desired state, for the log redactor."""
    values = [v.get_secret_value() for v in desired.registry_passwords.values()]
    for sim in desired.simulations.values():
        values += [v.get_secret_value() for v in sim.secrets.values()]
    return values


class Controller:
    """``simfleet run``: watches specs, runs passes, serves status."""

    def __init__(
        self,
        config: DaemonConfig,
        backend: Backend,
        *,
        clock: Callable[[], datetime] = utc_now,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.clock = clock
        self.environ = environ if environ is not None else os.environ
        self.metrics = Metrics()
        self.ready = asyncio.Event()
        self.stopped = asyncio.Event()
        self.port: int | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._catalog: Catalog | None = None
        self._errors: tuple[SpecError, ...] = ()
        self._pass_started: float | None = None
        self._progress: Mapping[str, Progress] = {}
        self._absent: Mapping[tuple[str, str], datetime] = {}
        self._short_secrets = 0
        self._revision: str | None = None
        self._quiet_until = 0.0  # monotonic: no backend call before this (Retry-After)
        self._document: dict[str, Any] = status_document(
            Status(), (), revision=None, backend=backend.name, updated_at=clock()
        )

    # ------------------------------------------------------------------ control surface

    def wake(self) -> None:
        """Run a pass as soon as the current one (if any) ends."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the loop to finish its pass and shut down."""
        self._stop.set()
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """The latest ``/status`` document."""
        return self._document

    def healthy(self) -> tuple[bool, str]:
        """Alive and not stuck: no pass has been running for longer than it ever should."""
        if self.stopped.is_set():
            return False, "stopped"
        if self._pass_started is not None:
            running = time.monotonic() - self._pass_started
            if running > max(120.0, 4 * self.config.resync):
                return False, f"a pass has been running for {running:.0f}s"
        return True, "ok"

    # ------------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Run until :meth:`stop`, then stop the HTTP server; the backend's owner closes it."""
        self.backend.on_change(self.wake)
        app = _http.build_app(
            healthy=self.healthy,
            ready=self.ready.is_set,
            status=self.status,
            metrics=self.metrics.render,
        )
        runner = await _http.serve(app, self.config.host, self.config.port)
        self.port = runner.addresses[0][1] if runner.addresses else self.config.port
        watcher = asyncio.create_task(watch(self.config.specs, self.wake, self._stop))
        log.info(
            "started",
            specs=str(self.config.specs),
            backend=self.backend.name,
            listen=f"{self.config.host}:{self.port}",
        )
        try:
            while not self._stop.is_set():
                self._wake.clear()
                delay = await self._one_pass()
                await self._sleep(delay)
                await self._respect_retry_after()
        finally:
            self._stop.set()
            await asyncio.gather(watcher, return_exceptions=True)
            await runner.cleanup()
            self.stopped.set()
            log.info("stopped")

    async def _respect_retry_after(self) -> None:
        """Send nothing inside a ``Retry-After`` window, whatever woke the loop."""
        remaining = self._quiet_until - time.monotonic()
        if remaining > 0 and not self._stop.is_set():
            log.info("throttled", seconds=round(remaining, 3))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), remaining)

    def _quiet_for(self, seconds: float | None) -> None:
        if seconds is not None and seconds > 0:
            self._quiet_until = max(self._quiet_until, time.monotonic() + seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, seconds))

    async def _one_pass(self) -> float:
        """Load specs, run one pass, publish status; return seconds until the next pass."""
        self._pass_started = time.monotonic()
        try:
            loaded = await asyncio.to_thread(load_directory, self.config.specs)
            self._catalog = build_catalog(loaded, self._catalog)
            desired, errors = desired_state(
                self._catalog,
                self.environ,
                revision_key=self.config.revision_key,
                access=self.config.access,
                allow_empty_prune=self.config.allow_empty_prune,
                run_options=self.config.run_options,
            )
            self._remember_secrets(secret_values(desired))
            self._log_error_changes(errors)
            try:
                result = await run_pass(
                    desired,
                    self.backend,
                    self.clock,
                    config=self.config.planner,
                    progress=self._progress,
                    absent=self._absent,
                )
            except BackendError as exc:
                self.metrics.count_failed_observe(exc.code)
                log.warning("observe_failed", error=str(exc), code=exc.code)
                if isinstance(exc, TransientBackendError):
                    self._quiet_for(exc.retry_after)
                return min(self.config.resync, 5.0)
            except Exception:  # a bug must not end the daemon; it is logged with its trace
                self.metrics.count_failed_observe("unexpected")
                log.exception("pass_crashed")
                return min(self.config.resync, 5.0)
            self._progress = result.plan.progress
            self._absent = result.plan.absent
            self.metrics.observe_pass(result, errors)
            self._count_requests()
            revision = git_revision(self.config.specs)
            if revision != self._revision:
                log.info("revision", revision=revision, specs=str(self.config.specs))
                self._revision = revision
            self._document = status_document(
                result.status,
                errors,
                revision=revision,
                backend=self.backend.name,
                updated_at=self.clock(),
            )
            self.ready.set()
            if result.executed or result.failures:
                log.info(
                    "pass",
                    executed=len(result.executed),
                    failed=len(result.failures),
                    seconds=round(result.duration.total_seconds(), 3),
                )
            if result.retry_after is not None:
                self._quiet_for((result.retry_after - self.clock()).total_seconds())
            return self._next_delay(result.plan.requeue_after, bool(result.executed))
        finally:
            self._pass_started = None

    def _remember_secrets(self, values: list[str]) -> None:
        """Teach the log redactor every secret; warn once about values too short to mask."""
        REDACTOR.update(values)
        short = too_short(values)
        if short and short != self._short_secrets:
            log.warning(
                "short_secrets",
                count=short,
                hint=f"secret values under {MIN_SECRET_LENGTH} characters are not masked in"
                " logs and status; use longer secrets",
            )
        self._short_secrets = short

    def _count_requests(self) -> None:
        """Backends that send HTTP requests (Azure) publish their counts in /metrics."""
        self.metrics.observe_http(self.backend.request_counts())

    def _next_delay(self, requeue: datetime | None, changed: bool) -> float:
        candidates = [self.config.resync]
        if changed:
            candidates.append(self.config.after_change)
        if requeue is not None:
            candidates.append((requeue - self.clock()).total_seconds())
        return max(0.0, min(candidates))

    def _log_error_changes(self, errors: tuple[SpecError, ...]) -> None:
        for error in sorted(set(errors) - set(self._errors)):
            log.error(
                "spec_error",
                file=error.file,
                line=error.line,
                column=error.column,
                path=error.path,
                error=str(error),
            )
        for error in sorted(set(self._errors) - set(errors)):
            log.info("spec_error_fixed", file=error.file, line=error.line, path=error.path)
        self._errors = errors
