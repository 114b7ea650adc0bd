"""The local backend at 500 simulators, through the daemon (``simfleet run``).

* *to ready*: a daemon runs one simulator; its file is rewritten to ask for ``count``
  more, and the figure is the time from the write to ``/status`` showing them all ready.
  Lower bound: ``count`` bare ``posix_spawn`` calls of the same command
  (``local_scale.bare_spawns``) plus the daemon's start-up cost for one simulator: the
  time from a write asking for one more to ``/status`` showing it ready (watching,
  one pass, one start, the status pass), measured just before on the same daemon.
* *SIGTERM*: the daemon, running ``count + 1`` simulators, is sent SIGTERM; the figure is
  the time until the process has exited (every simulator stopped). Lower bound: SIGTERM
  to ``count`` bare ``sleep`` processes and reaping them all. The target is absolute.
"""

from __future__ import annotations

import os
import signal
import time

import local_scale
from _processes import SLOTS, Daemon, daemon, fleet, until
from _table import Row

TIMEOUT = 600.0


def _edit_to_ready(running: Daemon, written: float, count: int, step: float) -> float:
    """Seconds from ``written`` to ``count`` ready in /status, read every ``step`` seconds
    (coarse for big fleets: each read makes the daemon render every simulator's row)."""
    until(lambda: running.running() >= count, TIMEOUT, f"{count} simulators ready", step=step)
    return time.monotonic() - written


def bare_stop(count: int) -> float:
    """Seconds to SIGTERM ``count`` bare ``sleep`` processes and reap them."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    pids = [os.posix_spawnp("sleep", ["sleep", "3600"], env, setsid=True) for _ in range(count)]
    started = time.monotonic()
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    for pid in pids:
        os.waitpid(pid, 0)
    return time.monotonic() - started


def figures(count: int) -> list[Row]:
    bare = local_scale.bare_spawns(count)
    bare_term = bare_stop(count)
    nodes = -(-(count + 2) // SLOTS)  # fixed: the local backend runs what its slots hold
    with fleet(1, 1, nodes) as specs, daemon(specs, backend="local", environ={}) as running:
        job = specs.jobs[0]
        until(lambda: running.running() >= 1, TIMEOUT, "the first simulator")
        one = _edit_to_ready(running, specs.scale(job, 2), 2, 0.01)
        many = _edit_to_ready(running, specs.scale(job, 2 + count), 2 + count, 0.05)
        stop = running.terminate(TIMEOUT)
    bound = bare + one
    return [
        Row(
            "local-ready",
            f"{count} local simulators to ready",
            f"{many:.2f} s",
            f"{bound:.2f} s (spawn {bare:.2f} + start-up {one:.2f})",
            many / bound,
            "≤ 2×",
            many / bound <= 2.0,
        ),
        Row(
            "local-sigterm",
            f"SIGTERM with {count} local simulators",
            f"{stop:.2f} s",
            f"{bare_term:.2f} s",
            None,
            "≤ 2 s",
            stop <= 2.0,
            "daemon exit after SIGTERM; lower bound: SIGTERM and reap of bare sleeps",
        ),
    ]
