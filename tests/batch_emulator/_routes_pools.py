"""Handlers for pool and node operations, keyed by the spec's operationIds."""

from __future__ import annotations

from . import _render as render
from ._errors import not_found
from ._http import Ctx, Handler, Reply, list_reply, single_reply
from ._model import Pool, key

NODE_COUNT_STATES = {
    "creating": "creating",
    "idle": "idle",
    "offline": "offline",
    "preempted": "preempted",
    "rebooting": "rebooting",
    "reimaging": "reimaging",
    "running": "running",
    "starting": "starting",
    "starttaskfailed": "startTaskFailed",
    "leavingpool": "leavingPool",
    "unknown": "unknown",
    "unusable": "unusable",
    "waitingforstarttask": "waitingForStartTask",
    "deallocated": "deallocated",
    "deallocating": "deallocating",
    "upgradingos": "upgradingOS",
}


def _pool(ctx: Ctx) -> Pool:
    return ctx.account.world.pool(ctx.path["poolId"])


def _written(ctx: Ctx, pool: Pool, status: int) -> Reply:
    return Reply(
        status,
        etag=pool.etag,
        last_modified=pool.last_modified,
        data_service_id=render.pool_url(ctx.base_url, pool.id),
    )


def list_pools(ctx: Ctx) -> Reply:
    pools = ctx.account.world.pools.values()
    return list_reply(ctx, [(p.order, render.pool(ctx.base_url, p)) for p in pools])


def create_pool(ctx: Ctx) -> Reply:
    pool = ctx.account.pools.create(ctx.body)
    return _written(ctx, pool, 201)


def get_pool(ctx: Ctx) -> Reply:
    pool = _pool(ctx)
    ctx.check_preconditions(pool.etag, pool.last_modified)
    body = render.pool(ctx.base_url, pool)
    return single_reply(ctx, body, etag=pool.etag, last_modified=pool.last_modified)


def pool_exists(ctx: Ctx) -> Reply:
    pool = ctx.account.world.pools.get(key(ctx.path["poolId"]))
    if pool is None:
        return Reply(404)
    ctx.check_preconditions(pool.etag, pool.last_modified)
    return Reply(200, etag=pool.etag, last_modified=pool.last_modified)


def update_pool(ctx: Ctx) -> Reply:
    pool = _pool(ctx)
    ctx.check_preconditions(pool.etag, pool.last_modified)
    ctx.account.pools.update(pool, ctx.body)
    return _written(ctx, pool, 200)


def delete_pool(ctx: Ctx) -> Reply:
    pool = _pool(ctx)
    ctx.check_preconditions(pool.etag, pool.last_modified)
    ctx.account.pools.delete(pool)
    return Reply(202)


def resize_pool(ctx: Ctx) -> Reply:
    pool = _pool(ctx)
    ctx.check_preconditions(pool.etag, pool.last_modified)
    ctx.account.pools.resize(pool, ctx.body)
    return _written(ctx, pool, 202)


def remove_nodes(ctx: Ctx) -> Reply:
    pool = _pool(ctx)
    ctx.check_preconditions(pool.etag, pool.last_modified)
    ctx.account.pools.remove_nodes(pool, ctx.body)
    return _written(ctx, pool, 202)


def stop_resize(ctx: Ctx) -> Reply:
    pool = _pool(ctx)
    ctx.check_preconditions(pool.etag, pool.last_modified)
    ctx.account.pools.stop_resize(pool)
    return _written(ctx, pool, 202)


def list_nodes(ctx: Ctx) -> Reply:
    pool = _pool(ctx)
    jobs = ctx.account.world.jobs
    vm_size = str(pool.spec.get("vmSize", ""))
    items = [
        (i, render.node(ctx.base_url, n, jobs, vm_size)) for i, n in enumerate(pool.nodes.values())
    ]
    return list_reply(ctx, items)


def get_node(ctx: Ctx) -> Reply:
    pool = _pool(ctx)
    node = pool.nodes.get(ctx.path["nodeId"])
    if node is None:
        raise not_found("Node", ctx.path["nodeId"])
    body = render.node(ctx.base_url, node, ctx.account.world.jobs, str(pool.spec.get("vmSize", "")))
    changed = max(node.state_since, node.allocated)
    etag = f"0x{int(changed * 10_000_000):X}{len(node.running):02X}"
    return single_reply(ctx, body, etag=etag, last_modified=changed)


#: Pools per page of node counts: the service answers them ten at a time (its REST
#: reference's limit for this listing), whatever `maxresults` asks for.
NODE_COUNTS_PAGE = 10


def list_node_counts(ctx: Ctx) -> Reply:
    items = []
    for pool in ctx.account.world.pools.values():
        counts = {}
        for dedicated, name in ((True, "dedicated"), (False, "lowPriority")):
            tally = dict.fromkeys([*NODE_COUNT_STATES.values(), "total"], 0)
            for node in pool.nodes.values():
                if node.dedicated == dedicated:
                    tally[NODE_COUNT_STATES[node.state]] += 1
                    tally["total"] += 1
            counts[name] = tally
        items.append((pool.order, {"poolId": pool.id, **counts}))
    return list_reply(ctx, items, page_size=NODE_COUNTS_PAGE)


HANDLERS: dict[str, Handler] = {
    "Pools_ListPools": list_pools,
    "Pools_CreatePool": create_pool,
    "Pools_GetPool": get_pool,
    "Pools_PoolExists": pool_exists,
    "Pools_UpdatePool": update_pool,
    "Pools_DeletePool": delete_pool,
    "Pools_ResizePool": resize_pool,
    "Pools_StopPoolResize": stop_resize,
    "Pools_RemoveNodes": remove_nodes,
    "Pools_ListPoolNodeCounts": list_node_counts,
    "Nodes_ListNodes": list_nodes,
    "Nodes_GetNode": get_node,
}
