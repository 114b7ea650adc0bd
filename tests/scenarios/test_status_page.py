"""The status page in a real headless Chromium, against a real ``simfleet run``.

The daemon runs the local backend (real processes); the browser loads ``/`` and the test
reads the page's DOM: one section per simulation, a grid canvas whose cell count and
per-state tally the page writes on it (``data-cells``, ``data-states``), the exit reasons,
the pools table, and that an edit of a spec reaches the grid without a reload.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from controller.daemon._http import build_app
from tests.browser import Page, chromium, find_chromium
from tests.scenarios.conftest import Fleet

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

if find_chromium() is None and os.environ.get("CI") != "true":  # on CI: fail, not skip
    pytest.skip(
        "no Chromium installed: apt-get install chromium (CI installs it)",
        allow_module_level=True,
    )

FAILING = '["sh", "-c", "echo boom >&2; exit 3"]'


async def states(page: Page, simulation: str) -> dict[str, Any]:
    """The page's tally of one simulation's grid: cells, and cells per kind."""
    found = await page.evaluate(
        f"""(() => {{
            const c = document.querySelector('section[data-name="{simulation}"] canvas');
            return c ? {{cells: Number(c.dataset.cells), states: c.dataset.states}} : null;
        }})()"""
    )
    if not found:
        return {}
    return {"cells": found["cells"], "states": json.loads(found["states"])}


async def wait_grid(
    page: Page, simulation: str, expected: dict[str, Any] | Callable[[dict[str, Any]], bool]
) -> None:
    """Wait until the page's grid of ``simulation`` reads ``expected`` (or satisfies it);
    the page polls /status every 2 s, so this waits on the page, never on a sleep."""
    seen: dict[str, Any] = {}
    for _ in range(1200):  # 60 s at most
        seen = await states(page, simulation)
        if seen and (expected(seen) if callable(expected) else seen == expected):
            return
        await page.evaluate("new Promise((done) => setTimeout(done, 50))")
    raise AssertionError(f"grid of {simulation}: {seen}, wanted {expected}")


async def text_of(page: Page, selector: str) -> str:
    value = await page.evaluate(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
        " return e ? e.textContent : null; })()"
    )
    assert value is not None, f"nothing matches {selector}"
    return str(value)


async def test_the_page_shows_the_fleet_and_follows_an_edit(local_fleet: Fleet) -> None:
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool(nodes=2, slots=4))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
    fleet.write(
        "beta.yaml",
        fleet.simulation("beta", 2, command=FAILING, extra="  restartPolicy: Never\n"),
    )
    fleet.start()
    fleet.wait_sim(
        "alpha", lambda s: s["ready"] == 3 and all(r["available"] for r in s["simulators"])
    )
    fleet.wait_sim("beta", lambda s: [r["state"] for r in s["simulators"]] == ["failed"] * 2)
    async with chromium() as page:
        await page.navigate(f"http://127.0.0.1:{fleet.port}/")
        await wait_grid(page, "alpha", {"cells": 3, "states": {"running": 3}})
        await wait_grid(page, "beta", {"cells": 2, "states": {"failed": 2}})
        assert await page.evaluate(
            "[...document.querySelectorAll('section.simulation')].map((s) => s.dataset.name)"
        ) == ["alpha", "beta"]
        assert "exited with code 3 (2)" in await text_of(page, 'section[data-name="beta"] .exits')
        assert "2/2 simulators failed" in await text_of(page, 'section[data-name="beta"] .msg')
        assert "desired 3 · ready 3" in await text_of(page, 'section[data-name="alpha"] .counts')
        conditions = await page.evaluate(
            "[...document.querySelectorAll('section[data-name=\"alpha\"] .badge')]"
            ".map((b) => b.dataset.type + '=' + b.dataset.status)"
        )
        assert "Available=True" in conditions
        assert "sims" in await text_of(page, '#pools tr[data-name="sims"]')
        assert await text_of(page, "#fleet") == "default"

        fleet.write("alpha.yaml", fleet.simulation("alpha", 5))  # the page is not reloaded
        await wait_grid(page, "alpha", {"cells": 5, "states": {"running": 5}})
        assert "desired 5" in await text_of(page, 'section[data-name="alpha"] .counts')

        # a new template that keeps failing never retires the old simulators: the grid
        # shows old-template cells, and the rollout says how far it got
        fleet.write("alpha.yaml", fleet.simulation("alpha", 5, command=FAILING))
        await wait_grid(page, "alpha", lambda g: g["cells"] == 5 and g["states"].get("old", 0) >= 3)
        assert "rolling out" in await text_of(page, 'section[data-name="alpha"] .rollout')
        assert await page.evaluate("document.body.dataset.error") == ""


def _row(
    slot: int, state: str, *, up_to_date: bool = True, available: bool = False
) -> dict[str, Any]:
    return {
        "slot": slot,
        "id": f"mixed-s{slot}-r1-a0",
        "state": state,
        "restarts": 0,
        "upToDate": up_to_date,
        "available": available,
        "lastExit": None,
        "pid": None,
        "startedAt": None,
    }


#: One slot in every state the page tells apart, and the kind it must colour it as.
MIXED = [
    (_row(0, "running", available=True), "running"),
    (_row(1, "running"), "settling"),
    (_row(2, "running", up_to_date=False, available=True), "old"),
    (_row(3, "pending"), "pending"),
    (_row(4, "waiting"), "backoff"),
    (_row(5, "failed"), "failed"),
    (_row(6, "stopping", available=True), "stopping"),
    (_row(7, "succeeded"), "succeeded"),
]


async def test_every_slot_state_gets_its_own_kind_in_the_grid() -> None:
    """A synthesized /status with one slot per state, served by the daemon's own app."""
    document = {
        "simulations": [
            {
                "name": "mixed",
                "pool": "sims",
                "image": "sim:2",
                "desired": len(MIXED),
                "ready": 4,
                "upToDate": 7,
                "restarts": 0,
                "message": "",
                "conditions": [],
                "simulators": [row for row, _ in MIXED],
            }
        ],
        "pools": [],
        "errors": [],
        "fleet": "default",
    }
    app = build_app(
        healthy=lambda: (True, "ok"),
        ready=lambda: (True, "ok"),
        status=lambda: document,
        metrics=lambda: b"",
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with chromium() as page:
            await page.navigate(f"http://127.0.0.1:{port}/")
            expected = {kind: 1 for _, kind in MIXED}
            await wait_grid(page, "mixed", {"cells": len(MIXED), "states": expected})
            legend = await text_of(page, 'section[data-name="mixed"] .legend')
            for label in ("settling 1", "old template 1", "backing off 1", "waiting 1"):
                assert label in legend
    finally:
        await runner.cleanup()
