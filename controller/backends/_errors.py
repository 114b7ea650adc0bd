"""Backend errors, classified at the boundary: retry later, or give up and say why.

Adapters translate their SDK's exceptions into these two classes and nothing else leaks
out, so the daemon's retry policy is one piece of code for every backend (kopf's
``TemporaryError`` / ``PermanentError`` split).
"""

from __future__ import annotations


class BackendError(Exception):
    """Base of both classes; ``code`` is the backend's own error code when it has one."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientBackendError(BackendError):
    """Worth retrying: throttling, a 5xx, a dropped connection, an object still deleting.

    ``retry_after`` is the server's ``Retry-After`` in seconds when it sent one: no request
    may be sent before it has passed.
    """

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class UnreachableBackendError(TransientBackendError):
    """The backend could not be reached at all: a name that does not resolve, a refused
    or dropped connection, a timeout. Worth retrying like any transient error, but it is
    the operator's network or endpoint, not the service being busy, and is reported so."""


class PermanentBackendError(BackendError):
    """Retrying the same request cannot help: a bad request, a quota, a conflict of names."""


class OutputGoneError(PermanentBackendError):
    """A simulator's output cannot be read any more (or never could be).

    On Batch a task's files live on the node that ran it: they go when the node leaves
    the pool or is reclaimed, and after the task's retention time; a task that never
    started has none. Expected, not a fault: callers say so in one line and go on.
    """
