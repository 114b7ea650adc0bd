"""Bounds on the HTTP server's connections: how many, and how long each may dawdle.

aiohttp parses and answers; this module decides who gets to talk. Every connection is
wrapped in a :class:`_Guarded` protocol that tells the :class:`ConnectionGuard` when it
opens and closes, and a middleware tells it when a request is being handled. Three rules:

* **Deadline.** A connection must deliver a complete request within ``request_timeout``
  of connecting or of its previous request being handled; otherwise it is aborted. That
  is the header and read timeout (a client sending half a header), and it also ends a
  response no one reads. Idle keep-alive connections are closed sooner by aiohttp's own
  ``keepalive_timeout`` (``idle_timeout``).
* **Cap.** At most ``max_connections`` at once, and never more than a quarter of the
  process's file descriptors, so clients can never starve the daemon of descriptors
  (at the limit it once could not list the specs directory). A connection beyond the cap
  closes the *oldest* connection that is not being answered; a prober arriving during a
  flood of slow clients is served, the slowest client is dropped.
* **Quiet.** Drops are counted and logged at most once every ten seconds per reason.

Worked through: 100 clients each send half a header and stop. The first 64 are accepted;
each of the next 36 pushes out the oldest one; a ``/healthz`` probe arriving meanwhile
pushes out another and is answered at once; ``request_timeout`` later the remaining 64
are aborted. The log shows a line or two with counts.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from controller.daemon._throttling import RateLimit

log = structlog.get_logger("simfleet.daemon")


@dataclass(frozen=True)
class HttpLimits:
    """How much of the daemon HTTP clients may hold.

    Attributes:
        max_connections: connections open at once (lowered to a quarter of the soft
            ``RLIMIT_NOFILE``, at least 8).
        request_timeout: seconds a connection may take to deliver a complete request,
            counted from connecting or from its previous request.
        idle_timeout: seconds an idle keep-alive connection stays open.
    """

    max_connections: int = 64
    request_timeout: float = 10.0
    idle_timeout: float = 5.0

    def cap(self) -> int:
        """``max_connections``, bounded by the descriptors this process may open."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(8, min(self.max_connections, soft // 4))


@dataclass
class _Connection:
    transport: asyncio.Transport
    opened: float
    busy: bool = False
    timer: asyncio.TimerHandle | None = None


class ConnectionGuard:
    """Tracks the server's connections and enforces :class:`HttpLimits` on them."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self._open: dict[asyncio.BaseTransport, _Connection] = {}
        self._said = RateLimit(1, 10.0)
        self._dropped: dict[str, int] = {}

    @property
    def count(self) -> int:
        """Connections open now."""
        return len(self._open)

    def protocol_factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], _Guarded]:
        """Wrap aiohttp's protocol factory so every connection passes through the guard."""
        return lambda: _Guarded(self, inner())

    def admit(self, transport: asyncio.Transport) -> bool:
        """A new connection: make room for it (see the module docstring) or refuse it.

        The cap is read anew each time: the descriptor limit may be changed under a
        running daemon (``prlimit``), and a ``getrlimit`` costs one system call."""
        if len(self._open) >= self.limits.cap():
            idle = [c for c in self._open.values() if not c.busy]
            if not idle:
                self._drop(transport, "connection limit reached")
                return False
            self._drop(min(idle, key=lambda c: c.opened).transport, "connection limit reached")
        connection = _Connection(transport, opened=time.monotonic())
        self._open[transport] = connection
        self._arm(connection)
        return True

    def forget(self, transport: asyncio.BaseTransport) -> None:
        """A connection closed, however it closed."""
        connection = self._open.pop(transport, None)
        if connection is not None and connection.timer is not None:
            connection.timer.cancel()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Stop the deadline while a request is handled; restart it when it is done."""
        connection = self._open.get(request.transport) if request.transport else None
        if connection is None:
            return await handler(request)
        connection.busy = True
        if connection.timer is not None:
            connection.timer.cancel()
        try:
            return await handler(request)
        finally:
            connection.busy = False
            self._arm(connection)

    def _arm(self, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        connection.timer = loop.call_later(
            self.limits.request_timeout, self._expire, connection.transport
        )

    def _expire(self, transport: asyncio.Transport) -> None:
        connection = self._open.get(transport)
        if connection is not None and not connection.busy:
            self._drop(transport, "no complete request in time")

    def _drop(self, transport: asyncio.Transport, reason: str) -> None:
        self.forget(transport)
        transport.abort()
        self._dropped[reason] = self._dropped.get(reason, 0) + 1
        if self._said.allow(reason) is not None:
            count, self._dropped[reason] = self._dropped[reason], 0
            log.warning("http_connections_dropped", reason=reason, count=count, open=self.count)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol behind the guard: every call is passed on, except for a
    connection the guard refused, which is closed before aiohttp sees it."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._admitted = self._guard.admit(transport)
        if self._admitted:
            self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.forget(self._transport)
        if self._admitted:
            self._admitted = False
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()
