"""A pool shrinks by removing idle nodes by name, never by a plain resize down.

A resize down lets Batch pick the nodes to remove, busy ones included, and its default
``nodeDeallocationOption`` is ``requeue``: a running simulator is killed and starts over
elsewhere. So a :class:`~controller.planner.ShrinkPool` lists the pool's idle nodes (one
request: ``$filter=state eq 'idle'``, ``$select=id,isDedicated``, the kind being needed to
keep each kind's target) and removes as many of them as each kind has above its target
through ``removenodes``, with ``taskcompletion``: a task that lands on a chosen node
between the listing and the removal finishes before the node goes. Batch takes at most
100 nodes per request and refuses a second one while the first is being carried out (the
pool is ``resizing``), so one request per pass; the next pass removes the rest.

A kind with no node above its target (the pool is short of nodes, say after a quota
error) only has its target lowered, by a plain resize, which removes nothing: only when
no kind has a node to remove, since the two requests cannot both go in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from azure.batch import models as m

from controller.planner import ShrinkPool

#: Batch's limit of node ids per ``removenodes`` request.
MAX_NODES_PER_REMOVAL = 100
IDLE_FILTER = "state eq 'idle'"
IDLE_SELECT = ["id", "isDedicated"]


def needs_removal(action: ShrinkPool) -> bool:
    """Whether some kind has more nodes than its new target: only then are nodes removed."""
    return action.current_dedicated > action.dedicated or action.current_spot > action.spot


def chosen(action: ShrinkPool, idle: Sequence[tuple[str, bool]]) -> list[str]:
    """The idle nodes (id, dedicated) to remove: per kind, at most as many as it has above
    its target, at most 100 in all; dedicated ones first, each kind in listed order."""
    room = {
        True: max(0, action.current_dedicated - action.dedicated),
        False: max(0, action.current_spot - action.spot),
    }
    picked: list[str] = []
    for dedicated in (True, False):
        kind = [node for node, is_dedicated in idle if is_dedicated is dedicated]
        picked += kind[: room[dedicated]]
    return picked[:MAX_NODES_PER_REMOVAL]


def removal(nodes: list[str]) -> m.BatchNodeRemoveOptions:
    """The ``removenodes`` body: these nodes, each leaving once its tasks are done."""
    return m.BatchNodeRemoveOptions(node_ids=nodes, node_deallocation_option="taskcompletion")
