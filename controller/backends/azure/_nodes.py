"""Node health per pool: counted every pass, broken nodes' errors listed only on change.

Batch keeps a node that will never run anything in the pool's current counts, so
observation reads the account's node counts every pass: one ``list pool node counts``
request answers every pool of the account (a page per up to 10 pools on the service),
never one request per pool or per node. Where this fleet's pool has ``unusable`` or
``starttaskfailed`` nodes, why comes from one ``list nodes`` of that pool, filtered to
those states and ``$select``ed to ``id,state,errors,startTaskInfo``; it is listed again
only when the pool's broken counts change or the listing is older than ``max_age`` (a
node replaced by another broken one keeps the counts, not necessarily the errors).

The error listing is a side read: one that fails keeps the errors last listed (or none)
and is tried again next pass, and never fails the observation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.backends.azure import _mapping
from controller.backends.azure._throttle import Throttle
from controller.planner import NodeStates


@dataclass(frozen=True)
class _Listed:
    """The errors of one pool's broken nodes, and what they were listed for."""

    broken: tuple[int, int]  # (unusable, starttaskfailed) when listed
    at: float  # monotonic seconds
    errors: tuple[str, ...]


class NodeHealth:
    """Node counts of every pool, and the errors of broken nodes of the pools asked about."""

    def __init__(
        self, client: Any, throttle: Throttle, *, max_age: float, clock: Callable[[], float]
    ) -> None:
        self._client = client
        self._throttle = throttle
        self._max_age = max_age
        self._clock = clock
        self._listed: dict[str, _Listed] = {}

    async def counts(self) -> dict[str, NodeStates]:
        """Every pool's node counts, by pool id (one request per page of pools)."""
        return {
            counts.pool_id: _mapping.node_states(counts)
            async for counts in self._client.list_pool_node_counts()
        }

    async def errors(self, pool: str, states: NodeStates) -> tuple[str, ...]:
        """Why the pool's broken nodes are broken, one line per distinct error; listed
        again only when the broken counts moved or the last listing is ``max_age`` old."""
        broken = (states.unusable, states.start_task_failed)
        if not states.broken:
            self._listed.pop(pool, None)
            return ()
        listed = self._listed.get(pool)
        now = self._clock()
        if listed is not None and listed.broken == broken and now - listed.at < self._max_age:
            return listed.errors
        try:
            self._throttle.hold()
            lines: dict[str, None] = {}  # distinct, in listing order
            async for node in self._client.list_nodes(
                pool, filter=_mapping.BROKEN_NODES_FILTER, select=_mapping.NODE_SELECT
            ):
                lines.update(dict.fromkeys(_mapping.node_errors(node)))
        except Exception as exc:  # a side read: the pass goes on with what is known
            error = self._throttle.classified(exc, f"list the broken nodes of {pool}")
            if error.code == "PoolNotFound":
                self._listed.pop(pool, None)
            return listed.errors if listed is not None else ()
        self._listed[pool] = _Listed(broken, now, tuple(lines))
        return tuple(lines)

    def forget_except(self, pools: set[str]) -> None:
        """Drop the listings of pools that are gone (or all of them: ``set()``)."""
        self._listed = {k: v for k, v in self._listed.items() if k in pools}
