"""One ``Retry-After`` window for everything a controller sends to its Batch account.

Batch throttles an account, not a request: after a 429 or 503 with ``Retry-After``,
nothing may be sent before the window closes — neither the fleet's next listing nor the
lease's next renewal. The backend and the lease share one :class:`Throttle`; each checks
it before a request and feeds it every error that named a window.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from controller.backends._errors import BackendError, TransientBackendError
from controller.backends.azure._errors import classify


class Throttle:
    """The window, on the monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0  # no request before this

    def hold(self) -> None:
        """Refuse to send inside a window another request was given."""
        remaining = self._until - self._clock()
        if remaining > 0:
            raise TransientBackendError(
                "throttled: waiting out Retry-After", code="RetryAfter", retry_after=remaining
            )

    def classified(self, exc: BaseException, doing: str) -> BackendError:
        """Classify an SDK error, remembering any ``Retry-After`` it carried."""
        error = exc if isinstance(exc, BackendError) else classify(exc, doing)
        if isinstance(error, TransientBackendError) and error.retry_after:
            self._until = max(self._until, self._clock() + error.retry_after)
        return error
