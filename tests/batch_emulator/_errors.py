"""Batch errors: one exception type that knows its HTTP status and Batch error code.

Batch answers every failure with the flat body `{"code", "message": {"lang", "value"},
"values": [{"key", "value"}]}` (the spec's `BatchError`). The SDK maps the status to an
exception class (404 → ResourceNotFoundError, 409 → ResourceExistsError, 401 →
ClientAuthenticationError, anything else → HttpResponseError) and exposes `code`, so both
must be right. Status codes follow Batch's published table of error codes (e.g.
`PoolBeingResized` 409, `RequestBodyTooLarge` 413, `InvalidRange` 416, `ServerBusy` 503).

Codes that only the emulator uses start with `Emulator` so nobody mistakes them for the
service's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._wire import iso


class BatchApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        values: Mapping[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.values = dict(values or {})
        self.headers = dict(headers or {})

    def body(self, request_id: str, now: float) -> dict[str, Any]:
        # Batch appends the request id and time to the message text.
        text = f"{self.message}\nRequestId:{request_id}\nTime:{iso(now)}"
        body: dict[str, Any] = {"code": self.code, "message": {"lang": "en-US", "value": text}}
        if self.values:
            body["values"] = [{"key": k, "value": v} for k, v in self.values.items()]
        return body


def not_found(kind: str, ident: str) -> BatchApiError:
    """`PoolNotFound`, `JobNotFound`, `TaskNotFound`, `NodeNotFound`, `FileNotFound`."""
    return BatchApiError(404, f"{kind}NotFound", f"The specified {kind.lower()} does not exist.")


def conflict(code: str, message: str) -> BatchApiError:
    return BatchApiError(409, code, message)


def bad_property(name: str, value: object, reason: str) -> BatchApiError:
    return BatchApiError(
        400,
        "InvalidPropertyValue",
        "The value provided for one of the properties in the request body is invalid.",
        {"PropertyName": name, "PropertyValue": str(value), "Reason": reason},
    )


def bad_query(name: str, value: str, reason: str) -> BatchApiError:
    return BatchApiError(
        400,
        "InvalidQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is invalid.",
        {"QueryParameterName": name, "QueryParameterValue": value, "Reason": reason},
    )


def not_supported(what: str) -> BatchApiError:
    return BatchApiError(
        501, "EmulatorNotSupported", f"The Batch emulator does not support {what}."
    )


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def check_id(value: str, name: str = "id") -> None:
    """Batch ids: letters, digits, hyphens and underscores, 1 to 64 characters."""
    if not 1 <= len(value) <= 64 or not set(value) <= _ID_CHARS:
        raise bad_property(name, value, "ids are 1-64 letters, digits, hyphens or underscores")
