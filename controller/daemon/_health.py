"""Whether the control loop is doing its job, as ``/healthz``, ``/readyz`` and ``/status``
say it.

A pass that raises (the backend refused the observation, the specs could not be read, a
bug) leaves the fleet unreconciled while every endpoint used to stay green. Here each
pass's outcome is recorded: consecutive failures and the last error show in ``/status``
(``controller``) and ``/metrics`` at once, and ``/healthz`` turns 503 once ``threshold``
passes in a row failed — one failure is usually a blip the next pass recovers from, three
are a daemon that needs someone. A pass running far longer than any should is "stuck".

``/readyz`` is 200 once a pass finished, and 503 again while the specs directory is
missing: a mistyped ``--specs`` must not look like a fleet with nothing to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Health:
    """The loop's record of its own passes.

    Attributes:
        threshold: consecutive failed passes that make ``/healthz`` fail.
        stuck_after: seconds a single pass may run before ``/healthz`` fails.
    """

    threshold: int = 3
    stuck_after: float = 120.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    failures: int = 0
    last_error: str = ""
    specs_missing: str = ""
    stopped: bool = False
    _passed_once: bool = False
    _pass_started: float | None = None

    def started(self) -> None:
        """A pass begins."""
        self._pass_started = self.clock()

    def succeeded(self) -> None:
        """A pass ran to its end (its single actions may still have failed)."""
        self._pass_started = None
        self._passed_once = True
        self.failures = 0

    def failed(self, error: str) -> None:
        """A pass raised: nothing was reconciled this time."""
        self._pass_started = None
        self.failures += 1
        self.last_error = error

    def _stuck(self) -> str:
        if self._pass_started is not None:
            running = self.clock() - self._pass_started
            if running > self.stuck_after:
                return f"a pass has been running for {running:.0f}s"
        return ""

    def healthy(self) -> tuple[bool, str]:
        """``/healthz``: alive, not stuck, and not failing pass after pass."""
        if self.stopped:
            return False, "stopped"
        if stuck := self._stuck():
            return False, stuck
        if self.failures >= self.threshold:
            return False, f"{self.failures} passes in a row failed: {self.last_error}"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        """``/readyz``: a pass finished, and the specs directory is there."""
        if self.specs_missing:
            return False, self.specs_missing
        if not self._passed_once:
            return False, "starting"
        return True, "ready"

    def document(self) -> dict[str, Any]:
        """The ``controller`` entry of ``/status``: failed passes have their own fields,
        ``message`` says what else is wrong (no specs directory, a stuck pass)."""
        return {
            "healthy": self.healthy()[0],
            "consecutiveFailedPasses": self.failures,
            "lastError": self.last_error if self.failures else "",
            "message": self.specs_missing or self._stuck(),
        }
