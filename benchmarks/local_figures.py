"""The local backend at 500 simulators, from ``local_scale.measure`` (the local backend's
own benchmark module, which defines and measures them; this module only tabulates).

* *to ready*: ``start_s``, one ``AddTasks`` of ``count`` simulators until all run,
  against ``bare_spawn_s``, ``count`` bare ``posix_spawn`` calls of the same command.
* *SIGTERM*: ``daemon_sigterm_s``, a real daemon running ``count`` simulators from
  SIGTERM until it has exited. Lower bound shown beside it: SIGTERM to ``count`` bare
  ``sleep`` processes and reaping them all (:func:`bare_stop`); the target is absolute.
"""

from __future__ import annotations

import os
import signal
import time

import local_scale
from _table import Row


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
    measured = local_scale.measure(count)
    floor = bare_stop(count)
    start, bare = measured["start_s"], measured["bare_spawn_s"]
    sigterm = measured["daemon_sigterm_s"]
    return [
        Row(
            "local-ready",
            f"{count} local simulators to ready",
            f"{start:.2f} s",
            f"{bare:.2f} s (bare posix_spawn)",
            start / bare,
            "≤ 2×",
            start / bare <= 2.0,
            f"the runtime alone {measured['runtime_spawn_s']:.2f} s; event loop held ≤ "
            f"{measured['start_loop_held_ms']:.0f} ms; backend close "
            f"{measured['close_s']:.2f} s",
        ),
        Row(
            "local-sigterm",
            f"SIGTERM with {count} local simulators",
            f"{sigterm:.2f} s",
            f"{floor:.2f} s (bare sleeps)",
            None,
            "≤ 2 s",
            sigterm <= 2.0,
            "until the daemon process exited",
        ),
    ]
