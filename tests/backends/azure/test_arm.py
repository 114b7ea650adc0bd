"""Pools through Azure Resource Manager: registries with ``identity:``, end to end.

The real azure-mgmt-batch and azure-batch SDKs over https against the emulator, whose
ARM endpoints conform to BatchManagement.json and data plane to BatchService.json (the
fixture fails a test on any violation, either way).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
import pytest_asyncio
from azure.core.credentials import AccessToken
from pydantic import SecretStr

from controller.backends import (
    LeaseLostError,
    LeaseTimings,
    PermanentBackendError,
    TransientBackendError,
    UnreachableBackendError,
)
from controller.backends.azure import AzureBackend, AzureLease, AzureSettings
from controller.backends.azure._arm import arm_pool
from controller.backends.azure._mapping import pool_create
from controller.planner import CreatePool, DeletePool, Desired, PoolPhase, ShrinkPool
from controller.reconcile import run_pass
from tests.batch_emulator._emulator import BatchEmulator
from tests.batch_emulator._faults import Fault
from tests.batch_emulator.fixtures import EmulatorFactory
from tests.planner.conftest import pool_spec, simulation

from .conftest import clock_of, settings_for

IDENTITY = (
    "/subscriptions/5f1e0c0a-5e1f-4e1e-9a1e-0000000000e1/resourceGroups/simfleet-emulator/"
    "providers/Microsoft.ManagedIdentity/userAssignedIdentities/acr-pull"
)
ACR = "myacr.azurecr.io"
BY_IDENTITY = [{"server": ACR, "identity": IDENTITY}]
BY_PASSWORD = [{"server": ACR, "username": "puller", "passwordFromEnv": "ACR_PASSWORD"}]
ARM_POOL = (
    "PUT /subscriptions/{id}/resourceGroups/{id}/providers/Microsoft.Batch/"
    "batchAccounts/{id}/pools/{id}"
)


class RecordingToken:
    """An AsyncTokenCredential standing in for DefaultAzureCredential; notes the scopes."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("emulator-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


def arm_settings(emulator: BatchEmulator) -> AzureSettings:
    """The account as the environment would give it with ARM: no key, its resource id."""
    return AzureSettings(
        emulator.endpoint,
        emulator.account,
        None,
        subscription=emulator.subscription_id,
        resource_group=emulator.resource_group,
        arm_endpoint=emulator.endpoint,
    )


def fleet(registries: list[dict[str, Any]], *, simulators: int = 2) -> Desired:
    sim = simulation(simulators=simulators, image=f"{ACR}/cartpole:1.0")
    spec = pool_spec(taskSlotsPerNode=1, registries=registries)
    passwords = {ACR: SecretStr("hunter2")} if registries == BY_PASSWORD else {}
    return Desired(pools={"sims": spec}, simulations={sim.name: sim}, registry_passwords=passwords)


async def converge(backend: AzureBackend, want: Desired, emulator: BatchEmulator) -> Any:
    result = None
    for _ in range(12):
        result = await run_pass(want, backend, clock_of(emulator))
        if not result.plan.actions and all(s.ready == s.desired for s in result.status.simulations):
            return result
        emulator.advance(5)
    raise AssertionError(f"not converged: {result.status if result else None}")


def sent(emulator: BatchEmulator, *operations: str) -> dict[str, int]:
    return {op: emulator.counters.count(op) for op in operations}


@pytest_asyncio.fixture
async def emulator(make_batch_emulator: EmulatorFactory) -> BatchEmulator:
    return await make_batch_emulator(
        https=True, allocation_delay=5.0, node_start_delay=1.0, request_log=True
    )


@pytest_asyncio.fixture
async def token() -> RecordingToken:
    return RecordingToken()


@pytest_asyncio.fixture
async def backend(emulator: BatchEmulator, token: RecordingToken) -> Any:
    azure = AzureBackend(
        arm_settings(emulator), credential=token, connection_verify=emulator.ca_file
    )
    yield azure
    await azure.close()


class TestSettings:
    def test_the_arm_variables_place_the_account_in_resource_manager(self) -> None:
        settings = AzureSettings.from_environ(
            {
                "AZURE_BATCH_ENDPOINT": "acct.westeurope.batch.azure.com",
                "AZURE_BATCH_ACCOUNT": "acct",
                "AZURE_SUBSCRIPTION_ID": "sub",
                "AZURE_RESOURCE_GROUP": "rg",
            }
        )
        assert settings.arm
        assert settings.arm_endpoint == "https://management.azure.com"
        assert "arm=sub/rg" in repr(settings)

    def test_the_arm_endpoint_can_be_overridden_as_az_prints_hosts(self) -> None:
        settings = AzureSettings.from_environ(
            {
                "AZURE_BATCH_ENDPOINT": "https://acct.westeurope.batch.azure.com",
                "AZURE_BATCH_ACCOUNT": "acct",
                "AZURE_SUBSCRIPTION_ID": "sub",
                "AZURE_RESOURCE_GROUP": "rg",
                "SIMFLEET_ARM_ENDPOINT": "127.0.0.1:8443/",
            }
        )
        assert settings.arm_endpoint == "https://127.0.0.1:8443"

    def test_without_them_pools_stay_on_the_data_plane(self) -> None:
        settings = AzureSettings.from_environ(
            {"AZURE_BATCH_ENDPOINT": "https://a.b", "AZURE_BATCH_ACCOUNT": "a"}
        )
        assert not settings.arm

    @pytest.mark.parametrize(
        ("given", "missing"),
        [
            ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP"),
            ("AZURE_RESOURCE_GROUP", "AZURE_SUBSCRIPTION_ID"),
        ],
    )
    def test_one_of_the_two_alone_is_an_error_naming_the_other(
        self, given: str, missing: str
    ) -> None:
        environ = {"AZURE_BATCH_ENDPOINT": "https://a.b", "AZURE_BATCH_ACCOUNT": "a", given: "x"}
        with pytest.raises(PermanentBackendError, match=f"{given} is set but {missing} is not"):
            AzureSettings.from_environ(environ)

    def test_arm_with_only_a_shared_key_fails_at_once_saying_what_to_set(self) -> None:
        settings = AzureSettings(
            "https://a.b", "a", "a2V5", subscription="sub", resource_group="rg"
        )
        with pytest.raises(PermanentBackendError) as refused:
            AzureBackend(settings)
        assert refused.value.code == "MissingConfiguration"
        assert "unset AZURE_BATCH_ACCESS_KEY" in str(refused.value)
        assert "\n" not in str(refused.value)


class TestTranslation:
    def test_the_arm_pool_is_the_data_plane_pool_with_its_identities(self) -> None:
        action = CreatePool("sims", pool_spec(registries=BY_IDENTITY), 2, 1)
        wire = pool_create(action, "blue").as_dict()

        pool = arm_pool(wire)

        assert pool["identity"] == {
            "type": "UserAssigned",
            "userAssignedIdentities": {IDENTITY: {}},
        }
        props = pool["properties"]
        assert props["metadata"] == wire["metadata"]
        assert props["scaleSettings"] == {
            "fixedScale": {"targetDedicatedNodes": 2, "targetLowPriorityNodes": 1}
        }
        vm = props["deploymentConfiguration"]["virtualMachineConfiguration"]
        assert vm["nodeAgentSkuId"] == wire["virtualMachineConfiguration"]["nodeAgentSKUId"]
        assert vm["containerConfiguration"]["type"] == "DockerCompatible"
        registry = vm["containerConfiguration"]["containerRegistries"][0]
        assert registry == {"registryServer": ACR, "identityReference": {"resourceId": IDENTITY}}

    def test_a_field_without_a_translation_is_an_error_not_dropped(self) -> None:
        wire = pool_create(CreatePool("sims", pool_spec(), 1, 0), "blue").as_dict()
        wire["startTask"] = {"commandLine": "true"}
        with pytest.raises(ValueError, match="startTask"):
            arm_pool(wire)


class TestEndToEnd:
    async def test_a_registry_with_identity_works_through_arm(
        self, backend: AzureBackend, emulator: BatchEmulator, token: RecordingToken
    ) -> None:
        result = await converge(backend, fleet(BY_IDENTITY), emulator)

        assert result.status.simulations[0].ready == 2
        assert sent(emulator, "Pool_Create", "Pools_CreatePool") == {
            "Pool_Create": 1,
            "Pools_CreatePool": 0,
        }
        pool = emulator.pool("sims")
        assert [i["resourceId"] for i in pool["identity"]["userAssignedIdentities"]] == [IDENTITY]
        meta = {item["name"]: item["value"] for item in pool["metadata"]}
        assert meta["simfleet-managed"] == "true"
        assert meta["simfleet-fleet"] == "default"
        assert IDENTITY in meta["simfleet-registries"]
        observed = (await backend.observe()).pools["sims"]
        assert observed.owned
        assert not result.status.pools[0].message  # no "needs replacement"
        assert (f"{emulator.endpoint}/.default",) in token.scopes  # ARM's scope
        assert backend.request_counts()[(ARM_POOL, "200")] == 1

    async def test_resize_and_delete_go_through_arm_and_a_delete_is_never_waited_on(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, fleet(BY_IDENTITY, simulators=1), emulator)

        await converge(backend, fleet(BY_IDENTITY, simulators=3), emulator)
        await backend.execute(DeletePool("sims"))

        assert sent(emulator, "Pool_Update", "Pools_ResizePool", "Pool_Delete") == {
            "Pool_Update": 1,
            "Pools_ResizePool": 0,
            "Pool_Delete": 1,
        }
        assert emulator.counters.count("PoolOperationResults_Get") == 0
        assert emulator.pool("sims")["state"] == "deleting"
        emulator.advance(10)
        assert "sims" not in (await backend.observe()).pools

    async def test_a_shrink_removes_idle_nodes_on_the_data_plane_and_lowers_through_arm(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, fleet(BY_IDENTITY, simulators=1), emulator)  # 1 + 1 surge
        assert emulator.pool("sims")["taskSchedulingPolicy"] == {"nodeFillType": "pack"}
        await backend.execute(ShrinkPool("sims", 1, 0, 2, 0, 2, 0))
        emulator.advance(5)
        await backend.execute(ShrinkPool("sims", 1, 0, 1, 0, 1, 0))  # nothing above: lowered
        assert sent(emulator, "Pools_RemoveNodes", "Pool_Update", "Pools_ResizePool") == {
            "Pools_RemoveNodes": 1,
            "Pool_Update": 1,
            "Pools_ResizePool": 0,
        }
        assert emulator.requeued == {}

    async def test_a_password_registry_works_through_arm_too(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        result = await converge(backend, fleet(BY_PASSWORD), emulator)

        assert result.status.simulations[0].ready == 2
        assert "identity" not in emulator.pool("sims")

    async def test_arm_writes_are_fenced_named_and_counted(
        self, emulator: BatchEmulator, token: RecordingToken
    ) -> None:
        timings = LeaseTimings(duration=15, renew_deadline=10, retry_period=2)
        lease = AzureLease(
            settings_for(emulator),
            fleet="default",
            identity="host-a",
            timings=timings,
            connection_verify=emulator.ca_file,
        )
        backend = AzureBackend(
            arm_settings(emulator),
            credential=token,
            connection_verify=emulator.ca_file,
            lease=lease,
        )
        create = CreatePool("sims", pool_spec(registries=BY_IDENTITY), 1, 0)
        try:
            with pytest.raises(LeaseLostError):
                await backend.execute(create)  # the lease was never held
            assert backend.request_counts()[(ARM_POOL, "fenced")] == 1
            assert emulator.counters.count("Pool_Create") == 0

            await lease.round()
            await backend.execute(create)
        finally:
            await backend.close()
            await lease.close()
        agents = [r.user_agent for r in emulator.requests.writes(path_prefix="/subscriptions/")]
        assert agents
        assert all("simfleet-holder/host-a" in a for a in agents)

    async def test_arm_obeys_retry_after_and_shares_the_window(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        emulator.faults.inject(Fault.throttle(retry_after=30), operations={"Pool_Create"})
        create = CreatePool("sims", pool_spec(registries=BY_IDENTITY), 1, 0)

        with pytest.raises(TransientBackendError) as throttled:
            await backend.execute(create)
        assert throttled.value.retry_after == 30
        with pytest.raises(TransientBackendError, match="waiting out Retry-After"):
            await backend.execute(create)
        with pytest.raises(TransientBackendError, match="waiting out Retry-After"):
            await backend.observe()  # the data plane waits the window out too
        assert emulator.counters.count("Pool_Create") == 1

    async def test_arm_requests_have_bounded_timeouts(
        self, emulator: BatchEmulator, token: RecordingToken
    ) -> None:
        emulator.faults.latency = 3.0
        emulator.faults.latency_operations = frozenset({"Pool_Create"})
        backend = AzureBackend(
            arm_settings(emulator),
            credential=token,
            connection_verify=emulator.ca_file,
            timeouts=(5.0, 0.2),
        )
        try:
            with pytest.raises(UnreachableBackendError) as unanswered:
                await backend.execute(CreatePool("sims", pool_spec(registries=BY_IDENTITY), 1, 0))
            assert unanswered.value.code == "Timeout"
        finally:
            await backend.close()


class TestWithoutArm:
    async def test_identity_is_held_with_what_to_set_and_nothing_is_sent(
        self, emulator: BatchEmulator, token: RecordingToken
    ) -> None:
        settings = AzureSettings(emulator.endpoint, emulator.account, emulator.key)
        backend = AzureBackend(settings, connection_verify=emulator.ca_file)
        try:
            result = await run_pass(fleet(BY_IDENTITY), backend, clock_of(emulator))
        finally:
            await backend.close()

        pool = result.status.pools[0]
        assert pool.state is PoolPhase.HELD
        assert "set AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP" in pool.message
        assert "username + passwordFromEnv" in pool.message
        assert "pool sims is not created" in result.status.simulations[0].message
        assert not result.plan.actions
        writes = Counter(r.operation for r in emulator.requests.writes())
        assert writes == Counter()

    async def test_a_password_registry_still_works_on_the_data_plane(
        self, emulator: BatchEmulator
    ) -> None:
        settings = AzureSettings(emulator.endpoint, emulator.account, emulator.key)
        backend = AzureBackend(settings, connection_verify=emulator.ca_file)
        try:
            result = await converge(backend, fleet(BY_PASSWORD), emulator)
        finally:
            await backend.close()

        assert result.status.simulations[0].ready == 2
        assert sent(emulator, "Pools_CreatePool", "Pool_Create") == {
            "Pools_CreatePool": 1,
            "Pool_Create": 0,
        }
