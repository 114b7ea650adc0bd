"""The daemon's HTTP endpoints: ``/`` (the status page), ``/healthz``, ``/readyz``,
``/status``, ``/metrics``.

Served on loopback by default. The handlers only read what the loop published; they
never trigger a pass or touch the backend, so a slow backend cannot make them slow.
The socket is bound by the caller (:func:`controller.daemon._listening.bind`) before the
backend is opened; :mod:`controller.daemon._connections` bounds what clients may hold.

aiohttp reports a malformed request through a stdlib logger with a traceback that quotes
the client's bytes; here it becomes one structured line with a short escaped excerpt.

``/status`` of 10,000 slots is about 2 MB, and the page polls it every two seconds. It
is encoded without indentation (indenting made it 3 MB and 0.19 s of the event loop per
request), and each top-level part is encoded once per pass: the loop replaces a part only
when a pass publishes, so a poll between passes reuses the text and costs a join.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from controller.daemon._connections import ConnectionGuard, HttpLimits
from controller.daemon._logging import excerpt

log = structlog.get_logger("simfleet.daemon")

#: The page may run its own inline script and style and read the daemon; nothing else
#: (no other origin, no plugin, no framing), so a page served on loopback stays there.
PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def page() -> bytes:
    """The status page: one self-contained HTML file shipped in this package."""
    return resources.files(__package__).joinpath("page.html").read_bytes()


class StatusEncoder:
    """Encodes ``/status`` documents, reusing the text of every top-level part that is
    the very object it encoded last time (a pass replaces the parts it publishes)."""

    def __init__(self) -> None:
        self._parts: dict[str, tuple[object, str]] = {}

    def encode(self, document: Mapping[str, Any]) -> str:
        """The document as JSON text, one line, with a trailing newline."""
        pieces = []
        for key, value in document.items():
            cached = self._parts.get(key)
            if cached is None or cached[0] is not value:
                cached = (value, json.dumps(value))  # holding value keeps its id unique
                self._parts[key] = cached
            pieces.append(f"{json.dumps(key)}: {cached[1]}")
        return "{" + ", ".join(pieces) + "}\n"


def build_app(
    *,
    healthy: Callable[[], tuple[bool, str]],
    ready: Callable[[], tuple[bool, str]],
    status: Callable[[], dict[str, Any]],
    metrics: Callable[[], bytes],
    middlewares: Sequence[Middleware] = (),
) -> web.Application:
    """An aiohttp application over the read-only views of the daemon and its page."""
    html = page()
    encoder = StatusEncoder()

    async def index(_: web.Request) -> web.Response:
        response = web.Response(body=html, content_type="text/html", charset="utf-8")
        response.headers["Content-Security-Policy"] = PAGE_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def healthz(_: web.Request) -> web.Response:
        ok, reason = healthy()
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, reason = ready()
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    async def status_view(_: web.Request) -> web.Response:
        return web.Response(text=encoder.encode(status()), content_type="application/json")

    async def metrics_view(_: web.Request) -> web.Response:
        response = web.Response(body=metrics())
        response.content_type = "text/plain"
        response.charset = "utf-8"
        return response

    app = web.Application(middlewares=list(middlewares))
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status_view)
    app.router.add_get("/metrics", metrics_view)
    return app


class _OneLine(logging.Handler):
    """aiohttp's server log as structlog lines: a bad request is a warning with its
    status and an excerpt; anything else an error, neither with a traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        peer = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
        if isinstance(exc, HttpProcessingError):
            log.warning("http_bad_request", peer=peer, status=exc.code, error=excerpt(exc.message))
            return
        error = f"{type(exc).__name__}: {exc}" if exc is not None else ""
        log.error(
            "http_error", peer=peer, message=excerpt(record.getMessage()), error=excerpt(error)
        )


def _server_logger() -> logging.Logger:
    logger = logging.getLogger("simfleet.http")
    if not any(isinstance(h, _OneLine) for h in logger.handlers):
        logger.addHandler(_OneLine())
    logger.setLevel(logging.INFO)
    logger.propagate = False  # never the stdlib's last-resort traceback on stderr
    return logger


@dataclass
class Server:
    """A running HTTP server; :meth:`close` stops it and its connections."""

    runner: web.AppRunner
    server: asyncio.Server
    guard: ConnectionGuard

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0)."""
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        self.server.close()
        await self.runner.cleanup()
        await self.server.wait_closed()


async def serve(
    app: web.Application, sock: socket.socket, guard: ConnectionGuard, limits: HttpLimits
) -> Server:
    """Serve ``app`` on a bound, listening socket, every connection through ``guard``."""
    runner = web.AppRunner(
        app,
        access_log=None,
        logger=_server_logger(),
        keepalive_timeout=limits.idle_timeout,
        handle_signals=False,
    )
    await runner.setup()
    assert runner.server is not None  # set up above
    loop = asyncio.get_running_loop()
    server = await loop.create_server(guard.protocol_factory(runner.server), sock=sock)
    return Server(runner, server, guard)
