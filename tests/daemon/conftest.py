"""Helpers shared by the daemon's tests: spec texts, waiting with a deadline, HTTP GETs,
and a running :class:`Controller` over a backend the test chooses."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

from controller.daemon import Controller

POOL = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {name: sims}
spec: {vmSize: standard_d2s_v5, taskSlotsPerNode: 4, nodes: {dedicated: 2}}
"""


def simulation(name: str, simulators: int, extra: str = "") -> str:
    return f"""\
apiVersion: simfleet/v1
kind: Simulation
metadata: {{name: {name}}}
spec:
  pool: sims
  simulators: {simulators}
  image: sim:1
  command: sleep 1000
{extra}"""


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    """Await a condition with a deadline (never a fixed sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def get(controller: Controller, path: str) -> tuple[int, str]:
    """GET from the daemon in a thread: the server runs on this test's event loop."""
    return await asyncio.to_thread(_get, f"http://127.0.0.1:{controller.port}{path}")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def timed_get(url: str) -> tuple[int, float]:
    """Status code and seconds taken (a blocking call: run it in a thread)."""
    started = time.monotonic()
    status, _ = _get(url)
    return status, time.monotonic() - started


@contextlib.asynccontextmanager
async def running(controller: Controller, ready: bool = True) -> AsyncIterator[Controller]:
    """Run ``controller`` for the block (waiting for its first pass unless ``ready`` is
    False), then stop it and wait for the end."""
    task = asyncio.create_task(controller.run())
    try:
        if ready:
            await asyncio.wait_for(controller.ready.wait(), 10)
        else:
            await until(lambda: controller.port is not None or task.done())
        yield controller
    finally:
        controller.stop()
        await asyncio.wait_for(task, 10)
