"""One pool, two shapes: ARM's `Microsoft.Batch/batchAccounts/pools` and Batch's `BatchPool`.

Azure Resource Manager and the data plane show the same pools of an account. The
emulator keeps one `Pool` (its `spec` in the data plane's wire shape, as `_render` and
the scheduler read it) and translates ARM's bodies to and from it:

* ARM nests what the data plane has at the top level under `properties`
  (`properties.vmSize`), the VM configuration under
  `deploymentConfiguration.virtualMachineConfiguration`, the targets under
  `scaleSettings.fixedScale`; it spells `nodeAgentSkuId` where the data plane spells
  `nodeAgentSKUId`; its enums are PascalCase (`DockerCompatible`, `Pack`, `Steady`) where
  the data plane's are camelCase (`dockerCompatible`, `pack`, `steady`).
* `identity` (user-assigned managed identities) exists only in ARM's shape; the data
  plane shows it read-only (`BatchPool.identity`).
* Secrets (`x-ms-secret`: registry passwords) are never sent back.

Properties the emulator does not model (start tasks, mounts, networking, autoscale, …)
answer 501 `EmulatorNotSupported` rather than being dropped silently.
"""

from __future__ import annotations

import re
from typing import Any

from ._errors import BatchApiError, bad_property, not_supported
from ._model import Pool
from ._render import identity_ids
from ._wire import format_duration, iso

POOL_TYPE = "Microsoft.Batch/batchAccounts/pools"
#: ARM properties of a pool the emulator models; anything else is 501.
_MODELLED = frozenset(
    {
        "displayName",
        "vmSize",
        "deploymentConfiguration",
        "scaleSettings",
        "taskSlotsPerNode",
        "taskSchedulingPolicy",
        "metadata",
        "interNodeCommunication",
    }
)
_VM_MODELLED = frozenset({"imageReference", "nodeAgentSkuId", "containerConfiguration"})
_IDENTITY_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
    r"Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$",
    re.IGNORECASE,
)


def _camel(value: str) -> str:
    return value[:1].lower() + value[1:]


def _pascal(value: str) -> str:
    return value[:1].upper() + value[1:]


def identities(body: dict[str, Any]) -> tuple[str, ...] | None:
    """The user-assigned identities a body asks for; None when it does not say."""
    identity = body.get("identity")
    if identity is None:
        return None
    kind = identity.get("type")
    assigned = identity.get("userAssignedIdentities") or {}
    if kind == "None":
        if assigned:
            raise bad_property("identity", kind, "type None takes no userAssignedIdentities")
        return ()
    if not assigned:
        raise bad_property("identity", kind, "type UserAssigned needs userAssignedIdentities")
    for resource_id in assigned:
        if not _IDENTITY_ID.match(resource_id):
            raise bad_property(
                "identity.userAssignedIdentities",
                resource_id,
                "not the resource id of a user-assigned managed identity",
            )
    return tuple(assigned)


def _vm_configuration(vm: dict[str, Any]) -> dict[str, Any]:
    extra = sorted(set(vm) - _VM_MODELLED)
    if extra:
        raise not_supported(f"virtualMachineConfiguration.{extra[0]} through ARM")
    out: dict[str, Any] = {
        "imageReference": dict(vm["imageReference"]),
        "nodeAgentSKUId": vm["nodeAgentSkuId"],
    }
    container = vm.get("containerConfiguration")
    if container is not None:
        translated: dict[str, Any] = {"type": _camel(container["type"])}
        if "containerImageNames" in container:
            translated["containerImageNames"] = list(container["containerImageNames"])
        if "containerRegistries" in container:
            translated["containerRegistries"] = [dict(r) for r in container["containerRegistries"]]
        out["containerConfiguration"] = translated
    return out


def _scale(props: dict[str, Any]) -> dict[str, Any]:
    """The data plane's resize fields from `scaleSettings` (absent: a fixed 0 + 0)."""
    settings = props.get("scaleSettings") or {}
    if "autoScale" in settings:
        raise not_supported("autoscale pools")
    fixed = settings.get("fixedScale") or {}
    out = {
        "targetDedicatedNodes": fixed.get("targetDedicatedNodes", 0),
        "targetLowPriorityNodes": fixed.get("targetLowPriorityNodes", 0),
    }
    if "resizeTimeout" in fixed:
        out["resizeTimeout"] = fixed["resizeTimeout"]
    if "nodeDeallocationOption" in fixed:
        out["nodeDeallocationOption"] = fixed["nodeDeallocationOption"].lower()
    return out


def _check_modelled(props: dict[str, Any]) -> None:
    extra = sorted(set(props) - _MODELLED)
    if extra:
        raise not_supported(f"the pool property {extra[0]} through ARM")


def create_body(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The data plane's `BatchPoolCreateOptions` for an ARM `Pool` body."""
    props = body.get("properties") or {}
    _check_modelled(props)
    for required in ("vmSize", "deploymentConfiguration"):
        if required not in props:
            raise BatchApiError(
                400,
                "MissingRequiredProperty",
                "A required property was not specified in the request body.",
                {"PropertyName": f"properties.{required}"},
            )
    vm = props["deploymentConfiguration"].get("virtualMachineConfiguration")
    if vm is None:
        raise not_supported("pools without a virtualMachineConfiguration")
    out: dict[str, Any] = {
        "id": name,
        "vmSize": props["vmSize"],
        "virtualMachineConfiguration": _vm_configuration(vm),
        **_scale(props),
    }
    out.update(_plain_fields(props))
    if props.get("interNodeCommunication") == "Enabled":
        out["enableInterNodeCommunication"] = True
    return out


def _plain_fields(props: dict[str, Any]) -> dict[str, Any]:
    """The ARM pool properties that are data-plane pool fields as they are (the scheduling
    policy's fill type spelt the data plane's way), for a create and a PATCH alike."""
    fields = {f: props[f] for f in ("displayName", "taskSlotsPerNode", "metadata") if f in props}
    if "taskSchedulingPolicy" in props:
        fill = props["taskSchedulingPolicy"]["nodeFillType"]
        fields["taskSchedulingPolicy"] = {"nodeFillType": _camel(fill)}
    return fields


def update_fields(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """What an ARM PATCH changes: (data-plane pool fields, resize body or None)."""
    props = body.get("properties") or {}
    _check_modelled(props)
    fields: dict[str, Any] = {}
    if "vmSize" in props:
        fields["vmSize"] = props["vmSize"]
    if "deploymentConfiguration" in props:
        vm = props["deploymentConfiguration"].get("virtualMachineConfiguration") or {}
        fields["virtualMachineConfiguration"] = _vm_configuration(vm)
    fields.update(_plain_fields(props))
    resize = _scale(props) if "scaleSettings" in props else None
    return fields, resize


def resource_id(subscription: str, group: str, account: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
        f"Microsoft.Batch/batchAccounts/{account}/pools/{name}"
    )


def etag(pool: Pool) -> str:
    """ARM's entity tag of a pool: Batch's, quoted and weak, as Azure sends it."""
    return f'W/"{pool.etag}"'


def _arm_vm(spec: dict[str, Any]) -> dict[str, Any]:
    vm = spec.get("virtualMachineConfiguration", {})
    out: dict[str, Any] = {
        "imageReference": dict(vm.get("imageReference", {})),
        "nodeAgentSkuId": vm.get("nodeAgentSKUId", ""),
    }
    container = vm.get("containerConfiguration")
    if container is not None:
        shown: dict[str, Any] = {"type": _pascal(container.get("type", "dockerCompatible"))}
        if container.get("containerImageNames"):
            shown["containerImageNames"] = list(container["containerImageNames"])
        if container.get("containerRegistries"):
            shown["containerRegistries"] = [
                {k: v for k, v in r.items() if k != "password"}
                for r in container["containerRegistries"]
            ]
        out["containerConfiguration"] = shown
    return out


def _resize_errors(pool: Pool) -> list[dict[str, Any]]:
    return [{"code": e["code"], "message": e.get("message", e["code"])} for e in pool.resize_errors]


def render(arm_id: str, pool: Pool) -> dict[str, Any]:
    """The ARM `Pool` resource of a pool, whichever plane made it."""
    spec = pool.spec
    timeout = format_duration(pool.resize_timeout)
    fixed = {
        "targetDedicatedNodes": pool.target_dedicated,
        "targetLowPriorityNodes": pool.target_low_priority,
        "resizeTimeout": timeout,
    }
    status: dict[str, Any] = {**fixed, "startTime": iso(pool.allocation_since)}
    if pool.resize_errors and pool.allocation_state == "steady":
        status["errors"] = _resize_errors(pool)
    fill = spec.get("taskSchedulingPolicy", {}).get("nodeFillType", "spread")
    props: dict[str, Any] = {
        "lastModified": iso(pool.last_modified),
        "creationTime": iso(pool.created),
        "provisioningState": "Deleting" if pool.state == "deleting" else "Succeeded",
        "provisioningStateTransitionTime": iso(pool.state_since),
        "allocationState": _pascal(pool.allocation_state),
        "allocationStateTransitionTime": iso(pool.allocation_since),
        "vmSize": spec.get("vmSize", ""),
        "deploymentConfiguration": {"virtualMachineConfiguration": _arm_vm(spec)},
        "currentDedicatedNodes": sum(1 for n in pool.nodes.values() if n.dedicated),
        "currentLowPriorityNodes": sum(1 for n in pool.nodes.values() if not n.dedicated),
        "scaleSettings": {"fixedScale": fixed},
        "interNodeCommunication": "Enabled"
        if spec.get("enableInterNodeCommunication")
        else "Disabled",
        "taskSlotsPerNode": pool.slots_per_node,
        "taskSchedulingPolicy": {"nodeFillType": _pascal(fill)},
        "metadata": [dict(item) for item in spec.get("metadata", [])],
        "resizeOperationStatus": status,
    }
    if "displayName" in spec:
        props["displayName"] = spec["displayName"]
    body: dict[str, Any] = {
        "id": arm_id,
        "name": pool.id,
        "type": POOL_TYPE,
        "etag": etag(pool),
        "properties": props,
    }
    if pool.identities:
        body["identity"] = {
            "type": "UserAssigned",
            "userAssignedIdentities": {r: identity_ids(r) for r in pool.identities},
        }
    return body
