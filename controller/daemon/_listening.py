"""Where the daemon's HTTP endpoints listen: address checks and the bind itself.

The port is bound before the backend is opened, so a port in use or an address that
cannot be bound ends ``simfleet run`` with one line *before* anything touches the fleet
(on main it once adopted the simulators, failed to bind, and stopped them all).

``/status`` shows simulators' stderr tails, so only loopback addresses are served without
the operator's explicit consent; :func:`is_loopback` decides what counts as loopback
without any DNS lookup (a name other than ``localhost`` is not trusted to be local).
"""

from __future__ import annotations

import ipaddress
import os
import socket


class ListenError(Exception):
    """The endpoints cannot listen where asked; the message is the line to show."""


def shown(host: str, port: int) -> str:
    """``127.0.0.1:9120`` or ``[::1]:9120``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ``::1``)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening, non-blocking socket on ``host:port`` (port 0: any free port).

    Raises:
        ListenError: "cannot listen on 127.0.0.1:9120: address already in use", or the
            name does not resolve, or the address is not this machine's.
    """
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
        )
        family, _, _, _, address = infos[0]
        sock = socket.create_server(address, family=family, backlog=backlog)
    except socket.gaierror as exc:
        reason = f"cannot resolve {host} ({exc.strerror})"
        raise ListenError(f"cannot listen on {shown(host, port)}: {reason}") from exc
    except OSError as exc:  # create_server's own text repeats the address; keep the reason
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ListenError(f"cannot listen on {shown(host, port)}: {reason}") from exc
    sock.setblocking(False)
    return sock
