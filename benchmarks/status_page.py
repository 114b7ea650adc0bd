"""The status page at 10,000 slots: ``/status``'s size and time, and the page's load time.

A real daemon (``Controller``, in this process) over the in-memory ``FakeBackend`` runs a
converged fleet of SIMULATIONS × (SLOTS / SIMULATIONS) simulators; a headless Chromium
(Debian's ``chromium``, over the DevTools protocol: ``tests/browser.py``) loads ``/``.

    .venv/bin/python benchmarks/status_page.py [--slots 10000] [--simulations 10]
        [--screenshot PATH]

Prints, each the median of a few runs:

* ``/status`` size, and the time of one GET between passes (the encoded parts are
  reused) and of the encoding a pass costs (``json.dumps`` of the whole document);
* *page load*: from ``Page.navigate`` until the page has drawn every slot (``data-slots``
  on ``<body>`` is set at the end of a render), the document fetched and parsed included;
* *render*: the page's own time for one render of the whole document (``data-render-ms``),
  first and after a change (only changed cells are redrawn).

``--screenshot PATH`` then puts the fleet mid-rollout — a new image for most simulations
once the fleet settled (15 s), so the first surge is still settling, a pool just too small
for the whole surge (some new simulators wait for a node), a few crashes backing off and
a ``restartPolicy: Never`` simulation with failed slots — and saves a PNG of the page.
Prints figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the browser driver lives in tests/

from controller.daemon import Controller, DaemonConfig, configure, utc_now  # noqa: E402
from controller.planner import PlannerConfig, SimulatorState  # noqa: E402
from controller.testing import FakeBackend  # noqa: E402
from tests.browser import Page, chromium  # noqa: E402

SLOTS_PER_NODE = 256
SETTLE = timedelta(seconds=15)  # the fleet settles before the screenshot's rollout starts
RUNS = 3


def pool_spec(nodes: int) -> str:
    return (
        "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: sims}\n"
        f"spec: {{vmSize: standard_d4s_v5, taskSlotsPerNode: {SLOTS_PER_NODE}, "
        f"nodes: {{dedicated: {nodes}, max: {nodes}}}}}\n"
    )


def simulation_spec(name: str, simulators: int, image: str, policy: str = "Always") -> str:
    return (
        f"apiVersion: simfleet/v1\nkind: Simulation\nmetadata: {{name: {name}}}\nspec:\n"
        f"  pool: sims\n  simulators: {simulators}\n  image: {image}\n"
        f"  command: python3 main.py\n  restartPolicy: {policy}\n"
        "  restartBackoff: {initial: 5m, max: 10m}\n"
    )


def names(simulations: int) -> list[str]:
    return [f"sim-{i:02d}" for i in range(simulations)]


def converged(backend: FakeBackend, total: int) -> bool:
    running = sum(
        1
        for job in backend.jobs.values()
        for task in job.tasks.values()
        if task.state is SimulatorState.RUNNING
    )
    return running >= total


def settled(controller: Controller) -> bool:
    """Every running simulator has run for the settle time."""
    return all(
        row["available"]
        for sim in controller.status()["simulations"]
        for row in sim["simulators"]
        if row["state"] == "running"
    )


async def until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def status_figures(port: int, controller: Controller) -> tuple[int, float, float]:
    """Size of ``/status`` in bytes, seconds per GET, seconds of one full encoding."""
    url = f"http://127.0.0.1:{port}/status"
    times, size = [], 0
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            started = time.perf_counter()
            async with session.get(url) as response:
                size = len(await response.read())
            times.append(time.perf_counter() - started)
    encodings = []
    for _ in range(5):
        started = time.perf_counter()
        json.dumps(controller.status())
        encodings.append(time.perf_counter() - started)
    return size, statistics.median(times), statistics.median(encodings)


async def load(page: Page, url: str, slots: int) -> tuple[float, float]:
    """Seconds from navigation to every slot drawn, and the page's first render in ms."""
    await page.navigate("about:blank")
    started = time.perf_counter()
    await page.send("Page.navigate", url=url)
    await page.wait_for(f"document.body && document.body.dataset.slots === '{slots}'", 120)
    seconds = time.perf_counter() - started
    return seconds, float(await page.evaluate("Number(document.body.dataset.renderMs)"))


async def rerender(page: Page, backend: FakeBackend, simulation: str) -> float:
    """The page's render time after one simulator crashed (one cell changes)."""
    renders = int(await page.evaluate("Number(document.body.dataset.renders)"))
    job = backend.jobs[simulation]
    victim = next(t.id for t in job.tasks.values() if t.state is SimulatorState.RUNNING)
    backend.crash(simulation, victim, exit_code=1, stderr="benchmark crash\n")
    await page.wait_for(f"Number(document.body.dataset.renders) > {renders}", 60)
    return float(await page.evaluate("Number(document.body.dataset.renderMs)"))


async def mid_rollout(specs: Path, backend: FakeBackend, sims: list[str], per: int) -> None:
    """New images for all but the first simulation, crashes in two, failures in the last."""
    last = sims[-1]
    (specs / f"{last}.yaml").write_text(simulation_spec(last, per, "sim:1", policy="Never"))
    for name in sims[1:-1]:
        (specs / f"{name}.yaml").write_text(simulation_spec(name, per, "sim:2"))
    await until(
        lambda: all(
            any(t.image == "sim:2" for t in backend.jobs[n].tasks.values()) for n in sims[1:-1]
        ),
        120,
        "the rollout to start",
    )
    for name, count in ((sims[0], per // 20), (last, per // 8)):
        running = [t.id for t in backend.jobs[name].tasks.values() if t.state == "running"]
        for task_id in running[:count]:
            backend.crash(name, task_id, exit_code=137, stderr="Killed: out of memory\n")
    if len(sims) > 2:
        running = [t.id for t in backend.jobs[sims[1]].tasks.values() if t.state == "running"]
        for task_id in running[: per // 10]:
            backend.crash(sims[1], task_id, exit_code=1, stderr="ConnectionError: trainer\n")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=10_000)
    parser.add_argument("--simulations", type=int, default=10)
    parser.add_argument("--screenshot", type=Path)
    options = parser.parse_args()
    configure(level=logging.WARNING)  # the figures, not the daemon's lines
    sims = names(options.simulations)
    per = options.slots // options.simulations
    total = per * len(sims)
    # capacity for the fleet and a little of a rollout's surge (the rest waits for nodes)
    nodes = -(-int(total * 1.08) // SLOTS_PER_NODE)
    with tempfile.TemporaryDirectory(prefix="simfleet-page-") as scratch:
        specs = Path(scratch) / "specs"
        specs.mkdir()
        (specs / "pool.yaml").write_text(pool_spec(nodes))
        for name in sims:
            (specs / f"{name}.yaml").write_text(simulation_spec(name, per, "sim:1"))
        backend = FakeBackend(clock=utc_now)
        config = DaemonConfig(specs=specs, port=0, planner=PlannerConfig(settle=SETTLE))
        controller = Controller(config, backend)
        task = asyncio.create_task(controller.run())
        try:
            await asyncio.wait_for(controller.ready.wait(), 300)
            await until(lambda: converged(backend, total), 300, "the fleet to run")
            await until(
                lambda: sum(s["ready"] for s in controller.status()["simulations"]) == total,
                300,
                "/status to show the fleet",
            )
            assert controller.port is not None
            size, get_seconds, encode_seconds = await status_figures(controller.port, controller)
            url = f"http://127.0.0.1:{controller.port}/"
            async with chromium(1500, 1000) as page:
                loads = [await load(page, url, total) for _ in range(RUNS)]
                again = [await rerender(page, backend, sims[0]) for _ in range(RUNS)]
                print(f"slots                      {total} ({len(sims)} simulations)")
                print(f"/status size               {size / 1e6:.2f} MB")
                print(f"/status GET between passes {get_seconds * 1000:.1f} ms")
                print(f"/status encoding per pass  {encode_seconds * 1000:.1f} ms")
                print(f"page load to grid drawn    {statistics.median(s for s, _ in loads):.3f} s")
                print(f"first render               {statistics.median(r for _, r in loads):.1f} ms")
                print(f"render after one change    {statistics.median(again):.1f} ms")
                if options.screenshot is not None:
                    await until(lambda: settled(controller), 300, "the fleet to settle")
                    await mid_rollout(specs, backend, sims, per)
                    await page.navigate(url)
                    await page.wait_for("document.body.dataset.slots > 0", 120)
                    renders = int(await page.evaluate("Number(document.body.dataset.renders)"))
                    await page.wait_for(f"Number(document.body.dataset.renders) > {renders}", 60)
                    await page.screenshot(options.screenshot)
                    print(f"screenshot                 {options.screenshot}")
        finally:
            controller.stop()
            await asyncio.wait_for(task, 120)


if __name__ == "__main__":
    asyncio.run(main())
