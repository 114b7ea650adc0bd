"""``GET /`` serves the status page, self-contained; ``/status`` is encoded once per pass.

What the page shows is tested in a real browser (``tests/scenarios/test_status_page.py``);
here: that the daemon serves it with a policy that keeps it on the daemon's origin, and
that the document it polls costs a join between passes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from pathlib import Path

from controller.daemon import Controller, DaemonConfig, utc_now
from controller.daemon._http import PAGE_POLICY, StatusEncoder, page
from controller.testing import FakeBackend
from tests.daemon.conftest import POOL, get, running, simulation


async def test_the_page_is_served_at_the_root_with_a_policy_that_keeps_it_local(
    tmp_path: Path,
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(POOL)
    (specs / "a.yaml").write_text(simulation("alpha", 2))
    controller = Controller(DaemonConfig(specs=specs, port=0), FakeBackend(clock=utc_now))
    async with running(controller):
        assert controller.port is not None
        response, body = await asyncio.to_thread(_get_root, controller.port)
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/html; charset=utf-8"
        assert response.getheader("Content-Security-Policy") == PAGE_POLICY
        assert body == page()
        status, text = await get(controller, "/status")
        assert status == 200
        assert json.loads(text)["simulations"][0]["simulators"][0]["available"] is not None


def _get_root(port: int) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def test_the_page_loads_nothing_from_anywhere_else() -> None:
    """Offline and on loopback: no script, style, font or image from another origin."""
    html = page().decode()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html
    assert "<script src" not in html


class TestStatusEncoder:
    def test_encodes_what_json_would(self) -> None:
        document = {"simulations": [{"name": "a", "simulators": [{"slot": 0}]}], "fleet": "f"}
        assert json.loads(StatusEncoder().encode(document)) == document

    def test_a_part_that_is_the_same_object_is_not_encoded_again(self) -> None:
        encoder = StatusEncoder()
        simulations: list[dict[str, object]] = [{"name": "a"}]
        encoder.encode({"simulations": simulations, "controller": {"healthy": True}})
        simulations.append({"name": "changed in place"})  # a pass never does this
        again = json.loads(encoder.encode({"simulations": simulations, "controller": {}}))
        assert again == {"simulations": [{"name": "a"}], "controller": {}}

    def test_a_replaced_part_is_encoded_anew(self) -> None:
        encoder = StatusEncoder()
        encoder.encode({"simulations": [{"name": "a"}]})
        assert json.loads(encoder.encode({"simulations": [{"name": "b"}]})) == {
            "simulations": [{"name": "b"}]
        }
