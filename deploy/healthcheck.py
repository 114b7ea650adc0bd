"""The controller image's HEALTHCHECK: GET /healthz where ``simfleet run`` listens.

Docker runs it inside the container, so it needs no curl: the address comes from
``SIMFLEET_LISTEN`` (the same variable the daemon reads), and an unspecified address
(``0.0.0.0``, ``::``) is asked on loopback. Exit 0 when /healthz answers 200, else 1 with
the reason on stdout, which ``docker inspect`` keeps in the container's health log.
"""

from __future__ import annotations

import http.client
import os
import sys

DEFAULT_LISTEN = "127.0.0.1:9120"
# Addresses a server binds to mean "every interface"; a client asks loopback instead.
UNSPECIFIED = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


def target(listen: str) -> tuple[str, int]:
    """Where to ask: ``HOST:PORT`` as ``--listen`` spells it, unspecified → loopback."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    return UNSPECIFIED.get(host, host), int(port)


def check(listen: str, timeout: float = 4.0) -> str | None:
    """None when /healthz answers 200, else why not (one line)."""
    host, port = target(listen)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        body = response.read(300).decode(errors="replace").strip()
    except OSError as exc:
        return f"GET /healthz on {host}:{port} failed: {exc}"
    finally:
        connection.close()
    if response.status != 200:
        return f"GET /healthz on {host}:{port}: {response.status} {body}"
    return None


def main() -> int:
    problem = check(os.environ.get("SIMFLEET_LISTEN") or DEFAULT_LISTEN)
    print(problem or "healthy")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
