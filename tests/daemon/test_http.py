"""The HTTP server with real sockets: slow clients, a connection cap, bad requests and the
event loop's own errors never take the endpoints down or flood the log."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import http.client
import logging
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from controller.daemon import Controller, DaemonConfig, utc_now
from controller.testing import FakeBackend
from tests.daemon.clients import closed_by_server, half_headers
from tests.daemon.conftest import POOL, running, simulation, timed_get, until


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "pool.yaml").write_text(POOL)
    (folder / "a.yaml").write_text(simulation("alpha", 1))
    return folder


def daemon(specs: Path, **limits: float) -> Controller:
    """A daemon over a fake backend; ``limits`` narrow its :class:`HttpLimits`."""
    config = DaemonConfig(specs=specs, port=0)
    if limits:
        from controller.daemon import HttpLimits  # only where limits are set

        config = dataclasses.replace(config, http=HttpLimits(**limits))
    return Controller(config, FakeBackend(clock=utc_now))


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for client in opened:
        client.close()


class TestSlowClients:
    async def test_slow_clients_are_dropped_in_time_and_healthz_answers_meanwhile(
        self, specs: Path, clients: list[socket.socket]
    ) -> None:
        async with running(daemon(specs, request_timeout=1.5)) as controller:
            assert controller.port is not None
            started = time.monotonic()
            clients += await asyncio.to_thread(half_headers, controller.port, 100)
            url = f"http://127.0.0.1:{controller.port}/healthz"
            for _ in range(3):  # during the flood: answered, and at once
                status, seconds = await asyncio.to_thread(timed_get, url)
                assert status == 200
                assert seconds < 1.0
            deadline = started + 1.5 + 3.0
            dropped = await asyncio.to_thread(
                lambda: [closed_by_server(c, deadline) for c in clients]
            )
            assert all(dropped), f"{dropped.count(False)} slow clients still held"
            assert time.monotonic() < deadline

    async def test_the_cap_holds_and_a_new_client_is_still_served(
        self, specs: Path, clients: list[socket.socket]
    ) -> None:
        async with running(daemon(specs, max_connections=16, request_timeout=30)) as controller:
            assert controller.port is not None
            clients += await asyncio.to_thread(half_headers, controller.port, 40)
            guard_counts = []
            url = f"http://127.0.0.1:{controller.port}/healthz"
            for _ in range(5):
                status, _ = await asyncio.to_thread(timed_get, url)
                assert status == 200
                guard_counts.append(_open_connections(controller))
            assert max(guard_counts) <= 16

    async def test_a_keep_alive_client_is_served_request_after_request(self, specs: Path) -> None:
        async with running(daemon(specs, request_timeout=1.0)) as controller:
            assert controller.port is not None
            port = controller.port

            def three_requests() -> list[int]:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                try:
                    statuses = []
                    for path in ("/healthz", "/status", "/metrics"):
                        connection.request("GET", path)
                        response = connection.getresponse()
                        response.read()
                        statuses.append(response.status)
                    return statuses
                finally:
                    connection.close()

            assert await asyncio.to_thread(three_requests) == [200, 200, 200]


def _open_connections(controller: Controller) -> int:
    """How many connections the server holds, counted by the kernel: ESTABLISHED sockets
    on the daemon's port (the test's clients and the server's ends are both listed)."""
    port = f":{controller.port:04X}"
    established = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(port) and fields[3] == "01":
            established += 1
    return established


class TestQuietLog:
    async def test_a_malformed_request_is_one_structured_line(
        self, specs: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        garbage = b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: \xff\xfe\r\n\r\n"
        caplog.set_level(logging.DEBUG)
        async with running(daemon(specs)) as controller:
            assert controller.port is not None
            port = controller.port

            def send() -> bytes:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                    client.sendall(garbage)
                    return client.recv(1024)

            with structlog.testing.capture_logs() as logs:
                answer = await asyncio.to_thread(send)
                await until(lambda: any(e["event"] == "http_bad_request" for e in logs))
        assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
        lines = [e for e in logs if e["event"] == "http_bad_request"]
        assert len(lines) == 1
        assert "exc_info" not in lines[0]
        assert len(lines[0]["error"]) <= 120
        assert lines[0]["error"].isascii()
        assert "\n" not in lines[0]["error"]
        # aiohttp's own logger (with its traceback) is not used; ours turns the record
        # into the line above
        assert not [r for r in caplog.records if r.name.startswith("aiohttp")]

    async def test_accept_errors_are_one_line_per_window_with_a_count(
        self, specs: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        async with running(daemon(specs)):
            loop = asyncio.get_running_loop()
            with structlog.testing.capture_logs() as logs:
                for _ in range(200):  # what asyncio reports at the descriptor limit
                    loop.call_exception_handler(
                        {
                            "message": "socket.accept() out of system resource",
                            "exception": OSError(errno.EMFILE, "Too many open files"),
                        }
                    )
        lines = [e for e in logs if e["event"] == "event_loop_error"]
        assert len(lines) == 1
        assert "Too many open files" in lines[0]["error"]
        assert not [r for r in caplog.records if r.name == "asyncio"]


@pytest.mark.parametrize(
    ("soft", "cap"), [(64, 16), (20, 8), (4096, 64), (resource.RLIM_INFINITY, 64)]
)
def test_the_cap_leaves_most_descriptors_to_the_daemon(
    monkeypatch: pytest.MonkeyPatch, soft: int, cap: int
) -> None:
    from controller.daemon import HttpLimits, _connections

    monkeypatch.setattr(_connections.resource, "getrlimit", lambda _: (soft, soft))
    assert HttpLimits().cap() == cap
