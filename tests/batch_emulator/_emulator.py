"""`BatchEmulator`: start the server, drive emulator time, script task endings, read counts.

    async with BatchEmulator(EmulatorConfig(allocation_delay=10)) as emulator:
        client = BatchClient(emulator.endpoint, emulator.credential())
        ...
        emulator.advance(10)                       # emulator seconds, no sleeping
        emulator.finish_task("job-1", "task-7", exit_code=2, stderr="boom")
        emulator.preempt("pool-1", count=1)
        emulator.counters.count("Tasks_CreateTaskCollection")

The same server answers Azure Resource Manager's pool endpoints under `/subscriptions/`
(https and a bearer token, as ARM; `_arm.py`), on the same account: a pool created there
is listed by the data plane, with its managed identities.

The server listens on 127.0.0.1 only (port 0 picks a free one). A background ticker
brings the account up to the emulator clock every `tick_interval` wall seconds, so state
also moves on its own when the clock runs (speed > 0); every request and every control
call does the same first, so what a test observes never lags the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from azure.core.credentials import AzureNamedKeyCredential

from . import _render as render
from ._account import Account
from ._app import EmulatorApp
from ._arm import ArmApp, arm_spec
from ._behaviour import Outcome, TaskRule
from ._config import EmulatorConfig
from ._conformance import Violation, schema_book
from ._control import add_control_routes
from ._counters import RequestCounters
from ._faults import FaultInjector
from ._health import BrokenImage
from ._requestlog import RequestLog
from ._spec import load_spec
from ._tls import TlsFiles, make_tls_files


class BatchEmulator:
    def __init__(self, config: EmulatorConfig | None = None, *, port: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self.state = Account(self.config)
        self.faults = FaultInjector()
        self.counters = RequestCounters()
        self.requests = RequestLog(enabled=self.config.request_log)
        spec = load_spec(self.config.spec_path)
        self._app = EmulatorApp(
            self.state, spec, schema_book(spec), self.faults, self.counters, self.requests
        )
        arm = arm_spec()
        self._arm = ArmApp(
            self.state, arm, schema_book(arm), self.faults, self.counters, self.requests
        )
        self._arm.violations = self._app.violations  # one list for both planes
        self._port = port
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.tls: TlsFiles | None = None
        self.endpoint = ""

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> BatchEmulator:
        ssl_context = None
        if self.config.https:
            self._tmp = tempfile.TemporaryDirectory(prefix="batch-emulator-")
            self.tls = make_tls_files(Path(self._tmp.name))
            ssl_context = self.tls.server_context()
        app = self._app.build(self._extra_routes)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, ssl_context=ssl_context)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        assert isinstance(server, asyncio.base_events.Server)
        port = server.sockets[0].getsockname()[1]
        scheme = "https" if self.config.https else "http"
        self.endpoint = f"{scheme}://127.0.0.1:{port}"
        self._app.base_url = self._arm.base_url = self.endpoint
        self.state.world.base_url = self.endpoint
        self._ticker = asyncio.create_task(self._tick_forever(), name="batch-emulator-ticker")
        return self

    def _extra_routes(self, app: web.Application) -> None:
        add_control_routes(app, self)
        self._arm.route(app)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> BatchEmulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval)
            self.state.world.sync()

    # -- identity -----------------------------------------------------------------------

    @property
    def account(self) -> str:
        """The Batch account name clients sign with."""
        return self.config.account

    @property
    def key(self) -> str:
        """The account's shared key (base64)."""
        return self.config.key

    def credential(self) -> AzureNamedKeyCredential:
        return AzureNamedKeyCredential(self.config.account, self.config.key)

    @property
    def subscription_id(self) -> str:
        """The subscription ARM requests must name (the account's resource group too)."""
        return self.config.subscription_id

    @property
    def resource_group(self) -> str:
        return self.config.resource_group

    @property
    def ca_file(self) -> str:
        if self.tls is None:
            raise RuntimeError("the emulator is not serving https (EmulatorConfig(https=True))")
        return str(self.tls.ca_file)

    # -- time ---------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.state.world.clock.now()

    def advance(self, seconds: float) -> None:
        """Move emulator time forward and let everything due happen."""
        self.state.world.clock.advance(seconds)
        self.state.world.sync()

    def set_speed(self, speed: float) -> None:
        self.state.world.clock.set_speed(speed)

    def sync(self) -> None:
        self.state.world.sync()

    # -- behaviour ----------------------------------------------------------------------

    def add_rule(self, rule: TaskRule) -> None:
        self.state.world.rules.append(rule)

    def finish_task(
        self,
        job_id: str,
        task_id: str,
        *,
        exit_code: int | None = 0,
        stdout: str = "",
        stderr: str = "",
        failure_code: str | None = None,
        failure_message: str = "",
    ) -> None:
        """End a running task now; non-zero exits are retried per maxTaskRetryCount."""
        self.sync()
        outcome = Outcome(
            exit_code=None if failure_code else exit_code,
            failure_code=failure_code,
            failure_message=failure_message,
            stdout=stdout,
            stderr=stderr,
            retryable=failure_code is None,
        )
        self.state.tasks.finish(job_id, task_id, outcome)
        self.state.world.dispatch()

    def write_output(
        self, job_id: str, task_id: str, *, stdout: str = "", stderr: str = ""
    ) -> None:
        """Append to a task's stdout.txt / stderr.txt while it runs."""
        world = self.state.world
        world.write_output(world.task(job_id, task_id), stdout, stderr, world.now)

    def put_task_file(self, job_id: str, task_id: str, path: str, data: bytes) -> None:
        self.state.tasks.put_file(job_id, task_id, path, data)

    def preempt(
        self, pool_id: str, *, node_ids: list[str] | None = None, count: int | None = None
    ) -> list[str]:
        """Preempt Spot nodes (all, `count` of them, or the named ones); returns their ids."""
        self.sync()
        preempted = self.state.pools.preempt(pool_id, node_ids, count)
        self.state.world.dispatch()
        return preempted

    def recover_node(self, pool_id: str, node_id: str) -> None:
        """Boot a preempted, unusable or start-task-failed node again."""
        self.sync()
        self.state.pools.recover(pool_id, node_id)

    def break_image(
        self, image_contains: str, *, code: str = "ContainerInvalidImage", detail: str = ""
    ) -> None:
        """Images whose name contains `image_contains` cannot be pulled from now on: their
        tasks fail as `code` before running, and nodes prefetching them turn `unusable`
        (see `_health`)."""
        self.state.world.health.broken_images.append(BrokenImage(image_contains, code, detail))

    def make_unusable(
        self,
        pool_id: str,
        *,
        code: str = "NodeUnusable",
        message: str = "The node is unusable because of an infrastructure failure",
        details: dict[str, str] | None = None,
        node_ids: list[str] | None = None,
        count: int | None = None,
    ) -> list[str]:
        """Turn nodes (all, `count` of them, or the named ones) `unusable` with one error."""
        self.sync()
        error: dict[str, Any] = {"code": code, "message": message}
        if details:
            error["errorDetails"] = [{"name": k, "value": v} for k, v in details.items()]
        chosen = self.state.pools.make_unusable(pool_id, [error], node_ids, count)
        self.state.world.dispatch()
        return chosen

    def fail_start_tasks(self, pool_id: str, *, exit_code: int = 1) -> None:
        """The pool's start task fails from now on (0: succeeds again); its nodes that run
        it then end `starttaskfailed`."""
        self.sync()
        self.state.pools.fail_start_tasks(pool_id, exit_code)

    # -- inspection ---------------------------------------------------------------------

    def task(self, job_id: str, task_id: str) -> dict[str, Any]:
        """The task as GET would return it (no request counted)."""
        self.sync()
        return render.task(self.endpoint, self.state.world.task(job_id, task_id))

    def pool(self, pool_id: str) -> dict[str, Any]:
        self.sync()
        return render.pool(self.endpoint, self.state.world.pool(pool_id))

    def nodes(self, pool_id: str) -> list[dict[str, Any]]:
        self.sync()
        world = self.state.world
        pool = world.pool(pool_id)
        vm_size = str(pool.spec.get("vmSize", ""))
        return [render.node(self.endpoint, n, world.jobs, vm_size) for n in pool.nodes.values()]

    @property
    def requeued(self) -> dict[str, int]:
        """Tasks a node removal sent back to the queue, by cause (`resize`, `removenodes`,
        `preemption`, `unusable`, `deletion`)."""
        self.sync()
        return dict(self.state.pools.requeued)

    @property
    def violations(self) -> list[Violation]:
        return self._app.violations

    def take_violations(self) -> list[Violation]:
        """Return and forget the collected violations (for tests that send bad bodies)."""
        taken = list(self._app.violations)
        self._app.violations.clear()
        return taken
