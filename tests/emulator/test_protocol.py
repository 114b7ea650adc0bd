"""The HTTP contract: authentication, faults, throttling, counters, query and body checks."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import aiohttp
import pytest
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core import MatchConditions
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
)
from azure.core.rest import HttpRequest

from tests.batch_emulator import BatchEmulator, Fault
from tests.batch_emulator.fixtures import EmulatorFactory, client_for

from .helpers import job_options, pool_options, task_options


class StubTokenCredential:
    """The smallest AsyncTokenCredential: hands out a fixed token."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StubTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


async def _raw_get(
    emulator: BatchEmulator, path: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(emulator.endpoint + path, headers=headers) as r,
    ):
        text = await r.text()
        return r.status, json.loads(text) if text else None


# -- authentication ---------------------------------------------------------------------


async def test_bad_shared_key_is_403_with_batchs_signature_detail(
    batch_emulator: BatchEmulator,
) -> None:
    wrong = AzureNamedKeyCredential(batch_emulator.account, "d3Jvbmcta2V5")
    async with BatchClient(batch_emulator.endpoint, wrong) as client:
        with pytest.raises(HttpResponseError) as caught:
            await client.get_pool("p")
    assert not isinstance(caught.value, ClientAuthenticationError)  # the SDK maps only 401
    assert caught.value.status_code == 403
    assert caught.value.error.code == "AuthenticationFailed"
    assert caught.value.error.message.startswith(
        "Server failed to authenticate the request. Make sure the value of Authorization "
        "header is formed correctly including the signature."
    )
    (detail,) = caught.value.error.details
    assert detail.code == "AuthenticationErrorDetail"
    assert detail.message.startswith("The MAC signature found in the HTTP request '")
    assert "Server used following string to sign: 'GET\n" in detail.message
    assert batch_emulator.counters.count("Pools_GetPool", 403) == 1


async def test_a_shared_key_for_another_account_is_403_too(batch_emulator: BatchEmulator) -> None:
    other = AzureNamedKeyCredential("someoneelse", batch_emulator.key)
    async with BatchClient(batch_emulator.endpoint, other) as client:
        with pytest.raises(HttpResponseError) as caught:
            await client.get_pool("p")
    assert (caught.value.status_code, caught.value.error.code) == (403, "AuthenticationFailed")


async def test_request_without_auth_is_401_in_batch_error_shape(
    batch_emulator: BatchEmulator,
) -> None:
    status, body = await _raw_get(batch_emulator, "/pools?api-version=2025-06-01")
    assert status == 401
    assert body["code"] == "AuthenticationFailed"
    assert body["message"]["lang"] == "en-US"
    assert "RequestId:" in body["message"]["value"]
    assert {"key", "value"} <= set(body["values"][0])


async def test_bearer_token_over_https(make_batch_emulator: EmulatorFactory) -> None:
    emulator = await make_batch_emulator(https=True)
    credential = StubTokenCredential()
    async with BatchClient(
        emulator.endpoint, credential, connection_verify=emulator.ca_file
    ) as client:
        await client.create_pool(pool_options())
        assert [p.id async for p in client.list_pools()] == ["pool-1"]
    assert credential.scopes == [("https://batch.core.windows.net//.default",)]


async def test_configured_bearer_token_must_match(make_batch_emulator: EmulatorFactory) -> None:
    emulator = await make_batch_emulator(https=True, bearer_token="expected")
    async with BatchClient(
        emulator.endpoint, StubTokenCredential("other"), connection_verify=emulator.ca_file
    ) as client:
        with pytest.raises(ClientAuthenticationError):
            await client.get_pool("p")


def _jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with ``claims`` (the emulator reads `exp`, as it verifies nothing)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


async def test_an_expired_bearer_token_is_401_saying_so(
    make_batch_emulator: EmulatorFactory,
) -> None:
    emulator = await make_batch_emulator(https=True)
    expired = StubTokenCredential(_jwt({"exp": int(emulator.now) - 60}))
    async with BatchClient(emulator.endpoint, expired, connection_verify=emulator.ca_file) as c:
        with pytest.raises(ClientAuthenticationError) as caught:
            await c.get_pool("p")
    assert (caught.value.status_code, caught.value.error.code) == (401, "AuthenticationFailed")
    assert caught.value.error.message.startswith(
        "Server failed to authenticate the request. Make sure the value of Authorization "
        "header is formed correctly.\n"
    )
    (detail,) = caught.value.error.details
    assert detail.message.startswith("The access token expiry UTC time '")
    fresh = StubTokenCredential(_jwt({"exp": int(emulator.now) + 3600}))
    async with BatchClient(emulator.endpoint, fresh, connection_verify=emulator.ca_file) as c:
        assert [p async for p in c.list_pools()] == []


async def test_bearer_is_refused_over_plain_http(batch_emulator: BatchEmulator) -> None:
    status, body = await _raw_get(
        batch_emulator, "/pools?api-version=2025-06-01", {"Authorization": "Bearer token"}
    )
    assert (status, body["code"]) == (401, "AuthenticationFailed")


# -- throttling and faults --------------------------------------------------------------


async def test_429_with_retry_after_then_success(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_pool(pool_options())
    batch_emulator.faults.inject(Fault.throttle(retry_after=1), operations={"Pools_GetPool"})
    pool = await batch_client.get_pool("pool-1")  # the SDK waits out Retry-After and retries
    assert pool.id == "pool-1"
    assert batch_emulator.counters.by_operation()["Pools_GetPool"] == {200: 1, 429: 1}
    assert batch_emulator.faults.early_arrivals == []


async def test_503_server_busy_on_post_is_retried(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    batch_emulator.faults.inject(Fault.server_busy(retry_after=1))
    await batch_client.create_job(job_options())
    assert batch_emulator.counters.by_operation()["Jobs_CreateJob"] == {201: 1, 503: 1}
    assert batch_emulator.faults.early_arrivals == []


async def test_request_inside_a_retry_after_window_is_recorded(
    batch_emulator: BatchEmulator,
) -> None:
    batch_emulator.faults.inject(Fault.throttle(retry_after=30))
    async with client_for(batch_emulator, retry_total=0) as impatient:
        with pytest.raises(HttpResponseError) as caught:
            await impatient.get_pool("p")
        assert caught.value.status_code == 429
        assert caught.value.response.headers["Retry-After"] == "30"
        [_ async for _ in impatient.list_pools()]  # ignores the window
    [early] = batch_emulator.faults.early_arrivals
    assert early.operation == "Pools_ListPools"
    assert 0 < early.early_by <= 30


async def test_scripted_5xx_and_dropped_connection_then_success(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    batch_emulator.faults.script(
        [Fault.internal_error(), Fault.drop(), None], operations={"Jobs_ListJobs"}
    )
    assert [j async for j in batch_client.list_jobs()] == []
    assert batch_emulator.counters.by_operation()["Jobs_ListJobs"] == {200: 1, 500: 1, "dropped": 1}


async def test_5xx_after_processing_means_the_work_was_done(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_job(job_options())
    batch_emulator.faults.inject(
        Fault.internal_error(after_processing=True), operations={"Tasks_CreateTask"}
    )
    with pytest.raises(ResourceExistsError) as caught:  # the SDK's retry meets its own task
        await batch_client.create_task("job-1", task_options("t1"))
    assert caught.value.error.code == "TaskExists"
    assert batch_emulator.counters.by_operation()["Tasks_CreateTask"] == {409: 1, 500: 1}


async def test_random_faults_and_latency(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    batch_emulator.faults.random(
        Fault.internal_error(), probability=1.0, operations={"Jobs_GetJob"}
    )
    async with client_for(batch_emulator, retry_total=0) as client:
        with pytest.raises(HttpResponseError):
            await client.get_job("x")
    batch_emulator.faults.clear()

    batch_emulator.faults.latency = 0.2
    started = time.monotonic()
    [_ async for _ in batch_client.list_jobs()]
    assert time.monotonic() - started >= 0.2


# -- counting ---------------------------------------------------------------------------


async def test_request_counts_per_operation_and_outcome(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_job(job_options())
    with pytest.raises(ResourceExistsError):
        await batch_client.create_job(job_options())
    await batch_client.get_job("job-1")
    assert batch_emulator.counters.by_operation() == {
        "Jobs_CreateJob": {201: 1, 409: 1},
        "Jobs_GetJob": {200: 1},
    }
    assert batch_emulator.counters.count(outcome=409) == 1
    batch_emulator.counters.reset()
    assert batch_emulator.counters.count() == 0


# -- queries, bodies, preconditions -----------------------------------------------------


async def _send(client: BatchClient, method: str, url: str, body: Any = None) -> HttpResponseError:
    request = HttpRequest(method, url, json=body) if body is not None else HttpRequest(method, url)
    with pytest.raises(HttpResponseError) as caught:
        await client.send_request(request)
    return caught.value


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/pools?api-version=2024-07-01.20.0", 400, "UnsupportedRequestVersion"),
        ("/pools", 400, "MissingRequiredQueryParameter"),
        ("/pools?api-version=2025-06-01&colour=blue", 400, "UnsupportedQueryParameter"),
        ("/pools?api-version=2025-06-01&maxresults=5000", 400, "OutOfRangeQueryParameterValue"),
        ("/pools?api-version=2025-06-01&$filter=state%20eq", 400, "InvalidQueryParameterValue"),
        (
            "/pools?api-version=2025-06-01&$filter=colour%20eq%20'blue'",
            400,
            "InvalidQueryParameterValue",
        ),
        ("/pools?api-version=2025-06-01&$select=colour", 400, "InvalidQueryParameterValue"),
        pytest.param(
            "/pools?api-version=2025-06-01&$filter=state%20gt%20'active'",
            400,
            "InvalidQueryParameterValue",
            id="a state allows only eq and ne",
        ),
        pytest.param(
            "/jobs?api-version=2025-06-01&$filter=startswith(state,'act')",
            400,
            "InvalidQueryParameterValue",
            id="a job state allows no startswith",
        ),
        ("/applications?api-version=2025-06-01", 501, "EmulatorNotSupported"),
        ("/nowhere?api-version=2025-06-01", 400, "InvalidUri"),
    ],
)
async def test_query_problems(batch_client: BatchClient, url: str, status: int, code: str) -> None:
    error = await _send(batch_client, "GET", url)
    assert (error.status_code, error.error.code) == (status, code)


async def test_body_problems_answer_400_and_are_recorded(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    url = "/jobs?api-version=2025-06-01"
    error = await _send(
        batch_client, "POST", url, {"id": "j", "poolInfo": {"poolId": "p"}, "colour": "blue"}
    )
    assert (error.status_code, error.error.code) == (400, "UnsupportedProperty")
    error = await _send(batch_client, "POST", url, {"id": "j"})
    assert (error.status_code, error.error.code) == (400, "MissingRequiredProperty")
    error = await _send(
        batch_client, "POST", url, {"id": "j", "poolInfo": {"poolId": "p"}, "priority": "high"}
    )
    assert (error.status_code, error.error.code) == (400, "InvalidPropertyValue")
    violations = batch_emulator.take_violations()
    assert [(v.direction, v.operation) for v in violations] == [("request", "Jobs_CreateJob")] * 3


async def test_etag_preconditions(batch_client: BatchClient, batch_emulator: BatchEmulator) -> None:
    await batch_client.create_pool(pool_options())
    pool = await batch_client.get_pool("pool-1")
    with pytest.raises(HttpResponseError) as not_modified:
        await batch_client.get_pool(
            "pool-1", etag=pool.etag, match_condition=MatchConditions.IfModified
        )
    assert not_modified.value.status_code == 304

    update = m.BatchPoolUpdateOptions(metadata=[])
    await batch_client.update_pool(
        "pool-1", update, etag=pool.etag, match_condition=MatchConditions.IfNotModified
    )
    with pytest.raises(ResourceModifiedError) as stale:
        await batch_client.update_pool(
            "pool-1", update, etag=pool.etag, match_condition=MatchConditions.IfNotModified
        )
    assert stale.value.status_code == 412


async def test_standard_response_headers(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    request = HttpRequest(
        "POST",
        "/pools?api-version=2025-06-01",
        json=pool_options().as_dict(),
        headers={
            "content-type": "application/json; odata=minimalmetadata",
            "client-request-id": "abc-123",
        },
    )
    response = await batch_client.send_request(request)
    assert response.status_code == 201
    headers = response.headers
    assert headers["client-request-id"] == "abc-123"
    assert headers["DataServiceId"] == f"{batch_emulator.endpoint}/pools/pool-1"
    assert headers["ETag"].startswith("0x")
    assert headers["Last-Modified"].endswith("GMT")
    assert len(headers["request-id"]) == 36
