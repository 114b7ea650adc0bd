"""The HTTP front: one aiohttp handler that routes by the spec and wraps every request.

Each request goes through the same steps, in the order the real service would apply
them: match the method and path against BatchService.json (→ operationId), note Retry-After
violations, apply injected latency and faults, authenticate, check query parameters and
which conditional headers are sent, read and validate the body, bring the emulated account
up to the emulator clock, run the operation's handler, and write the answer with Batch's
standard headers. In conformance mode every request body and every answer (body and
declared headers) is checked against the spec and violations are collected. Every
request is counted by operation and outcome.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from ._account import Account
from ._auth import authenticate
from ._config import API_VERSION
from ._conformance import SchemaBook, Violation, batch_error_for, describe
from ._counters import Outcome, RequestCounters
from ._errors import BatchApiError, not_supported
from ._faults import Fault, FaultInjector
from ._http import Ctx, Handler, Reply, parse_query
from ._preconditions import reject_undeclared
from ._requestlog import LoggedRequest, RequestLog
from ._routes_jobs import HANDLERS as JOB_HANDLERS
from ._routes_pools import HANDLERS as POOL_HANDLERS
from ._spec import Match, Spec
from ._wire import rfc1123

LOG = logging.getLogger(__name__)
HANDLERS: dict[str, Handler] = {**POOL_HANDLERS, **JOB_HANDLERS}
JSON_TYPE = "application/json;odata=minimalmetadata"
HEADER_SOURCES = ("ETag", "Last-Modified", "DataServiceId")


class _DroppedError(Exception):
    """Close the connection without answering."""


class EmulatorApp:
    """The data plane's front; :class:`._arm.ArmApp` is ARM's, with the hooks below
    (handlers, api-version, authentication, error body) overridden."""

    handlers: Mapping[str, Handler] = HANDLERS
    api_version = API_VERSION
    content_type = JSON_TYPE

    def __init__(
        self,
        account: Account,
        spec: Spec,
        book: SchemaBook,
        faults: FaultInjector,
        counters: RequestCounters,
        requests: RequestLog | None = None,
    ) -> None:
        self.account = account
        self.spec = spec
        self.book = book
        self.faults = faults
        self.counters = counters
        self.requests = requests if requests is not None else RequestLog()
        self.violations: list[Violation] = []
        self.base_url = ""

    @property
    def conformance(self) -> bool:
        return self.account.config.conformance

    def build(
        self, extra_routes: Callable[[web.Application], None] | None = None
    ) -> web.Application:
        # aiohttp's own limit (a plain-text 413) must not pre-empt Batch's RequestBodyTooLarge.
        app = web.Application(client_max_size=max(self.account.config.max_body_bytes * 64, 2**26))
        if extra_routes is not None:
            extra_routes(app)  # before the catch-all, which would shadow them
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        raw_path, _, raw_query = request.raw_path.partition("?")
        match, path_known = self.spec.match(request.method, raw_path)
        op_id = match.operation.operation_id if match else "unknown"
        request_id = str(uuid.uuid4())
        self.faults.arrived(op_id)
        delay = self.faults.delay_for(op_id)
        if delay:
            await asyncio.sleep(delay)
        fault = self.faults.next_fault(op_id)
        try:
            if fault is not None and not fault.after_processing:
                reply = self._fault_reply(fault)
            else:
                try:
                    reply = await self._process(
                        request, match, path_known, raw_path, raw_query, request_id
                    )
                except BatchApiError as error:
                    reply = Reply(error.status, headers=dict(error.headers), error=error)
                except ConnectionResetError:  # the client gave up (its timeout): no one to answer
                    raise _DroppedError from None
                except Exception as error:  # an emulator bug: answer, but make it loud
                    LOG.exception("Batch emulator failed on %s", op_id)
                    detail = f"{type(error).__name__}: {error}"
                    self.violations.append(Violation("emulator", op_id, 500, (detail,)))
                    failure = BatchApiError(500, "InternalError", f"Emulator bug: {detail}")
                    reply = Reply(500, error=failure)
                if fault is not None:
                    reply = self._fault_reply(fault)
        except _DroppedError:
            self.counters.record(op_id, "dropped", request.raw_path)
            self._log(request, arrived, op_id, raw_path, "dropped")
            return self._drop(request)
        if reply.error is not None:
            reply.body = self.error_body(reply.error, request_id)
        response = self._respond(request, match, reply, request_id)
        self.counters.record(op_id, reply.status, request.raw_path)
        self._log(request, arrived, op_id, raw_path, reply.status)
        return response

    def _log(
        self, request: web.Request, arrived: float, op_id: str, raw_path: str, outcome: Outcome
    ) -> None:
        if not self.requests.enabled:
            return  # a soak sends millions of requests: build no record for nobody
        agent = request.headers.get("User-Agent", "")
        entry = LoggedRequest(
            arrived, time.monotonic(), op_id, raw_path, outcome, request.method, agent
        )
        self.requests.record(entry)

    # -- what a plane decides -----------------------------------------------------------

    def error_body(self, error: BatchApiError, request_id: str) -> dict[str, Any]:
        """The body of a failure (Batch's flat ``BatchError``)."""
        return error.body(request_id, self.account.world.clock.now())

    def authenticate(self, request: web.Request, raw_path: str, raw_query: str) -> None:
        """Shared key, or a bearer token over https (:mod:`._auth`)."""
        config = self.account.config
        authenticate(
            method=request.method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=request.headers,
            account=config.account,
            key=config.key,
            secure=request.secure,
            bearer_token=config.bearer_token,
            now=self.account.world.clock.now(),
        )

    # -- the steps ----------------------------------------------------------------------

    async def _process(
        self,
        request: web.Request,
        match: Match | None,
        path_known: bool,
        raw_path: str,
        raw_query: str,
        request_id: str,
    ) -> Reply:
        self.authenticate(request, raw_path, raw_query)
        if match is None:
            if path_known:
                raise BatchApiError(
                    405,
                    "UnsupportedHttpVerb",
                    "The resource doesn't support the specified HTTP verb.",
                )
            raise BatchApiError(
                400,
                "InvalidUri",
                "The requested URI does not represent any resource on the server.",
            )
        op = match.operation
        handler = self.handlers.get(op.operation_id)
        if handler is None:
            raise not_supported(f"the operation {op.operation_id}")
        query = parse_query(op, parse_qs(raw_query, keep_blank_values=True), self.api_version)
        reject_undeclared(op, request.headers)
        body = await self._read_body(request, match)
        world = self.account.world
        world.sync()
        ctx = Ctx(
            account=self.account,
            op=op,
            spec=self.spec,
            path=match.path_params,
            query=query,
            headers=request.headers,
            body=body,
            base_url=self.base_url,
            request_id=request_id,
            now=world.now,
        )
        reply = handler(ctx)
        world.dispatch()
        return reply

    async def _read_body(self, request: web.Request, match: Match) -> Any:
        raw = await request.read()
        if len(raw) > self.account.config.max_body_bytes:
            raise BatchApiError(
                413,
                "RequestBodyTooLarge",
                "The size of the request body exceeds the maximum size permitted.",
            )
        param = match.operation.body_param
        if param is None:
            return None
        if not raw:
            if param.get("required"):
                raise BatchApiError(400, "InvalidRequestBody", "The request body is missing.")
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            raise BatchApiError(
                400, "InvalidRequestBody", "The specified Request Body is not syntactically valid."
            ) from None
        errors = self.book.request_errors(match.operation, body)
        if errors:
            if self.conformance:
                messages = tuple(describe(e) for e in errors)
                self.violations.append(
                    Violation("request", match.operation.operation_id, None, messages)
                )
            code, values = batch_error_for(errors[0])
            raise BatchApiError(
                400, code, "The request body does not match the operation's schema.", values
            )
        return body

    # -- answers ------------------------------------------------------------------------

    def _fault_reply(self, fault: Fault) -> Reply:
        if fault.kind == "drop":
            raise _DroppedError
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            seconds = fault.retry_after
            headers["Retry-After"] = (
                str(int(seconds)) if float(seconds).is_integer() else str(seconds)
            )
            self.faults.announced_retry_after(seconds)
        error = BatchApiError(fault.status, fault.code, fault.message, headers=headers)
        return Reply(error.status, headers=headers, error=error)

    def _respond(
        self, request: web.Request, match: Match | None, reply: Reply, request_id: str
    ) -> web.StreamResponse:
        headers: dict[str, str] = {"request-id": request_id}
        client_id = request.headers.get("client-request-id")
        if client_id:
            headers["client-request-id"] = client_id
        if match is not None and reply.status < 300:
            declared = {
                h.lower() for h in match.operation.response(reply.status).get("headers", {})
            }
            sources = {
                "ETag": reply.etag,
                "Last-Modified": None
                if reply.last_modified is None
                else rfc1123(reply.last_modified),
                "DataServiceId": reply.data_service_id,
            }
            for name, value in sources.items():
                if value is not None and name.lower() in declared:
                    headers[name] = value
        headers.update(reply.headers)
        data: bytes | None = None
        no_body = request.method == "HEAD" or reply.status in (204, 304)
        if reply.raw is not None:
            data = reply.raw
        elif reply.body is not None and not no_body:
            data = json.dumps(reply.body, separators=(",", ":")).encode()
            headers["Content-Type"] = self.content_type
        if data is not None and not no_body:
            headers["Content-Length"] = str(len(data))
        if self.conformance and match is not None:
            selected = "$select=" in request.raw_path
            self._audit(
                match, reply, headers, data is not None and not no_body, bool(client_id), selected
            )
        if no_body:
            return web.Response(status=reply.status, headers=headers)
        return web.Response(status=reply.status, headers=headers, body=data)

    def _audit(
        self,
        match: Match,
        reply: Reply,
        headers: Mapping[str, str],
        has_body: bool,
        client_id: bool,
        selected: bool,
    ) -> None:
        op = match.operation
        problems = self.book.response_problems(
            op,
            reply.status,
            dict(headers),
            reply.body,
            has_body=has_body,
            client_request_id=client_id,
            selected=selected,
        )
        if problems:
            self.violations.append(
                Violation("response", op.operation_id, reply.status, tuple(problems))
            )

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError
