"""Classification of azure-core errors: a request that got no answer is "unreachable"
(a DNS failure named as such), throttling and server errors are "busy"."""

from __future__ import annotations

import socket

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from controller.backends import (
    PermanentBackendError,
    TransientBackendError,
    UnreachableBackendError,
)
from controller.backends.azure._errors import classify


class ConnectorError(OSError):
    """What aiohttp raises for a failed connect: the OS error, plus host and port."""

    def __init__(self, cause: OSError, host: str, port: int) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.host = host
        self.port = port


def wrapped(cause: OSError, host: str = "batch.example.invalid", port: int = 443) -> Exception:
    """azure-core's ServiceRequestError around a transport error, as the SDK raises it."""
    connector = ConnectorError(cause, host, port)
    connector.__cause__ = cause
    error = ServiceRequestError(f"Cannot connect to host {host}:{port}", error=connector)
    error.__cause__ = connector
    return error


def test_a_name_that_does_not_resolve_is_a_dns_error() -> None:
    error = classify(wrapped(socket.gaierror(-2, "Name or service not known")), "observe")
    assert isinstance(error, UnreachableBackendError)
    assert error.code == "NameResolution"
    assert (
        str(error)
        == "observe: cannot resolve batch.example.invalid (DNS: Name or service not known)"
    )


def test_a_refused_connection_names_host_port_and_reason() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    error = classify(wrapped(refused, "127.0.0.1", 9), "observe")
    assert isinstance(error, UnreachableBackendError)
    assert error.code == "Connection"
    assert str(error) == "observe: cannot connect to 127.0.0.1:9: connection refused"


def test_a_dropped_response_is_unreachable_too() -> None:
    error = classify(ServiceResponseError("Connection reset by peer"), "list tasks of alpha")
    assert isinstance(error, UnreachableBackendError)
    assert str(error).startswith("list tasks of alpha: connection to the Batch endpoint failed")


@pytest.mark.parametrize("status", [429, 503, 500])
def test_throttling_and_server_errors_are_transient_but_reachable(status: int) -> None:
    exc = HttpResponseError(message="busy")
    exc.status_code = status
    error = classify(exc, "observe")
    assert isinstance(error, TransientBackendError)
    assert not isinstance(error, UnreachableBackendError)


def test_a_bad_request_is_permanent() -> None:
    exc = HttpResponseError(message="bad")
    exc.status_code = 400
    assert isinstance(classify(exc, "add tasks"), PermanentBackendError)


def test_no_credential_at_all_is_permanent_and_says_what_to_set() -> None:
    """DefaultAzureCredential finding nothing has no status code; retrying it forever as
    transient would hide a controller that can never authenticate."""
    from azure.identity import CredentialUnavailableError

    error = classify(CredentialUnavailableError("no credential found"), "observe")
    assert isinstance(error, PermanentBackendError)
    assert error.code == "CredentialUnavailable"
    assert "set AZURE_BATCH_ACCESS_KEY" in str(error)
