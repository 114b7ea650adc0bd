"""Warnings about pools whose nodes are broken, said once per change, not once per pass.

A pool whose nodes are ``unusable`` or failed their start task stays that way for as long
as nobody fixes it (a bad prefetch image, a registry the nodes cannot log in to): status
shows it every pass, the log says it once — again only when the counts or the errors
change — and says it once more when the pool has no broken node left.
"""

from __future__ import annotations

import structlog

from controller.planner import PoolStatus, Status

log = structlog.get_logger("simfleet.daemon")

#: What identifies one trouble of a pool: (unusable, start task failed, total, errors).
_Trouble = tuple[int, int, int, tuple[str, ...]]


def _trouble(pool: PoolStatus) -> _Trouble | None:
    nodes = pool.nodes
    if nodes is None or not nodes.broken:
        return None
    return (nodes.unusable, nodes.start_task_failed, nodes.total, pool.node_errors)


class NodeWatch:
    """Remembers what was said about each pool's broken nodes."""

    def __init__(self) -> None:
        self._said: dict[str, _Trouble] = {}

    def observe(self, status: Status) -> None:
        """Look at one pass's pools; warn about what changed, note what recovered."""
        for pool in status.pools:
            if pool.nodes is None:
                continue  # not counted this pass: nothing new is known
            trouble = _trouble(pool)
            said = self._said.get(pool.name)
            if trouble == said:
                continue
            if trouble is None:
                del self._said[pool.name]
                log.info("pool_nodes_usable", pool=pool.name)
                continue
            self._said[pool.name] = trouble
            unusable, failed, total, errors = trouble
            log.warning(
                "pool_nodes_broken",
                pool=pool.name,
                unusable=unusable,
                start_task_failed=failed,
                nodes=total,
                errors=list(errors),
            )
        for gone in set(self._said) - {p.name for p in status.pools}:
            del self._said[gone]
