"""Node health in words: what a pool's node counts and node errors say, for status.

Batch keeps a node that will never run anything (``unusable``: a prefetch image that
cannot be pulled, a registry it cannot log in to, an infrastructure fault;
``starttaskfailed``) in the pool's current counts, so without looking at node states a
pool looks full while its simulators stay pending with no reason. These phrases put the
reason where people look: the pool's message and condition, and the message of every
simulation whose simulators wait on that pool.
"""

from __future__ import annotations

from controller.planner._observed import NodeStates, ObservedPool
from controller.planner._reports import Condition, ConditionType, Reason

#: Node errors named in one message; the rest are counted ("and 2 more").
_SHOWN = 3
#: Characters of one node error shown in a message: docker's texts can be long.
_ERROR_CHARS = 300


def _nodes(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"


def _clip(text: str) -> str:
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def errors_phrase(errors: tuple[str, ...]) -> str:
    """The first few distinct node errors, clipped, and how many more there are."""
    shown = "; ".join(_clip(e) for e in errors[:_SHOWN])
    more = len(errors) - _SHOWN
    return f"{shown} (and {more} more)" if more > 0 else shown


def broken_phrase(nodes: NodeStates, errors: tuple[str, ...]) -> str:
    """``2 of 3 nodes unusable: ContainerInvalidImage: …``, or "" when none is broken."""
    parts = []
    if nodes.unusable:
        parts.append(f"{nodes.unusable} of {_nodes(nodes.total)} unusable")
    if nodes.start_task_failed:
        parts.append(f"{nodes.start_task_failed} of {_nodes(nodes.total)} failed their start task")
    if not parts:
        return ""
    head = ", ".join(parts)
    return f"{head}: {errors_phrase(errors)}" if errors else head


def health(pool: ObservedPool) -> str:
    """What is wrong with the pool's nodes, for its status message ("" when nothing is)."""
    nodes = pool.nodes
    if nodes is None:
        return ""
    phrases = [broken_phrase(nodes, pool.node_errors)]
    if nodes.preempted:
        verb = "was" if nodes.preempted == 1 else "were"
        phrases.append(f"{_nodes(nodes.preempted)} {verb} preempted (Spot)")
    return "; ".join(p for p in phrases if p)


def condition(pool: ObservedPool) -> Condition | None:
    """``NodesUsable``: False while any node is unusable or failed its start task; None
    when the backend did not count the pool's nodes."""
    nodes = pool.nodes
    if nodes is None:
        return None
    if not nodes.broken:
        return Condition(ConditionType.NODES_USABLE, True, Reason.NODES_USABLE, "")
    reason = Reason.NODES_UNUSABLE if nodes.unusable else Reason.START_TASK_FAILED
    return Condition(
        ConditionType.NODES_USABLE, False, reason, broken_phrase(nodes, pool.node_errors)
    )


def waiting_on(pool: ObservedPool | None, pending: int) -> str:
    """Why ``pending`` simulators wait, when the pool's nodes say so; "" otherwise."""
    if pool is None or pool.nodes is None or not pool.nodes.broken or not pending:
        return ""
    return f"{pending} pending on pool {pool.name}: {broken_phrase(pool.nodes, pool.node_errors)}"
