"""The daemon's HTTP endpoints: ``/healthz``, ``/readyz``, ``/status``, ``/metrics``.

Served on loopback by default. The handlers only read what the loop published; they
never trigger a pass or touch the backend, so a slow backend cannot make them slow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web


def build_app(
    *,
    healthy: Callable[[], tuple[bool, str]],
    ready: Callable[[], bool],
    status: Callable[[], dict[str, Any]],
    metrics: Callable[[], bytes],
) -> web.Application:
    """An aiohttp application over the four read-only views of the daemon."""

    async def healthz(_: web.Request) -> web.Response:
        ok, reason = healthy()
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    async def readyz(_: web.Request) -> web.Response:
        is_ready = ready()
        return web.Response(
            status=200 if is_ready else 503, text="ready\n" if is_ready else "starting\n"
        )

    async def status_view(_: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps(status(), indent=2) + "\n", content_type="application/json"
        )

    async def metrics_view(_: web.Request) -> web.Response:
        response = web.Response(body=metrics())
        response.content_type = "text/plain"
        response.charset = "utf-8"
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status_view)
    app.router.add_get("/metrics", metrics_view)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving ``app``; the caller cleans the returned runner up."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner
