"""ARM's pool endpoints on the emulator, through the real azure-mgmt-batch SDK over https.

Every request and answer is checked against BatchManagement.json by the fixture (a
violation fails the test), as the data plane's are against BatchService.json.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.batch.aio import BatchManagementClient

from tests.batch_emulator import BatchEmulator
from tests.batch_emulator.fixtures import EmulatorFactory

from .helpers import job_options, ready_pool, task_options
from .test_protocol import StubTokenCredential

IDENTITY = (
    "/subscriptions/5f1e0c0a-5e1f-4e1e-9a1e-0000000000e1/resourceGroups/simfleet-emulator/"
    "providers/Microsoft.ManagedIdentity/userAssignedIdentities/acr-pull"
)
SERVER = "registry.example"
IF_MISSING = MatchConditions.IfMissing  # bare, as Batch and Microsoft's examples write it


def arm_pool(*, identity: bool = True, dedicated: int = 1, **props: Any) -> dict[str, Any]:
    """A pool as simfleet sends it through ARM: a registry pulled with a managed identity."""
    registry: dict[str, Any] = {"registryServer": SERVER}
    if identity:
        registry["identityReference"] = {"resourceId": IDENTITY}
    body: dict[str, Any] = {
        "properties": {
            "vmSize": "Standard_D2s_v3",
            "deploymentConfiguration": {
                "virtualMachineConfiguration": {
                    "imageReference": {
                        "publisher": "microsoft-dsvm",
                        "offer": "ubuntu-hpc",
                        "sku": "2204",
                        "version": "latest",
                    },
                    "nodeAgentSkuId": "batch.node.ubuntu 22.04",
                    "containerConfiguration": {
                        "type": "DockerCompatible",
                        "containerRegistries": [registry],
                    },
                }
            },
            "scaleSettings": {"fixedScale": {"targetDedicatedNodes": dedicated}},
            "metadata": [{"name": "simfleet-managed", "value": "true"}],
            **props,
        }
    }
    if identity:
        body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    return body


@pytest_asyncio.fixture
async def emulator(make_batch_emulator: EmulatorFactory) -> BatchEmulator:
    return await make_batch_emulator(https=True, arm_retry_after=1)


@pytest_asyncio.fixture
async def arm(emulator: BatchEmulator) -> AsyncIterator[BatchManagementClient]:
    client = BatchManagementClient(
        StubTokenCredential(),
        emulator.subscription_id,
        base_url=emulator.endpoint,
        credential_scopes=[f"{emulator.endpoint}/.default"],
        connection_verify=emulator.ca_file,
        retry_total=0,
        polling_interval=0.05,
    )
    async with client:
        yield client


async def _raw(
    emulator: BatchEmulator, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, str], Any]:
    context = ssl.create_default_context(cafile=emulator.ca_file)
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, emulator.endpoint + path, headers=headers, json=body, ssl=context
        ) as answer,
    ):
        text = await answer.text()
        return answer.status, dict(answer.headers), json.loads(text) if text else None


def _pool_path(emulator: BatchEmulator, name: str = "sims") -> str:
    return (
        f"/subscriptions/{emulator.subscription_id}/resourceGroups/{emulator.resource_group}"
        f"/providers/Microsoft.Batch/batchAccounts/{emulator.account}/pools/{name}"
        "?api-version=2025-06-01"
    )


class TestCreate:
    async def test_a_pool_created_through_arm_shows_on_the_data_plane_with_its_identity(
        self, emulator: BatchEmulator, arm: BatchManagementClient
    ) -> None:
        made = await arm.pool.create(emulator.resource_group, emulator.account, "sims", arm_pool())

        assert made.identity is not None
        assert list(made.identity.user_assigned_identities) == [IDENTITY]
        assert made.properties.provisioning_state == "Succeeded"
        seen = emulator.pool("sims")  # as the data plane's GET answers
        assert seen["identity"]["type"] == "UserAssigned"
        assert [i["resourceId"] for i in seen["identity"]["userAssignedIdentities"]] == [IDENTITY]
        assert seen["targetDedicatedNodes"] == 1
        assert seen["metadata"] == [{"name": "simfleet-managed", "value": "true"}]
        registries = seen["virtualMachineConfiguration"]["containerConfiguration"]
        assert registries["type"] == "dockerCompatible"
        assert emulator.counters.count("Pool_Create") == 1

    async def test_if_none_match_never_overwrites_an_existing_pool(
        self, emulator: BatchEmulator, arm: BatchManagementClient
    ) -> None:
        group, account = emulator.resource_group, emulator.account
        await arm.pool.create(group, account, "sims", arm_pool(dedicated=1))

        with pytest.raises(ResourceExistsError) as refused:
            await arm.pool.create(
                group,
                account,
                "sims",
                arm_pool(dedicated=3),
                match_condition=MatchConditions.IfMissing,
            )

        assert refused.value.status_code == 412
        assert emulator.pool("sims")["targetDedicatedNodes"] == 1

    async def test_a_property_the_emulator_does_not_model_is_501_not_dropped(
        self, emulator: BatchEmulator, arm: BatchManagementClient
    ) -> None:
        body = arm_pool(startTask={"commandLine": "true"})
        with pytest.raises(HttpResponseError) as refused:
            await arm.pool.create(emulator.resource_group, emulator.account, "sims", body)
        assert refused.value.status_code == 501

    async def test_a_body_against_the_spec_is_400_and_a_violation(
        self, emulator: BatchEmulator
    ) -> None:
        headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
        body = arm_pool(vmSizes="typo")
        status, _, answer = await _raw(emulator, "PUT", _pool_path(emulator), headers, body)

        assert status == 400
        assert answer["error"]["code"] == "UnsupportedProperty"
        assert [v.operation for v in emulator.take_violations()] == ["Pool_Create"]


class TestAuthentication:
    async def test_a_shared_key_cannot_sign_arm(self, emulator: BatchEmulator) -> None:
        status, headers, answer = await _raw(
            emulator, "GET", _pool_path(emulator), {"Authorization": "SharedKey emulator:c2ln"}
        )
        assert status == 401
        assert headers["WWW-Authenticate"] == "Bearer"
        assert "only bearer tokens" in answer["error"]["details"][0]["message"]

    async def test_the_token_is_asked_for_the_endpoints_scope(
        self, emulator: BatchEmulator
    ) -> None:
        credential = StubTokenCredential()
        async with BatchManagementClient(
            credential,
            emulator.subscription_id,
            base_url=emulator.endpoint,
            credential_scopes=[f"{emulator.endpoint}/.default"],
            connection_verify=emulator.ca_file,
        ) as client:
            await client.pool.create(emulator.resource_group, emulator.account, "p", arm_pool())
        assert credential.scopes == [(f"{emulator.endpoint}/.default",)]

    async def test_another_subscription_is_404(self, emulator: BatchEmulator) -> None:
        path = _pool_path(emulator).replace(emulator.subscription_id, "0000")
        status, _, answer = await _raw(emulator, "GET", path, {"Authorization": "Bearer t"})
        assert (status, answer["error"]["code"]) == (404, "SubscriptionNotFound")


class TestResizeAndDelete:
    async def test_patching_fixed_scale_resizes(
        self, emulator: BatchEmulator, arm: BatchManagementClient
    ) -> None:
        group, account = emulator.resource_group, emulator.account
        await arm.pool.create(group, account, "sims", arm_pool(dedicated=1))
        emulator.advance(10)
        patch = {"properties": {"scaleSettings": {"fixedScale": {"targetDedicatedNodes": 3}}}}

        changed = await arm.pool.update(group, account, "sims", patch)

        assert changed.properties.allocation_state == "Resizing"
        emulator.advance(10)
        got = await arm.pool.get(group, account, "sims")
        assert got.properties.current_dedicated_nodes == 3
        assert emulator.pool("sims")["currentDedicatedNodes"] == 3
        assert list(got.identity.user_assigned_identities) == [IDENTITY]

    async def test_delete_is_a_long_running_operation_with_location_and_retry_after(
        self, emulator: BatchEmulator, arm: BatchManagementClient
    ) -> None:
        await arm.pool.create(emulator.resource_group, emulator.account, "sims", arm_pool())
        headers = {"Authorization": "Bearer t"}

        status, answer_headers, _ = await _raw(emulator, "DELETE", _pool_path(emulator), headers)

        assert status == 202
        assert answer_headers["Retry-After"] == "1"
        location = answer_headers["Location"].removeprefix(emulator.endpoint)
        assert (await _raw(emulator, "GET", location, headers))[0] == 202
        assert emulator.pool("sims")["state"] == "deleting"
        emulator.advance(10)
        assert (await _raw(emulator, "GET", location, headers))[0] == 200
        assert (await _raw(emulator, "DELETE", _pool_path(emulator), headers))[0] == 204

    async def test_the_sdk_polls_a_delete_to_its_end(
        self, emulator: BatchEmulator, arm: BatchManagementClient
    ) -> None:
        await arm.pool.create(emulator.resource_group, emulator.account, "sims", arm_pool())
        poller = await arm.pool.begin_delete(emulator.resource_group, emulator.account, "sims")
        emulator.advance(10)
        await poller.result()
        assert [
            p.name
            async for p in arm.pool.list_by_batch_account(emulator.resource_group, emulator.account)
        ] == []


class TestPulls:
    """The data plane pulls with the pool's identities, and only with those."""

    async def _run_one_task(self, emulator: BatchEmulator) -> dict[str, Any]:
        async with BatchClient(
            emulator.endpoint, emulator.credential(), connection_verify=emulator.ca_file
        ) as client:
            await client.create_job(job_options(pool_id="sims"))
            await client.create_task("job-1", task_options("t1", image=f"{SERVER}/sim:1"))
            emulator.advance(10)
        return emulator.task("job-1", "t1")

    async def test_a_task_pulls_through_an_identity_the_pool_has(
        self, emulator: BatchEmulator, arm: BatchManagementClient
    ) -> None:
        await arm.pool.create(emulator.resource_group, emulator.account, "sims", arm_pool())
        emulator.advance(10)

        task = await self._run_one_task(emulator)

        assert task["state"] == "running"

    async def test_a_pull_through_an_identity_the_pool_lacks_fails_the_task(
        self, emulator: BatchEmulator
    ) -> None:
        async with BatchClient(
            emulator.endpoint, emulator.credential(), connection_verify=emulator.ca_file
        ) as client:
            # the data plane accepts the reference, but cannot attach the identity
            registry = m.ContainerRegistryReference(
                registry_server=SERVER,
                identity_reference=m.BatchNodeIdentityReference(resource_id=IDENTITY),
            )
            await ready_pool(client, emulator, pool_id="sims", registries=(registry,))

        task = await self._run_one_task(emulator)

        assert task["state"] == "completed"
        failure = task["executionInfo"]["failureInfo"]
        assert failure["code"] == "ContainerMiscError"
        detail = failure["details"][0]["value"]
        assert IDENTITY in detail
        assert "not assigned to pool sims" in detail
        assert "exitCode" not in task["executionInfo"]
