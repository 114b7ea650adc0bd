"""The ``Retry-After`` window, as data: until when no request may be sent.

One value, owned by the reconciler: a throttled observation or action extends it, and
everyone who sends — the daemon's loop, ``apply --wait`` — asks it how long to stay quiet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class RetryWindow:
    """No backend request before ``until`` (on ``monotonic``'s scale).

    Attributes:
        monotonic: the clock the window is measured on.
        until: the moment the window closes (0: open).
    """

    monotonic: Callable[[], float]
    until: float = 0.0

    def extend(self, seconds: float | None) -> None:
        """Stay quiet for ``seconds`` from now (never shortens the window)."""
        if seconds is not None and seconds > 0:
            self.until = max(self.until, self.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds until a request may be sent again (0 when the window is open)."""
        return max(0.0, self.until - self.monotonic())
