"""``deploy/healthcheck.py``, the image's HEALTHCHECK, against a real HTTP server.

The container test sees it report healthy; here: where it asks for each ``--listen``
spelling, and that a 503 from /healthz (3 failed passes in a row) or no answer is
unhealthy, with the reason in its one line.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from tests.scenarios.conftest import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "healthcheck.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9120", ("127.0.0.1", 9120)),
        ("0.0.0.0:9120", ("127.0.0.1", 9120)),
        (":9120", ("127.0.0.1", 9120)),
        ("[::]:9121", ("::1", 9121)),
        ("[::1]:9122", ("::1", 9122)),
        ("localhost:80", ("localhost", 80)),
        ("10.0.0.4:9120", ("10.0.0.4", 9120)),
    ],
)
def test_it_asks_where_the_daemon_listens(listen: str, expected: tuple[str, int]) -> None:
    assert healthcheck.target(listen) == expected


@pytest.fixture
def server() -> Iterator[tuple[int, list[int]]]:
    """A /healthz that answers the status code last put in the list."""
    codes = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(codes[-1] if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b"3 passes failed in a row: boom")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], codes
    httpd.shutdown()
    httpd.server_close()


def test_200_is_healthy_and_503_is_not(server: tuple[int, list[int]]) -> None:
    port, codes = server
    assert healthcheck.check(f"0.0.0.0:{port}") is None
    codes.append(503)
    problem = healthcheck.check(f"127.0.0.1:{port}")
    assert problem == f"GET /healthz on 127.0.0.1:{port}: 503 3 passes failed in a row: boom"


def test_no_daemon_is_unhealthy_with_the_reason() -> None:
    port = free_port()
    problem = healthcheck.check(f"127.0.0.1:{port}", timeout=5)
    assert problem is not None
    assert problem.startswith(f"GET /healthz on 127.0.0.1:{port} failed: ")
