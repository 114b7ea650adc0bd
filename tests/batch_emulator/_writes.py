"""Which requests change which objects: the claims "never touched another fleet's pool"
and "adopted with zero modifying requests" are about writes per object.

A request is a write unless its operationId reads (``*_List*``, ``*_Get*``,
``*Exists``). Its object is the pool or job its path names (``/pools/{id}/…``,
``/jobs/{id}/…``); a creation (``POST /pools``, ``POST /jobs``) names none in its path and
is counted under its kind with an empty id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from urllib.parse import unquote


def is_write(operation: str) -> bool:
    """Whether a request of this operationId may change something."""
    action = operation.split("_", 1)[-1]
    return not (action.startswith(("List", "Get")) or action.endswith("Exists"))


def object_of(path: str) -> tuple[str, str]:
    """(``pool`` or ``job``, id) a request path names (id "" for a creation); ("", "") for
    any other path."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if parts[0] in ("pools", "jobs"):
        return parts[0][:-1], unquote(parts[1]) if len(parts) > 1 else ""
    return "", ""


def writes(requests: Iterable[tuple[str, str]]) -> Counter[tuple[str, str, str]]:
    """(kind, id, operation) → how many writes, from (operationId, path) pairs."""
    return Counter((*object_of(path), op) for op, path in requests if is_write(op))
