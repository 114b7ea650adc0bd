"""Pool writes through Azure Resource Manager, so that pools can carry managed identities.

A registry with ``identity:`` (``containerRegistries[].identityReference``) pulls with a
user-assigned managed identity, which must be attached to the pool — and the data plane
cannot attach one (``BatchPool.identity`` is read-only in BatchService.json, and a pool
create takes no identity). ARM's ``Microsoft.Batch/batchAccounts/pools`` resource can:
its ``identity`` is ``{type: UserAssigned, userAssignedIdentities: {<id>: {}}}``. So when
the account's resource id is known (``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``,
``AZURE_BATCH_ACCOUNT``), the backend's three pool writes come here
(:mod:`._poolwrites`); jobs, tasks and every read stay on the data plane.

The pool body is the data plane's (``_mapping.pool_create``: metadata, registries,
targets, everything the observation reads back) translated to ARM's shape — the same
pool, so the data plane sees it unchanged — with the identities its registries name
attached. A field with no known translation is an error, never dropped.

The client is made as the data plane's is (:mod:`._client`): no SDK retries (the daemon
owns the retry policy and the ``Retry-After`` window), bounded connect and read timeouts,
``simfleet-holder/<identity>`` in ``User-Agent``, every request counted, and the write
fence refusing writes once the lease is lost. ARM takes only tokens (a shared key cannot
sign its requests); the scope is the endpoint's ``/.default``.

Deletion is a long-running operation (202, ``Location``): it is sent without polling
(``polling=False``), like the data plane's — the next pass observes the pool deleting,
then gone, through the data-plane listing, and no pass ever waits on it. Creation and
resizing are one request each (a PUT, a PATCH of ``scaleSettings.fixedScale``). A create
sends ``If-None-Match: *`` so that it never overwrites a pool that exists (a PUT would
update it): the 412 that answers is "already there", as ``PoolExists`` is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.batch import models as m
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.mgmt.batch.aio import BatchManagementClient

from controller.backends.azure._client import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    AzureSettings,
    RequestCounter,
    WriteFence,
    pipeline_options,
)

#: What a controller must be given when ARM is configured but only a shared key is.
KEY_CANNOT_SIGN = (
    "AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP send pool writes through Azure "
    "Resource Manager, which a shared key cannot sign: unset AZURE_BATCH_ACCESS_KEY and "
    "give the controller an identity DefaultAzureCredential finds (a managed identity, "
    "az login, AZURE_CLIENT_ID/AZURE_TENANT_ID/…), or unset AZURE_SUBSCRIPTION_ID and "
    "AZURE_RESOURCE_GROUP (registries then need username + passwordFromEnv)"
)
#: Why, without ARM, a pool cannot get its registries' identities (the planner holds it).
NO_ARM = (
    "a managed identity is attached to a pool only through Azure Resource Manager: set "
    "AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP (with a token credential, not "
    "AZURE_BATCH_ACCESS_KEY), or give the registry username + passwordFromEnv"
)
_TOP_LEVEL = frozenset({"displayName", "vmSize", "taskSlotsPerNode", "metadata"})
_FIXED_SCALE = frozenset({"targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout"})
_VM_RENAMED = {"imageReference": "imageReference", "nodeAgentSKUId": "nodeAgentSkuId"}
_CONTAINER_FIELDS = frozenset({"containerImageNames", "containerRegistries"})


def _pascal(value: str) -> str:
    """ARM's spelling of a data-plane enum value: ``dockerCompatible`` → ``DockerCompatible``."""
    return value[:1].upper() + value[1:]


def _unknown(where: str, field: str) -> ValueError:
    return ValueError(f"no Azure Resource Manager translation for the pool field {where}{field}")


def _vm_configuration(vm: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in vm.items():
        if field in _VM_RENAMED:
            out[_VM_RENAMED[field]] = value
        elif field == "containerConfiguration":
            container: dict[str, Any] = {}
            for name, setting in value.items():
                if name == "type":
                    container["type"] = _pascal(setting)
                elif name in _CONTAINER_FIELDS:
                    container[name] = setting
                else:
                    raise _unknown("virtualMachineConfiguration.containerConfiguration.", name)
            out["containerConfiguration"] = container
        else:
            raise _unknown("virtualMachineConfiguration.", field)
    return out


def identities(body: Mapping[str, Any]) -> list[str]:
    """The managed identities a pool's registries name (each once, in order)."""
    vm = body.get("virtualMachineConfiguration") or {}
    registries = (vm.get("containerConfiguration") or {}).get("containerRegistries") or ()
    named = [(r.get("identityReference") or {}).get("resourceId") for r in registries]
    return list(dict.fromkeys(i for i in named if i))


def arm_pool(body: Mapping[str, Any]) -> dict[str, Any]:
    """ARM's ``Pool`` for a data-plane pool-create body (wire shape), identities attached.

    Raises:
        ValueError: the body has a field this translation does not know.
    """
    properties: dict[str, Any] = {}
    fixed: dict[str, Any] = {}
    for field, value in body.items():
        if field == "id":
            continue
        if field in _TOP_LEVEL:
            properties[field] = value
        elif field in _FIXED_SCALE:
            fixed[field] = value
        elif field == "virtualMachineConfiguration":
            properties["deploymentConfiguration"] = {
                "virtualMachineConfiguration": _vm_configuration(value)
            }
        elif field == "taskSchedulingPolicy":
            properties[field] = {"nodeFillType": _pascal(value["nodeFillType"])}
        elif field == "enableInterNodeCommunication":
            properties["interNodeCommunication"] = "Enabled" if value else "Disabled"
        else:
            raise _unknown("", field)
    properties["scaleSettings"] = {"fixedScale": fixed}
    pool: dict[str, Any] = {"properties": properties}
    attached = identities(body)
    if attached:
        pool["identity"] = {
            "type": "UserAssigned",
            "userAssignedIdentities": {i: {} for i in attached},
        }
    return pool


class ArmPools:
    """Pool writes through ``azure.mgmt.batch.aio``; satisfies :class:`._poolwrites.PoolWrites`."""

    def __init__(
        self,
        settings: AzureSettings,
        counter: RequestCounter,
        credential: Any,
        *,
        connection_verify: str | bool = True,
        identity: str = "",
        fence: WriteFence | None = None,
        timeouts: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    ) -> None:
        """Prepare the client; nothing is sent before the first write.

        Args:
            settings: the account, with its subscription and resource group.
            counter / identity / fence / timeouts / connection_verify: as the data-plane
                client's (:func:`._client.make_client`).
            credential: a token credential (its owner closes it).
        """
        if not settings.arm:
            raise ValueError("ArmPools needs the subscription and the resource group")
        self._group = str(settings.resource_group)
        self._account = settings.account
        self._client = BatchManagementClient(
            credential,
            str(settings.subscription),
            base_url=settings.arm_endpoint,
            credential_scopes=[f"{settings.arm_endpoint}/.default"],
            **pipeline_options(
                counter,
                connection_verify=connection_verify,
                identity=identity,
                fence=fence,
                timeouts=timeouts,
            ),
        )

    async def create(self, body: m.BatchPoolCreateOptions) -> None:
        wire = body.as_dict()
        try:
            await self._client.pool.create(
                self._group,
                self._account,
                wire["id"],
                arm_pool(wire),
                match_condition=MatchConditions.IfMissing,
            )
        except HttpResponseError as exc:
            if exc.status_code != 412:  # If-None-Match: * met a pool: it is already there
                raise

    async def resize(self, name: str, dedicated: int, spot: int) -> None:
        fixed = {"targetDedicatedNodes": dedicated, "targetLowPriorityNodes": spot}
        body = {"properties": {"scaleSettings": {"fixedScale": fixed}}}
        await self._client.pool.update(self._group, self._account, name, body)

    async def delete(self, name: str) -> None:
        await self._client.pool.begin_delete(self._group, self._account, name, polling=False)

    async def close(self) -> None:
        await self._client.close()
