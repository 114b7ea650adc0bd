"""Classify azure-core exceptions as transient or permanent, once, at the boundary.

Throttling (429, 503 ``ServerBusy``), server errors and objects still being deleted are
transient; the server's ``Retry-After`` is carried along so the daemon sends nothing inside
that window. A request that never got an answer — the endpoint's name does not resolve,
the connection is refused, dropped or times out — is transient too, but
:class:`UnreachableBackendError`: the operator's network or endpoint is at fault, not a
busy service, and the commands say so. Everything else is permanent: retrying the same
request cannot help; credentials Batch refuses (``AuthenticationFailed``) say which
setting to check. Codes named here only in ``_IDEMPOTENT`` mean "already done" and are
treated as success by the caller.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import CredentialUnavailableError

from controller.backends._errors import (
    BackendError,
    PermanentBackendError,
    TransientBackendError,
    UnreachableBackendError,
)

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


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it: ``__cause__``/``__context__`` and azure-core's
    ``inner_exception`` (the transport's own error), each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "inner_exception", None)
        current = (
            current.__cause__
            or (inner if isinstance(inner, BaseException) else None)
            or current.__context__
        )


def _unreachable(exc: BaseException, doing: str) -> UnreachableBackendError:
    """A request that got no answer, said as the operator can act on it.

    ``getaddrinfo`` failing (``socket.gaierror``) is a DNS problem; an ``OSError`` from the
    connection (refused, unreachable, reset) names the host and port when the transport
    error carries them (aiohttp's ``ClientConnectorError`` does).
    """
    causes = list(_chain(exc))
    where = next(
        (
            f"{getattr(c, 'host', '')}:{getattr(c, 'port', '')}"
            for c in causes
            if getattr(c, "host", None) and getattr(c, "port", None)
        ),
        "the Batch endpoint",
    )
    host = where.rsplit(":", 1)[0]
    dns = next((c for c in causes if isinstance(c, socket.gaierror)), None)
    if dns is not None:
        reason = dns.strerror or str(dns)
        return UnreachableBackendError(
            f"{doing}: cannot resolve {host} (DNS: {reason})", code="NameResolution"
        )
    os_error = next((c for c in causes if isinstance(c, OSError) and c.errno), None)
    if os_error is not None and os_error.errno:
        reason = os.strerror(os_error.errno).lower()  # asyncio's own text names no reason
        return UnreachableBackendError(
            f"{doing}: cannot connect to {where}: {reason}", code="Connection"
        )
    if any(isinstance(c, asyncio.TimeoutError) for c in causes):
        return UnreachableBackendError(f"{doing}: no answer from {where} in time", code="Timeout")
    return UnreachableBackendError(
        f"{doing}: connection to {where} failed: {type(exc).__name__}: {exc}", code="Connection"
    )


def _detail(exc: HttpResponseError, name: str) -> str:
    """The first line of one of a Batch error's ``values`` ("" without it)."""
    error = getattr(exc, "error", None)
    for item in getattr(error, "details", None) or ():
        if getattr(item, "code", None) == name:
            return str(getattr(item, "message", "") or "").splitlines()[0].strip()
    return ""


def _refused(exc: HttpResponseError, doing: str) -> PermanentBackendError:
    """Batch did not accept the credentials: one line that says which ones to check.

    Batch answers a shared-key signature that does not verify (a wrong key or account
    name) with 403 and a bearer token it refuses (expired, wrong audience) with 401, both
    ``AuthenticationFailed``. The signature's detail names the signature and the string
    signed: neither is shown; other details (an expired token) say what to fix.
    """
    detail = _detail(exc, "AuthenticationErrorDetail")
    shown = "" if detail.startswith("The MAC signature") else f" ({detail})" if detail else ""
    if exc.status_code == 403:
        advice = (
            "Batch refused the shared key: check AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY "
            "(a key of that account, as `az batch account keys list` shows it)"
        )
    else:
        advice = (
            "Batch refused the access token: check the identity's role on the Batch account "
            "and that its token is for https://batch.core.windows.net/"
        )
    message = f"{doing}: {exc.status_code} AuthenticationFailed: {advice}{shown}"
    return PermanentBackendError(message, code="AuthenticationFailed")


def classify(exc: BaseException, doing: str) -> BackendError:
    """The backend error for an exception raised while ``doing`` something."""
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        code = code_of(exc)
        if code == "AuthenticationFailed":
            return _refused(exc, doing)
        message = f"{doing}: {exc.status_code} {code or exc.reason or ''}".strip()
        if exc.status_code in _TRANSIENT_STATUS or code in _TRANSIENT_CODES:
            return TransientBackendError(message, code=code, retry_after=retry_after(exc))
        return PermanentBackendError(message, code=code)
    if isinstance(exc, ServiceRequestError | ServiceResponseError | asyncio.TimeoutError):
        return _unreachable(exc, doing)
    if isinstance(exc, CredentialUnavailableError):
        # No credential is configured at all: retrying cannot make one appear.
        return PermanentBackendError(
            f"{doing}: no Azure credential: set AZURE_BATCH_ACCESS_KEY (shared key), or give "
            f"the controller an identity DefaultAzureCredential finds (a managed identity, "
            f"az login, AZURE_CLIENT_ID/AZURE_TENANT_ID/…): {exc}",
            code="CredentialUnavailable",
        )
    if isinstance(exc, AzureError):
        return TransientBackendError(f"{doing}: {exc}", code=type(exc).__name__)
    return PermanentBackendError(f"{doing}: {type(exc).__name__}: {exc}")
