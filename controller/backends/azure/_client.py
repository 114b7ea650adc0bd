"""Build the ``azure.batch.aio.BatchClient`` from the environment ``az batch`` uses.

``AZURE_BATCH_ENDPOINT`` (the account URL) and ``AZURE_BATCH_ACCOUNT`` name the account;
with ``AZURE_BATCH_ACCESS_KEY`` requests are signed with the shared key, otherwise
``DefaultAzureCredential`` supplies tokens (https only, as azure-core insists). With
``AZURE_SUBSCRIPTION_ID`` and ``AZURE_RESOURCE_GROUP`` as well, the account's resource
id is known and pools are written through Azure Resource Manager (:mod:`._arm`), at
``SIMFLEET_ARM_ENDPOINT`` (default ``https://management.azure.com``).

The SDK's own retries are switched off: a ``Retry-After`` must reach the daemon, which
owns the retry policy and sends nothing inside the window. A small pipeline policy counts
every request by operation and outcome for ``/metrics`` and the tests, and another
refuses to send a write once the controller's fleet lease is no longer held (the fence,
checked right before each request leaves, retries included). Every request names its
sender in ``User-Agent`` (``simfleet-holder/<identity>``), so the service's logs — and the
emulator's — tell the controllers of a fleet apart.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from controller.backends._errors import PermanentBackendError
from controller.backends._lease import LeaseLostError

_ID_SEGMENT = re.compile(
    r"/(pools|jobs|tasks|files|nodes|subscriptions|resourceGroups|batchAccounts"
    r"|poolOperationResults)/[^/?]+"
)
#: Azure Resource Manager, unless ``SIMFLEET_ARM_ENDPOINT`` says otherwise (tests).
ARM_ENDPOINT = "https://management.azure.com"
_ARM_NAMES = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP")


@dataclass(frozen=True)
class AzureSettings:
    """Where the Batch account is and how to authenticate (no secret in ``repr``).

    ``subscription`` and ``resource_group`` (both or neither) place the account in Azure
    Resource Manager: pools are then created, resized and deleted there (:mod:`._arm`).
    """

    endpoint: str
    account: str
    access_key: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    arm_endpoint: str = ARM_ENDPOINT

    def __repr__(self) -> str:
        key = "set" if self.access_key else "unset"
        arm = f", arm={self.subscription}/{self.resource_group}" if self.arm else ""
        return (
            f"AzureSettings(endpoint={self.endpoint!r}, account={self.account!r}, key={key}{arm})"
        )

    @property
    def arm(self) -> bool:
        """Whether pools go through Azure Resource Manager (the account's id is known)."""
        return bool(self.subscription and self.resource_group)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AzureSettings:
        """Read the ``AZURE_BATCH_*`` variables; raise a clear error when one is missing."""
        missing = [n for n in ("AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCOUNT") if n not in environ]
        if missing:
            raise PermanentBackendError(
                "the azure backend needs " + " and ".join(missing) + " in the environment",
                code="MissingConfiguration",
            )
        given = [n for n in _ARM_NAMES if environ.get(n)]
        if len(given) == 1:
            other = next(n for n in _ARM_NAMES if n not in given)
            raise PermanentBackendError(
                f"{given[0]} is set but {other} is not: set both to manage pools through "
                f"Azure Resource Manager, or neither",
                code="MissingConfiguration",
            )
        return cls(
            endpoint=_https(environ["AZURE_BATCH_ENDPOINT"]),
            account=environ["AZURE_BATCH_ACCOUNT"],
            access_key=environ.get("AZURE_BATCH_ACCESS_KEY") or None,
            subscription=environ.get("AZURE_SUBSCRIPTION_ID") or None,
            resource_group=environ.get("AZURE_RESOURCE_GROUP") or None,
            arm_endpoint=_https(environ.get("SIMFLEET_ARM_ENDPOINT") or ARM_ENDPOINT),
        )


def _https(endpoint: str) -> str:
    """An endpoint as a URL: as `az` prints one (host alone), it means https."""
    endpoint = endpoint.strip().rstrip("/")
    return endpoint if "://" in endpoint else f"https://{endpoint}"


def operation_of(method: str, url: str) -> str:
    """``POST /jobs/{id}/addtaskcollection`` from a request: ids folded, query dropped."""
    path = re.sub(r"^https?://[^/]+", "", url).split("?", 1)[0]
    return f"{method} {_ID_SEGMENT.sub(lambda m: f'/{m.group(1)}/{{id}}', path)}"


class RequestCounter(SansIOHTTPPolicy[Any, Any]):
    """Counts requests by (operation, outcome), outcome being the status code or ``error``."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def on_response(
        self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]
    ) -> None:
        http = request.http_request
        self.counts[
            (operation_of(http.method, http.url), str(response.http_response.status_code))
        ] += 1

    def on_exception(self, request: PipelineRequest[Any]) -> None:
        """A refused request (the SDK raises inside the pipeline): count its status code."""
        exc = sys.exc_info()[1]
        status = getattr(exc, "status_code", None)
        http = request.http_request
        outcome = str(status) if status is not None else "error"
        if isinstance(exc, LeaseLostError):
            outcome = "fenced"  # never sent
        self.counts[(operation_of(http.method, http.url), outcome)] += 1


class WriteFence(SansIOHTTPPolicy[Any, Any]):
    """Refuses every request but a read while ``allows()`` is False (the lease is lost)."""

    def __init__(self, allows: Callable[[], bool], fleet: str) -> None:
        self._allows = allows
        self._fleet = fleet

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if request.http_request.method not in ("GET", "HEAD") and not self._allows():
            raise LeaseLostError(self._fleet)


#: Seconds to connect, and to wait for an answer once connected. azure-core's defaults
#: (300 s each) let one hung request stall a pass for minutes; Batch itself gives up on a
#: request after 30 s (its server-side ``timeout``), so an answer later than that is lost.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 45.0


def user_agent(identity: str) -> str:
    """What every request says about its sender (azure-core appends its own tokens)."""
    return f"simfleet-holder/{identity}" if identity else "simfleet"


def pipeline_options(
    counter: RequestCounter,
    *,
    connection_verify: str | bool,
    identity: str,
    fence: WriteFence | None,
    timeouts: tuple[float, float],
) -> dict[str, Any]:
    """What every simfleet client of Azure (the Batch API's and Resource Manager's)
    installs in its pipeline: no SDK retries (a pass is the retry), the request counter,
    the write fence on every attempt, the holder's User-Agent and bounded timeouts."""
    return {
        "retry_total": 0,
        "per_call_policies": [counter],
        "per_retry_policies": [fence] if fence is not None else [],
        "connection_verify": connection_verify,
        "user_agent": user_agent(identity),
        "connection_timeout": timeouts[0],
        "read_timeout": timeouts[1],
    }


def make_client(
    settings: AzureSettings,
    counter: RequestCounter,
    *,
    credential: Any = None,
    connection_verify: str | bool = True,
    identity: str = "",
    fence: WriteFence | None = None,
    timeouts: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
) -> tuple[BatchClient, Any]:
    """The SDK client and the credential object (to close alongside it).

    Args:
        settings: the account.
        counter: the request-counting policy to install.
        credential: a token credential to use instead of the shared key or
            ``DefaultAzureCredential`` (tests, or callers with their own identity).
        connection_verify: TLS verification: True, or a CA bundle path (an https emulator).
        identity: the controller's identity, sent in ``User-Agent``.
        fence: the write fence, checked on every attempt (it follows the retry policy);
            a write it refuses is counted with the outcome ``fenced``.
        timeouts: seconds to connect and to read an answer.
    """
    if credential is None and settings.access_key:
        credential = AzureNamedKeyCredential(settings.account, settings.access_key)
    elif credential is None:
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
    client = BatchClient(
        settings.endpoint,
        credential,
        **pipeline_options(
            counter,
            connection_verify=connection_verify,
            identity=identity,
            fence=fence,
            timeouts=timeouts,
        ),
    )
    return client, credential
