"""Misbehaving HTTP clients, shared by the in-process and the scenario tests of the server."""

from __future__ import annotations

import socket
import time


def half_headers(port: int, count: int) -> list[socket.socket]:
    """``count`` clients that send half a request header and then nothing."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(b"GET /status HTTP/1.1\r\nHost: simfleet\r\nX-Slow: ")
        clients.append(client)
    return clients


def closed_by_server(client: socket.socket, deadline: float) -> bool:
    """Whether the server closed ``client`` (EOF or reset) before ``deadline``."""
    client.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return client.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
