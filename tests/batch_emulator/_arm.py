"""Azure Resource Manager's pool endpoints, on the same server and the same account.

`Microsoft.Batch/batchAccounts/pools` as BatchManagement.json (`spec/`, api-version
2025-06-01, what azure-mgmt-batch 19 sends) declares it: PUT creates (or, on an existing
pool, updates), PATCH updates — a changed `scaleSettings.fixedScale` resizes — GET reads,
DELETE deletes as a long-running operation, and the list lists. A pool made here is the
same pool the data plane lists (translation in :mod:`._armpools`), with its managed
identities, which only ARM can set.

The front is the data plane's pipeline (:class:`._app.EmulatorApp`: routing by the spec,
faults, counters, conformance checks) with ARM's differences:

* only bearer tokens, over https (:func:`._auth.authenticate_arm`);
* errors are ARM's `CloudError` (`{"error": {"code", "message", "details"}}`);
* the subscription, resource group and account in the path must be the emulator's
  (`EmulatorConfig.subscription_id`, `resource_group`, `account`), else 404;
* `If-None-Match: *` on PUT refuses to touch an existing pool (412 `ConditionNotMet`),
  `If-Match` compares ARM's weak ETag (`W/"0x…"`);
* DELETE answers 202 with `Location` and `Retry-After` (`EmulatorConfig.arm_retry_after`
  seconds), 204 when there is no such pool. The `Location` URL is ARM's generic
  operation-status resource, which BatchManagement.json does not list: the emulator
  adds it to its copy of the spec as `PoolOperationResults_Get` (202 with the same
  headers while the pool is being deleted, 200 once it is gone), so it is routed,
  counted and checked like the rest.

Not modelled (501 `EmulatorNotSupported`): `$filter`, `$select` and `maxresults` on the
list; the pool properties :mod:`._armpools` names.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from . import _armpools as armpools
from ._app import EmulatorApp
from ._auth import authenticate_arm
from ._config import ARM_API_VERSION
from ._errors import BatchApiError, conflict, not_supported
from ._http import Ctx, Handler, Reply
from ._model import Pool, key
from ._spec import Spec

ARM_SPEC = Path(__file__).resolve().parent / "spec" / "BatchManagement.json"
ARM_CONTENT_TYPE = "application/json; charset=utf-8"
OPERATION_RESULTS = (
    "/subscriptions/{subscriptionId}/providers/Microsoft.Batch/locations/{locationName}"
    "/poolOperationResults/{operationId}"
)
_LRO_HEADERS = {"Location": {"type": "string"}, "Retry-After": {"type": "integer"}}


@functools.lru_cache(maxsize=1)
def arm_spec() -> Spec:
    """BatchManagement.json plus ARM's operation-status resource (see the module doc)."""
    with open(ARM_SPEC, encoding="utf-8") as handle:
        document = json.load(handle)
    document = copy.deepcopy(document)
    document["paths"][OPERATION_RESULTS] = {
        "get": {
            "operationId": "PoolOperationResults_Get",
            "parameters": [
                {"$ref": "#/parameters/SubscriptionIdParameter"},
                {"name": "locationName", "in": "path", "required": True, "type": "string"},
                {"name": "operationId", "in": "path", "required": True, "type": "string"},
                {"$ref": "#/parameters/ApiVersionParameter"},
            ],
            "responses": {
                "200": {"description": "The operation finished."},
                "202": {"description": "The operation is running.", "headers": _LRO_HEADERS},
                "default": {
                    "description": "Error response.",
                    "schema": {"$ref": "#/definitions/CloudError"},
                },
            },
        }
    }
    return Spec(document)


# --------------------------------------------------------------------------- the handlers


def _check_account(ctx: Ctx) -> None:
    """404 unless the path names the emulator's subscription, group and account."""
    config = ctx.account.config
    subscription = ctx.path["subscriptionId"]
    if subscription.lower() != config.subscription_id.lower():
        raise BatchApiError(
            404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found."
        )
    group = ctx.path.get("resourceGroupName")
    if group is not None and group.lower() != config.resource_group.lower():
        raise BatchApiError(
            404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found."
        )
    account = ctx.path.get("accountName")
    if account is not None and account.lower() != config.account.lower():
        raise BatchApiError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.Batch/batchAccounts/{account}' under resource group "
            f"'{group}' was not found.",
        )


def _unquoted(tag: str) -> str:
    return tag.strip().removeprefix("W/").strip('"')


def _check_conditions(ctx: Ctx, pool: Pool | None) -> None:
    """`If-None-Match: *` (create only) and `If-Match` (this version, or `*`: any)."""
    unmet = BatchApiError(412, "ConditionNotMet", "The condition specified was not met.")
    if ctx.headers.get("If-None-Match", "").strip() == "*" and pool is not None:
        raise unmet
    wanted = ctx.headers.get("If-Match")
    if wanted is None:
        return
    if pool is None:
        raise unmet
    tags = [_unquoted(t) for t in wanted.split(",")]
    if "*" not in tags and pool.etag not in tags:
        raise unmet


def _arm_id(ctx: Ctx, pool: Pool) -> str:
    config = ctx.account.config
    return armpools.resource_id(
        config.subscription_id, config.resource_group, config.account, pool.id
    )


def _pool_reply(ctx: Ctx, pool: Pool) -> Reply:
    return Reply(200, armpools.render(_arm_id(ctx, pool), pool), etag=armpools.etag(pool))


def _apply(ctx: Ctx, pool: Pool, body: dict[str, Any]) -> None:
    """Change an existing pool as a PUT or PATCH asks (fields, identity, size)."""
    if pool.state == "deleting":
        raise conflict(
            "PoolBeingDeleted",
            "The specified pool has been marked for deletion and is being reclaimed.",
        )
    fields, resize = armpools.update_fields(body)
    if fields:
        ctx.account.pools.update(pool, fields)
    chosen = armpools.identities(body)
    if chosen is not None and chosen != pool.identities:
        pool.identities = chosen
        pool.touch(ctx.now)
    wanted = (
        None
        if resize is None
        else (resize["targetDedicatedNodes"], resize["targetLowPriorityNodes"])
    )
    if resize is not None and wanted != (pool.target_dedicated, pool.target_low_priority):
        ctx.account.pools.resize(pool, resize)


def create_pool(ctx: Ctx) -> Reply:
    _check_account(ctx)
    name = ctx.path["poolName"]
    existing = ctx.account.world.pools.get(key(name))
    _check_conditions(ctx, existing)
    if existing is not None:
        _apply(ctx, existing, ctx.body)
        return _pool_reply(ctx, existing)
    chosen = armpools.identities(ctx.body)
    pool = ctx.account.pools.create(armpools.create_body(name, ctx.body))
    pool.identities = chosen or ()
    return _pool_reply(ctx, pool)


def update_pool(ctx: Ctx) -> Reply:
    _check_account(ctx)
    pool = ctx.account.world.pool(ctx.path["poolName"])
    _check_conditions(ctx, pool)
    _apply(ctx, pool, ctx.body)
    return _pool_reply(ctx, pool)


def get_pool(ctx: Ctx) -> Reply:
    _check_account(ctx)
    return _pool_reply(ctx, ctx.account.world.pool(ctx.path["poolName"]))


def _status_location(ctx: Ctx, name: str) -> dict[str, str]:
    config = ctx.account.config
    url = (
        f"{ctx.base_url}/subscriptions/{config.subscription_id}/providers/Microsoft.Batch"
        f"/locations/{config.location}/poolOperationResults/delete.{name}"
        f"?api-version={ARM_API_VERSION}"
    )
    return {"Location": url, "Retry-After": str(config.arm_retry_after)}


def delete_pool(ctx: Ctx) -> Reply:
    _check_account(ctx)
    pool = ctx.account.world.pools.get(key(ctx.path["poolName"]))
    if pool is None:
        return Reply(204)
    if pool.state != "deleting":
        ctx.account.pools.delete(pool)
    return Reply(202, headers=_status_location(ctx, pool.id))


def operation_result(ctx: Ctx) -> Reply:
    _check_account(ctx)
    kind, _, name = ctx.path["operationId"].partition(".")
    if kind != "delete" or not name:
        raise BatchApiError(404, "OperationNotFound", "The operation was not found.")
    pool = ctx.account.world.pools.get(key(name))
    if pool is not None and pool.state == "deleting":
        return Reply(202, headers=_status_location(ctx, pool.id))
    return Reply(200)


def list_pools(ctx: Ctx) -> Reply:
    _check_account(ctx)
    asked = sorted(q for q in ("$filter", "$select", "maxresults") if q in ctx.query)
    if asked:
        raise not_supported(f"{asked[0]} on the ARM pool list")
    pools = sorted(ctx.account.world.pools.values(), key=lambda p: p.order)
    return Reply(200, {"value": [armpools.render(_arm_id(ctx, p), p) for p in pools]})


HANDLERS: dict[str, Handler] = {
    "Pool_Create": create_pool,
    "Pool_Update": update_pool,
    "Pool_Get": get_pool,
    "Pool_Delete": delete_pool,
    "Pool_ListByBatchAccount": list_pools,
    "PoolOperationResults_Get": operation_result,
}


class ArmApp(EmulatorApp):
    """The ARM front: the data plane's pipeline with ARM's auth, errors and handlers."""

    handlers = HANDLERS
    api_version = ARM_API_VERSION
    content_type = ARM_CONTENT_TYPE

    def route(self, app: web.Application) -> None:
        """Serve ARM's URL space (before the data plane's catch-all)."""
        app.router.add_route("*", "/subscriptions/{tail:.*}", self.handle)

    def error_body(self, error: BatchApiError, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.values:
            body["details"] = [{"code": k, "message": v} for k, v in error.values.items()]
        return {"error": body}

    def authenticate(self, request: web.Request, raw_path: str, raw_query: str) -> None:
        authenticate_arm(
            headers=request.headers,
            secure=request.secure,
            bearer_token=self.account.config.bearer_token,
        )
