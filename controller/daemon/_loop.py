"""The control loop: it only wakes and sleeps; the reconciler does the rest.

Wake-ups come from three places — the spec watcher, the backend (a simulator started or
exited) and timers (resync period, a back-off ending, a ``Retry-After`` window closing).
Triggers that arrive during a step coalesce into one more step right after it. A step
woken only by spec edits observes and plans just the simulations the edits changed; a
backend event, a timer or a failed step makes the next one full. Every state the loop
needs between steps — catalog, progress, prune-delay clocks, the ``Retry-After`` window
— lives in the :class:`~controller.reconcile.Reconciler`.

A pass that raises — the backend refused the observation, the specs could not be read, a
bug — is caught here, counted (:mod:`controller.daemon._health`) and logged as one line;
the loop goes on. Only :meth:`Controller.stop` ends :meth:`Controller.run`; an exception
that still escapes it is a failure of the daemon, and its caller must then leave the
simulators running (``simfleet run`` does).

``ready`` and ``stopped`` are events tests and the CLI await (kopf's ``ready_flag``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from controller.backends import (
    DEFAULT_FLEET,
    MIN_SECRET_LENGTH,
    Backend,
    BackendError,
    too_short,
)
from controller.daemon import _http
from controller.daemon._connections import ConnectionGuard, HttpLimits
from controller.daemon._crashloops import CrashLoops
from controller.daemon._document import status_document
from controller.daemon._health import Health
from controller.daemon._leadership import Leadership
from controller.daemon._listening import bind
from controller.daemon._logging import REDACTOR, LoopErrors
from controller.daemon._metrics import Metrics
from controller.daemon._nodewatch import NodeWatch
from controller.daemon._revision import git_revision
from controller.daemon._watching import watch
from controller.planner import Desired, PlannerConfig, Status
from controller.reconcile import (
    MAX_IN_FLIGHT,
    Clock,
    PassResult,
    Reconciler,
    Settings,
    desired_digest,
)
from controller.spec import RunOptionsPolicy, SecretAccess, SpecError

log = structlog.get_logger("simfleet.daemon")


@dataclass(frozen=True)
class DaemonConfig:
    """Settings of ``simfleet run``.

    Attributes:
        specs: the specs directory.
        host / port: where the HTTP endpoints listen (port 0 picks a free one).
        resync: seconds between full passes when nothing happens.
        after_change: seconds until the simulations a pass acted on are observed again —
            those alone, in a scoped pass. Not to publish anything (a pass's status is
            computed after its actions ran): a backend that reports no changes by itself
            (Batch) shows what the actions led to no other way, and a rollout's next step
            waits on it (a new simulator seen running sets its settle timer).
        allow_empty_prune: prune even when the directory is empty or missing.
        planner: planner tuning (the prune delay among it).
        revision_key: the key for secret values in template revisions (:mod:`._keys`).
        access: which controller variables a spec's ``fromEnv`` may read.
        run_options: the operator's policy for ``containerRunOptions``.
        state_dir: the state directory (rollout progress is kept there); the watcher
            ignores it when it lies inside the specs directory.
        max_in_flight: backend requests in flight at once.
        http: limits on the HTTP server's connections.
        failed_passes: consecutive failed passes after which ``/healthz`` fails.
        fleet: the fleet this controller acts for (``--fleet``), shown in ``/status``.
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
    state_dir: Path | None = None
    http: HttpLimits = field(default_factory=HttpLimits)
    failed_passes: int = 3
    max_in_flight: int = MAX_IN_FLIGHT
    fleet: str = DEFAULT_FLEET


def origin(exc: BaseException) -> str:
    """Where an unexpected exception was raised, ``file:line``, for a one-line log."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno}"


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
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        leadership: Leadership | None = None,
        on_lead: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Prepare the controller; nothing runs before :meth:`run`.

        Args:
            config / backend: what to run and where.
            clock / environ: time and the environment secrets are read from.
            leadership: the fleet's lease rounds; passes run only while it leads (None:
                always, as a controller that shares its fleet with nobody).
            on_lead: awaited each time this controller starts leading, before its first
                pass (the local backend is opened then: its lock and its simulators are
                the leader's alone).
        """
        self.config = config
        self.backend = backend
        self.clock = clock or Clock()
        self.leadership = leadership
        self._on_lead = on_lead
        self._environ = environ if environ is not None else os.environ
        self.reconciler = self._new_reconciler()
        self._term = 0  # the leadership term this controller last took the fleet over for
        self._digested: tuple[Desired | None, str] = (None, "")
        self.metrics = Metrics()
        self.health = Health(
            threshold=config.failed_passes,
            stuck_after=max(120.0, 4 * config.resync),
            clock=self.clock.monotonic,
        )
        self.ready = asyncio.Event()
        self.stopped = asyncio.Event()
        self.port: int | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._full = True  # the next step observes and plans everything
        self._recheck: frozenset[str] = frozenset()  # simulations the last steps acted on
        self._errors: tuple[SpecError, ...] = ()
        self._crash_loops = CrashLoops(clock=self.clock.monotonic)
        self._node_watch = NodeWatch()
        self._short_secrets = 0
        self._revision: str | None = None
        self._document: dict[str, Any] = self._nothing_seen()

    def _nothing_seen(self) -> dict[str, Any]:
        """``/status`` before a pass: at start, and while standing by."""
        return status_document(
            Status(),
            (),
            revision=None,
            backend=self.backend.name,
            fleet=self.config.fleet,
            updated_at=self.clock.wall(),
        )

    def _new_reconciler(self) -> Reconciler:
        """A reconciler with no memory: at start, and whenever this controller takes the
        fleet over (prune clocks, cached snapshots and the like from before are stale)."""
        config = self.config
        return Reconciler(
            Settings(
                specs=config.specs,
                revision_key=config.revision_key,
                environ=self._environ,
                access=config.access,
                allow_empty_prune=config.allow_empty_prune,
                run_options=config.run_options,
                planner=config.planner,
                max_in_flight=config.max_in_flight,
                state_dir=config.state_dir,
                explain=False,
                fleet=config.fleet,
            ),
            self.backend,
            clock=self.clock,
            on_load=self._loaded,
        )

    # ------------------------------------------------------------------ control surface

    def wake(self) -> None:
        """Run a full pass as soon as the current one (if any) ends (the backend changed)."""
        self._full = True
        self._wake.set()

    def specs_changed(self) -> None:
        """Run a pass over what the spec edits changed as soon as the current one ends."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the loop to finish its pass and shut down."""
        self._stop.set()
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """The latest ``/status`` document, with how the loop itself fares and who leads."""
        document = {**self._document, "controller": self.health.document()}
        if self.leadership is not None:
            document["lease"] = self.leadership.document()
        return document

    def healthy(self) -> tuple[bool, str]:
        """``/healthz``: alive, no pass stuck, and passes not failing one after another."""
        return self.health.healthy()

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``: leading, a pass finished and the specs directory exists; a standby
        says it is one, and who leads."""
        if self.leadership is not None and not self.leadership.may_write():
            return False, f"standby: {self.leadership.describe()}"
        return self.health.ready()

    # ------------------------------------------------------------------------ the loop

    async def run(self, sock: socket.socket | None = None) -> None:
        """Run until :meth:`stop`, then stop the HTTP server; the backend's owner closes it.

        Args:
            sock: a bound, listening socket for the HTTP endpoints (``simfleet run`` binds
                before it opens the backend); None binds ``config.host:port`` here.

        Raises:
            ListenError: ``sock`` is None and the address cannot be bound.
        """
        if sock is None:
            sock = bind(self.config.host, self.config.port)
        loop = asyncio.get_running_loop()
        previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(LoopErrors())
        guard = ConnectionGuard(self.config.http)
        app = _http.build_app(
            healthy=self.healthy,
            ready=self.readiness,
            status=self.status,
            metrics=self.metrics.render,
            middlewares=[guard.middleware],
        )
        try:
            server = await _http.serve(app, sock, guard, self.config.http)
        except BaseException:
            sock.close()
            loop.set_exception_handler(previous_handler)
            raise
        self.port = server.port
        self.backend.on_change(self.wake)
        ignore = [self.config.state_dir] if self.config.state_dir is not None else []
        watcher = asyncio.create_task(
            watch(self.config.specs, self.specs_changed, self._stop, ignore=ignore)
        )
        elector = None
        if self.leadership is not None:
            self.leadership.on_change = self.wake  # a lost lease ends even a long sleep
            elector = asyncio.create_task(self.leadership.run(self._stop))
        log.info(
            "started",
            specs=str(self.config.specs),
            backend=self.backend.name,
            listen=f"{self.config.host}:{self.port}",
        )
        try:
            while not self._stop.is_set():
                if not await self._lead():
                    continue
                self._wake.clear()
                full, self._full = self._full, False
                recheck, self._recheck = self._recheck, frozenset()
                delay = await self._one_pass(full, recheck)
                if not await self._sleep(delay) and not self._recheck:
                    self._full = True  # a timer ran out: resync, a back-off, a deadline
                await self._respect_retry_after()
        finally:
            self._stop.set()
            self.health.stopped = True
            await asyncio.gather(watcher, *([elector] if elector else []), return_exceptions=True)
            await server.close()
            loop.set_exception_handler(previous_handler)
            self.stopped.set()
            log.info("stopped")

    async def _lead(self) -> bool:
        """True when this controller may run a pass now. Otherwise it stands by until the
        next lease round (or a stop) and answers False; the first time it may run again,
        it takes the fleet over from what the backend shows, with a fresh memory."""
        leadership = self.leadership
        if leadership is None:
            return True
        if leadership.may_write():
            if self._term != leadership.term:  # a new term: someone else may have led
                try:
                    if self._on_lead is not None:
                        await self._on_lead()
                except BackendError as exc:  # e.g. the last leader still closes the state dir
                    self._failed(f"cannot take the fleet over yet: {exc}", code=exc.code)
                    await self._stand_by(leadership)
                    return False
                self.backend.forget()
                self.reconciler = self._new_reconciler()
                self._full, self._recheck, self._term = True, frozenset(), leadership.term
            return True
        await self._stand_by(leadership)
        return False

    async def _stand_by(self, leadership: Leadership) -> None:
        """Publish the standby's status, then wait for the next lease round or a stop."""
        self._document = {
            **self._nothing_seen(),
            "message": f"standby: {leadership.describe()}",
        }
        self.metrics.observe_leadership(leadership)
        leadership.changed.clear()
        stop = asyncio.ensure_future(self._stop.wait())
        changed = asyncio.ensure_future(leadership.changed.wait())
        try:
            await asyncio.wait({stop, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            changed.cancel()

    async def _respect_retry_after(self) -> None:
        """Send nothing inside the reconciler's ``Retry-After`` window, whatever woke the
        loop."""
        remaining = self.reconciler.window.remaining()
        if remaining > 0 and not self._stop.is_set():
            log.info("throttled", seconds=round(remaining, 3))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), remaining)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep until woken (True) or ``seconds`` passed (False)."""
        try:
            await asyncio.wait_for(self._wake.wait(), max(0.0, seconds))
        except TimeoutError:
            return False
        return True

    async def _one_pass(self, full: bool, recheck: frozenset[str]) -> float:
        """One step of the reconciler, then publish; return seconds until the next one.

        ``recheck`` names simulations to observe again even if no spec of theirs changed
        (what the previous step acted on). Never raises (but for cancellation): a failed
        step is recorded in :attr:`health` and retried, in full, within ``min(resync, 5)``
        seconds.
        """
        self.health.started()
        self._check_specs_directory()
        try:
            result = await self.reconciler.step(full=full, recheck=recheck)
        except BackendError as exc:
            self.metrics.count_failed_observe(exc.code)
            self._failed(str(exc), code=exc.code)
            return min(self.config.resync, 5.0)
        except Exception as exc:  # a bug must not end the daemon, nor fill its log
            self.metrics.count_failed_observe("unexpected")
            self._failed(f"{type(exc).__name__}: {exc}", at=origin(exc))
            return min(self.config.resync, 5.0)
        self.health.succeeded()
        self.metrics.observe_health(self.health.failures, bool(self.health.specs_missing))
        self._publish(result, result.errors)
        self._report(result)
        delay = self._next_delay(result.due)
        if result.touched and self.config.after_change < delay:
            self._recheck = result.touched  # the timer that runs out is the recheck's
            return self.config.after_change
        return delay

    def _report(self, result: PassResult) -> None:
        """What the next lease round publishes: the digest of the desired state this pass
        worked on, and of the one last seen converged (``apply --wait`` compares them)."""
        leadership = self.leadership
        if leadership is None:
            return
        if result.desired is not self._digested[0]:
            self._digested = (result.desired, desired_digest(result.desired))
        digest = self._digested[1]
        converged = result.plan.converged and not result.failures
        leadership.report = (digest, digest if converged else leadership.report[1])
        self.metrics.observe_leadership(leadership)

    def _failed(self, error: str, **fields: Any) -> None:
        """Record a failed pass: one warning line, health and metrics; the next is full."""
        self._full = True
        self.health.failed(REDACTOR.scrub(error))
        self.metrics.observe_health(self.health.failures, bool(self.health.specs_missing))
        log.warning("pass_failed", error=error, consecutive=self.health.failures, **fields)

    def _check_specs_directory(self) -> None:
        """Say loudly, once, that the specs directory is missing (a mistyped ``--specs``
        otherwise looks like a fleet with nothing to run); and when it is back."""
        specs = self.config.specs
        if specs.is_dir():
            problem = ""
        elif specs.exists():
            problem = f"the specs path {specs.absolute()} is not a directory"
        else:
            problem = f"the specs directory {specs.absolute()} does not exist"
        if problem and problem != self.health.specs_missing:
            log.warning("specs_missing", specs=str(specs.absolute()), message=problem)
        elif not problem and self.health.specs_missing:
            log.info("specs_found", specs=str(specs.absolute()))
        self.health.specs_missing = problem

    def _publish(self, result: PassResult, errors: tuple[SpecError, ...]) -> None:
        """Metrics, ``/status``, readiness and the log lines of a pass that ran."""
        self.metrics.observe_pass(result, errors)
        self._count_requests()
        self._crash_loops.observe(result.status)
        self._node_watch.observe(result.status)
        revision = git_revision(self.config.specs)
        if revision != self._revision:
            log.info("revision", revision=revision, specs=str(self.config.specs))
            self._revision = revision
        self._document = status_document(
            result.status,
            errors,
            revision=revision,
            backend=self.backend.name,
            fleet=self.config.fleet,
            updated_at=self.clock.wall(),
        )
        self.ready.set()
        if result.executed or result.failures:
            log.info(
                "pass",
                executed=len(result.executed),
                failed=len(result.failures),
                seconds=round(result.duration.total_seconds(), 3),
            )

    def _loaded(self, desired: Desired, errors: tuple[SpecError, ...]) -> None:
        """Before a step sends anything: teach the redactor its secrets, log spec errors."""
        self._remember_secrets(secret_values(desired))
        self._log_error_changes(errors)

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

    def _next_delay(self, requeue: datetime | None) -> float:
        candidates = [self.config.resync]
        if requeue is not None:
            candidates.append((requeue - self.clock.wall()).total_seconds())
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
