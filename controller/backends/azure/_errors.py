"""Classify azure-core exceptions as transient or permanent, once, at the boundary.

Throttling (429, 503 ``ServerBusy``), server errors, timeouts, dropped connections and
objects still being deleted are transient; the server's ``Retry-After`` is carried along
so the daemon sends nothing inside that window. Everything else is permanent: retrying
the same request cannot help. Codes named here only in ``_IDEMPOTENT`` mean "already
done" and are treated as success by the caller.
"""

from __future__ import annotations

import asyncio

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from controller.backends._errors import BackendError, PermanentBackendError, TransientBackendError

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_CODES = frozenset(
    {
        "JobBeingDeleted",
        "PoolBeingDeleted",
        "PoolBeingResized",
        "ServerBusy",
        "OperationTimedOut",
        "InternalError",
    }
)


def code_of(exc: HttpResponseError) -> str | None:
    """The Batch error code (``TaskExists``, ``PoolNotFound`` …) of a failed request."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    return None


def retry_after(exc: HttpResponseError) -> float | None:
    """Seconds from the response's ``Retry-After`` header, if it has one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify(exc: BaseException, doing: str) -> BackendError:
    """The backend error for an exception raised while ``doing`` something."""
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        code = code_of(exc)
        message = f"{doing}: {exc.status_code} {code or exc.reason or ''}".strip()
        if exc.status_code in _TRANSIENT_STATUS or code in _TRANSIENT_CODES:
            return TransientBackendError(message, code=code, retry_after=retry_after(exc))
        return PermanentBackendError(message, code=code)
    if isinstance(exc, ServiceRequestError | ServiceResponseError | asyncio.TimeoutError):
        return TransientBackendError(f"{doing}: {type(exc).__name__}: {exc}", code="Connection")
    if isinstance(exc, AzureError):
        return TransientBackendError(f"{doing}: {exc}", code=type(exc).__name__)
    return PermanentBackendError(f"{doing}: {type(exc).__name__}: {exc}")
