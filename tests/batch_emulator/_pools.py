"""Pools and their nodes: creation, resizing with delays and quotas, deletion, preemption.

A resize (including the one implied by creating a pool with targets) puts the pool in
`resizing`. New nodes appear at once in `creating`; after `allocation_delay` the pool is
`steady` and they are `starting`; after `node_start_delay` more they are `idle` and take
tasks. If the account's core quota cannot cover the target, the pool allocates what fits
and reports `AccountCoreQuotaReached` in `resizeErrors` once steady.

Shrinking by a resize down lets the service pick the nodes, as Batch does: nodes that
cannot run anything yet (still allocating or booting, preempted) go first, then the most
recently allocated, busy or not (ties by id, highest first) — never idle ones by
preference, so a resize down takes running tasks away while idle nodes stay. `removenodes`
(`Pools_RemoveNodes`) removes exactly the named nodes (at most 100 per request, only
while the pool is steady, like a resize) and lowers the target of each node's kind by
one. Either way tasks on removed nodes are treated by `nodeDeallocationOption`
(`requeue` by default, `terminate`, or `taskcompletion`/`retaineddata`, which wait), and
every task a removal sends back to the queue is counted by cause in `Pools.requeued`
(`resize`, `removenodes`, `preemption`, `unusable`, `deletion`).

Deleting a pool is asynchronous: the pool is `deleting` for `deletion_delay`, its running
tasks go back to the queue, and creating a pool with the same id answers 409
`PoolBeingDeleted` meanwhile.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from typing import Any

from ._behaviour import task_ended
from ._config import cores_of
from ._errors import BatchApiError, bad_property, check_id, conflict, not_supported
from ._health import start_task
from ._model import Node, Pool, key
from ._wire import parse_duration
from ._world import World

MIN_RESIZE_TIMEOUT = 300.0
MAX_REMOVED_NODES = 100  # "A maximum of 100 nodes may be removed per request."
# Nodes a resize down takes first: they run nothing yet.
NOT_YET_USABLE = ("creating", "starting", "preempted", "unusable", "starttaskfailed")
# Changing these needs a pool without nodes (Batch answers 409 otherwise).
NODE_BOUND_FIELDS = ("vmSize", "virtualMachineConfiguration", "taskSlotsPerNode")


class Pools:
    def __init__(self, world: World) -> None:
        self.world = world
        world.node_freed = self._node_freed
        self.requeued: Counter[str] = Counter()  # tasks a removal sent back, by cause

    # -- REST operations ----------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> Pool:
        w = self.world
        pool_id = str(body["id"])
        check_id(pool_id)
        existing = w.pools.get(key(pool_id))
        if existing is not None:
            self._check_not_deleting(existing)
            raise conflict("PoolExists", "The specified pool already exists.")
        if len(w.pools) >= w.config.pool_quota:
            raise conflict("PoolQuotaReached", "Pool quota for the account has been reached.")
        if body.get("enableAutoScale"):
            raise not_supported("autoscale pools")
        if "virtualMachineConfiguration" not in body:
            raise BatchApiError(
                400,
                "MissingRequiredProperty",
                "A required property was not specified in the request body.",
                {"PropertyName": "virtualMachineConfiguration"},
            )
        slots = int(body.get("taskSlotsPerNode", 1))
        if not 1 <= slots <= 256:
            raise bad_property("taskSlotsPerNode", slots, "must be between 1 and 256")
        now = w.now
        pool = Pool(created=now, id=pool_id, spec=dict(body), state_since=now, allocation_since=now)
        pool.resize_timeout = self._resize_timeout(body)
        w.pools[key(pool_id)] = pool
        dedicated, low = self._targets(body)
        if dedicated or low:
            self._begin_resize(pool, dedicated, low, "requeue")
        return pool

    def update(self, pool: Pool, body: dict[str, Any]) -> None:
        self._check_not_deleting(pool)
        changing = [f for f in NODE_BOUND_FIELDS if f in body and body[f] != pool.spec.get(f)]
        if changing and pool.nodes:
            raise conflict(
                "OperationInvalidForCurrentState",
                f"{', '.join(changing)} can only be changed on a pool without nodes.",
            )
        pool.spec.update(body)
        pool.touch(self.world.now)

    def resize(self, pool: Pool, body: dict[str, Any]) -> None:
        self._check_not_deleting(pool)
        if pool.allocation_state != "steady":
            raise conflict("PoolBeingResized", "The specified pool is being resized.")
        dedicated, low = self._targets(body)
        if "resizeTimeout" in body:
            pool.resize_timeout = self._resize_timeout(body)
        option = str(body.get("nodeDeallocationOption", "requeue"))
        self._begin_resize(pool, dedicated, low, option)

    def remove_nodes(self, pool: Pool, body: dict[str, Any]) -> None:
        """Remove exactly the named nodes; each one's kind loses one from its target."""
        self._check_not_deleting(pool)
        if pool.allocation_state != "steady":
            raise conflict("PoolBeingResized", "The specified pool is being resized.")
        ids = list(dict.fromkeys(str(i) for i in body["nodeList"]))
        if not ids or len(ids) > MAX_REMOVED_NODES:
            raise bad_property(
                "nodeList", len(ids), f"between 1 and {MAX_REMOVED_NODES} nodes per request"
            )
        unknown = [i for i in ids if i not in pool.nodes or pool.nodes[i].leaving]
        if unknown:
            raise BatchApiError(
                404, "NodeNotFound", "The specified node does not exist.", {"NodeId": unknown[0]}
            )
        if "resizeTimeout" in body:
            pool.resize_timeout = self._resize_timeout(body)
        option = str(body.get("nodeDeallocationOption", "requeue"))
        w = self.world
        pool.resize_errors, pool.pending_errors = [], []
        pool.allocation_state, pool.allocation_since = "resizing", w.now
        for node_id in ids:
            node = pool.nodes[node_id]
            if node.dedicated:
                pool.target_dedicated -= 1
            else:
                pool.target_low_priority -= 1
            self._remove(node, option, "removenodes")
        pool.touch(w.now)
        pool.event = w.timeline.after(
            w.config.allocation_delay, lambda: self._finish_resize(pool, timed_out=False)
        )

    def stop_resize(self, pool: Pool) -> None:
        self._check_not_deleting(pool)
        if pool.allocation_state != "resizing":
            return
        if pool.event is not None:
            pool.event.cancel()
        now = self.world.now
        pool.allocation_state, pool.allocation_since = "stopping", now
        pool.touch(now)
        pool.event = self.world.timeline.after(
            self.world.config.stop_resize_delay, lambda: self._finish_stop(pool)
        )

    def delete(self, pool: Pool) -> None:
        self._check_not_deleting(pool)
        w = self.world
        if pool.event is not None:
            pool.event.cancel()
        pool.draining = False
        pool.state, pool.state_since = "deleting", w.now
        pool.touch(w.now)
        for node in list(pool.nodes.values()):
            self._evict(node, "requeue", "deletion")
            node.leaving = True
            node.set_state("leavingpool", w.now)
        pool.event = w.timeline.after(w.config.deletion_delay, lambda: self._gone(pool))

    # -- test controls ------------------------------------------------------------------

    def preempt(self, pool_id: str, node_ids: list[str] | None, count: int | None) -> list[str]:
        """Evict Spot nodes: their tasks go back to the queue (`requeueCount` unchanged)."""
        w = self.world
        pool = w.pool(pool_id)
        spot = [n for n in pool.nodes.values() if not n.dedicated and n.state != "preempted"]
        if node_ids is not None:
            unknown = set(node_ids) - {n.id for n in spot}
            if unknown:
                raise ValueError(f"not preemptible Spot nodes of {pool_id}: {sorted(unknown)}")
            spot = [n for n in spot if n.id in node_ids]
        chosen = spot if count is None else spot[:count]
        for node in chosen:
            self._evict(node, "requeue", "preemption", by_user=False)  # not in requeueCount
            if node.event is not None:
                node.event.cancel()
            node.set_state("preempted", w.now)
            delay = w.config.preemption_recovery_delay
            if delay is not None:
                node.event = w.timeline.after(delay, functools.partial(self._boot, node))
        pool.touch(w.now)
        return [n.id for n in chosen]

    def recover(self, pool_id: str, node_id: str) -> None:
        """Boot a preempted, unusable or start-task-failed node again, its errors gone."""
        node = self.world.pool(pool_id).nodes[node_id]
        if node.state in ("preempted", "unusable", "starttaskfailed"):
            node.errors, node.start_task_info = [], None
            self._boot(node)

    def make_unusable(
        self,
        pool_id: str,
        errors: list[dict[str, Any]],
        node_ids: list[str] | None = None,
        count: int | None = None,
    ) -> list[str]:
        """An infrastructure fault: nodes turn `unusable` with `errors` (BatchNodeError
        bodies); their running tasks go back to the queue."""
        w = self.world
        pool = w.pool(pool_id)
        chosen = self._chosen(pool, node_ids, count)
        for node in chosen:
            self._evict(node, "requeue", "unusable", by_user=False)  # the service's doing
            if node.event is not None:
                node.event.cancel()
                node.event = None
            node.errors = [dict(e) for e in errors]
            node.set_state("unusable", w.now)
        pool.touch(w.now)
        return [n.id for n in chosen]

    def fail_start_tasks(self, pool_id: str, exit_code: int) -> None:
        """From now on the pool's start task exits with `exit_code` (0: succeeds again).

        Raises:
            ValueError: the pool has no start task that nodes wait for: on Batch its
                nodes can never be `starttaskfailed`.
        """
        pool = self.world.pool(pool_id)
        if start_task(pool) is None:
            raise ValueError(f"pool {pool_id} has no startTask with waitForSuccess")
        if exit_code:
            self.world.health.failing_start_tasks[key(pool.id)] = exit_code
        else:
            self.world.health.failing_start_tasks.pop(key(pool.id), None)

    @staticmethod
    def _chosen(pool: Pool, node_ids: list[str] | None, count: int | None) -> list[Node]:
        nodes = [n for n in pool.nodes.values() if not n.leaving]
        if node_ids is not None:
            unknown = set(node_ids) - {n.id for n in nodes}
            if unknown:
                raise ValueError(f"not nodes of {pool.id}: {sorted(unknown)}")
            nodes = [n for n in nodes if n.id in node_ids]
        return nodes if count is None else nodes[:count]

    # -- allocation mechanics -----------------------------------------------------------

    @staticmethod
    def _targets(body: dict[str, Any]) -> tuple[int, int]:
        # An omitted target means 0 (the documented default), not "unchanged".
        dedicated = int(body.get("targetDedicatedNodes", 0))
        low = int(body.get("targetLowPriorityNodes", 0))
        for name, value in (("targetDedicatedNodes", dedicated), ("targetLowPriorityNodes", low)):
            if value < 0:
                raise bad_property(name, value, "must not be negative")
        return dedicated, low

    @staticmethod
    def _resize_timeout(body: dict[str, Any]) -> float:
        raw = body.get("resizeTimeout")
        if raw is None:
            return 900.0
        seconds = parse_duration(str(raw))
        if seconds < MIN_RESIZE_TIMEOUT:
            raise bad_property("resizeTimeout", raw, "the minimum is 5 minutes")
        return seconds

    def _begin_resize(self, pool: Pool, dedicated: int, low: int, option: str) -> None:
        w = self.world
        now = w.now
        pool.target_dedicated, pool.target_low_priority = dedicated, low
        pool.resize_errors, pool.pending_errors = [], []
        pool.allocation_state, pool.allocation_since = "resizing", now
        for is_dedicated, target in ((True, dedicated), (False, low)):
            members = pool.members(is_dedicated)
            delta = target - len(members)
            if delta > 0:
                granted = self._grantable(pool, is_dedicated, delta)
                for _ in range(granted):
                    self._add_node(pool, is_dedicated)
                if granted < delta:
                    pool.pending_errors.append(self._quota_error(is_dedicated, target, granted))
            elif delta < 0:
                self._shrink(pool, members, -delta, option)
        pool.touch(now)
        delay = w.config.allocation_delay
        timed_out = delay > pool.resize_timeout
        wait = pool.resize_timeout if timed_out else delay
        pool.event = w.timeline.after(wait, lambda: self._finish_resize(pool, timed_out))

    def _grantable(self, pool: Pool, dedicated: bool, wanted: int) -> int:
        config = self.world.config
        quota = config.dedicated_core_quota if dedicated else config.low_priority_core_quota
        if quota is None:
            return wanted
        used = sum(
            cores_of(str(p.spec.get("vmSize", "")))
            for p in self.world.pools.values()
            for n in p.nodes.values()
            if n.dedicated == dedicated
        )
        free = max(quota - used, 0) // cores_of(str(pool.spec.get("vmSize", "")))
        return min(wanted, free)

    @staticmethod
    def _quota_error(dedicated: bool, target: int, granted: int) -> dict[str, Any]:
        kind = "dedicated" if dedicated else "Spot/low-priority"
        return {
            "code": "AccountCoreQuotaReached"
            if dedicated
            else "AccountLowPriorityCoreQuotaReached",
            "message": f"The specified account has reached its {kind} VM core quota limit.",
            "values": [
                {"name": "RequestedNodes", "value": str(target)},
                {"name": "AllocatedNodes", "value": str(granted)},
            ],
        }

    def _add_node(self, pool: Pool, dedicated: bool) -> Node:
        now = self.world.now
        pool.node_serial += 1
        serial = pool.node_serial
        digest = hashlib.sha256(f"{pool.id}/{serial}".encode()).hexdigest()
        node = Node(
            id=f"tvmps_{digest}_{'d' if dedicated else 'p'}",
            pool_id=pool.id,
            dedicated=dedicated,
            state="creating",
            state_since=now,
            allocated=now,
            ip=f"10.0.{serial // 250}.{serial % 250 + 4}",
        )
        pool.nodes[node.id] = node
        return node

    def _shrink(self, pool: Pool, members: list[Node], count: int, option: str) -> None:
        """Batch's choice, not the kindest one: whether a node is busy does not count."""
        victims = sorted(
            members,
            key=lambda n: (n.state not in NOT_YET_USABLE, -n.allocated, _descending(n.id)),
        )
        for node in victims[:count]:
            self._remove(node, option, "resize")

    def _remove(self, node: Node, option: str, cause: str) -> None:
        node.leaving = True
        if option in ("taskcompletion", "retaineddata") and node.running:
            return  # keeps running its tasks; leaves when they are done
        self._evict(node, option, cause)
        node.set_state("leavingpool", self.world.now)

    def _evict(self, node: Node, option: str, cause: str, *, by_user: bool = True) -> None:
        w = self.world
        for job_key, task_key in list(node.running):
            job = w.jobs[job_key]
            task = job.tasks[task_key]
            if option == "terminate":
                w.complete_task(job, task, task_ended())
            else:
                self.requeued[cause] += 1
                w.requeue_task(job, task, by_user=by_user)

    def _finish_resize(self, pool: Pool, timed_out: bool) -> None:
        now = self.world.now
        pool.event = None
        for node in list(pool.nodes.values()):
            if node.state != "creating" or node.leaving:
                continue
            if timed_out:
                del pool.nodes[node.id]
            else:
                self._boot(node)
        if timed_out:
            pool.pending_errors.append(
                {
                    "code": "AllocationTimedOut",
                    "message": "Desired number of nodes could not be "
                    "allocated due to a resize timeout.",
                }
            )
        for node in list(pool.nodes.values()):
            if node.leaving and not node.running:
                del pool.nodes[node.id]
        pool.draining = any(n.leaving for n in pool.nodes.values())
        if not pool.draining:
            self._steady(pool)
        pool.touch(now)

    def _finish_stop(self, pool: Pool) -> None:
        pool.event = None
        pool.draining = False
        for node in list(pool.nodes.values()):
            if node.state == "creating":
                del pool.nodes[node.id]
            elif node.leaving and node.running:
                node.leaving = False  # the pool keeps what it has
            elif node.leaving:
                del pool.nodes[node.id]
        self._steady(pool)

    def _steady(self, pool: Pool) -> None:
        now = self.world.now
        pool.allocation_state, pool.allocation_since = "steady", now
        pool.resize_errors, pool.pending_errors = pool.pending_errors, []
        pool.touch(now)

    def _boot(self, node: Node) -> None:
        w = self.world
        node.set_state("starting", w.now)
        node.event = w.timeline.after(w.config.node_start_delay, lambda: self._ready(node))

    def _ready(self, node: Node) -> None:
        """The VM is up: the node pulls, runs its start task (see `_health`), then works."""
        node.event = None
        node.booted = self.world.now
        pool = self.world.pools.get(key(node.pool_id))
        if pool is None:
            return
        self.world.health.booted(pool, node, self._usable)

    def _usable(self, node: Node) -> None:
        node.set_state("running" if node.running else "idle", self.world.now)

    def _node_freed(self, node: Node) -> None:
        if not node.leaving or node.running:
            return
        node.set_state("leavingpool", self.world.now)
        pool = self.world.pools.get(key(node.pool_id))
        if pool is None or not pool.draining:
            return  # the end of the allocation (or the deletion) removes it
        del pool.nodes[node.id]
        pool.draining = any(n.leaving for n in pool.nodes.values())
        if not pool.draining:
            self._steady(pool)

    def _gone(self, pool: Pool) -> None:
        self.world.pools.pop(key(pool.id), None)

    @staticmethod
    def _check_not_deleting(pool: Pool) -> None:
        if pool.state == "deleting":
            raise conflict(
                "PoolBeingDeleted",
                "The specified pool has been marked for deletion and is being reclaimed.",
            )


def _descending(text: str) -> tuple[int, ...]:
    """A sort key that orders strings from the highest down."""
    return tuple(-ord(c) for c in text)
