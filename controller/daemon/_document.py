"""The ``/status`` JSON document, built from a pass result and the spec errors.

This is the shape product.md fixes (``simulations``, ``pools``, ``errors``, ``revision``)
plus a few fields the CLI uses (``createdAt`` for AGE, ``updatedAt``) and the ``fleet``
the daemon manages (only that fleet's objects are in it). Values are
secret-free by construction, except what simulators print themselves: a stderr tail goes
through the log redactor, which knows every secret value in force.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from controller.daemon._logging import REDACTOR
from controller.daemon._metrics import node_state_counts
from controller.planner import Condition, ExitInfo, PoolStatus, SimulationStatus, Status
from controller.spec import SpecError


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def exit_document(info: ExitInfo | None) -> dict[str, Any] | None:
    """A simulator's last exit as JSON, or None."""
    if info is None:
        return None
    return {
        "reason": str(info.reason),
        "exitCode": info.exit_code,
        "failureCode": info.failure_code,
        "message": info.message,
        "stderrTail": REDACTOR.scrub(info.stderr_tail),  # a simulator may print its secrets
    }


def simulation_document(status: SimulationStatus) -> dict[str, Any]:
    """One simulation's entry in ``/status``."""
    return {
        "name": status.name,
        "pool": status.pool,
        "image": status.image,
        "desired": status.desired,
        "ready": status.ready,
        "upToDate": status.up_to_date,
        "restarts": status.restarts,
        "message": status.message,
        "revision": status.revision,
        "suspended": status.suspended,
        "createdAt": _time(status.created_at),
        "conditions": [condition_document(c) for c in status.conditions],
        "simulators": [
            {
                "slot": row.slot,
                "id": row.id,
                "state": row.state,
                "restarts": row.restarts,
                "upToDate": row.up_to_date,
                "lastExit": exit_document(row.last_exit),
                "pid": row.pid,
                "startedAt": _time(row.started_at),
            }
            for row in status.simulators
        ],
    }


def condition_document(condition: Condition) -> dict[str, Any]:
    """A simulation's or a pool's condition, as Kubernetes writes them."""
    return {
        "type": str(condition.type),
        "status": "True" if condition.status else "False",
        "reason": str(condition.reason),
        "message": REDACTOR.scrub(condition.message),
    }


def pool_document(status: PoolStatus) -> dict[str, Any]:
    """One pool's entry in ``/status``: ``nodes`` (counts by state) is null when the
    backend did not count them; node errors are Batch's words (and the container
    engine's), masked like stderr tails in case one quotes a secret."""
    return {
        "name": status.name,
        "dedicated": status.dedicated,
        "spot": status.spot,
        "targetDedicated": status.target_dedicated,
        "targetSpot": status.target_spot,
        "state": status.state,
        "message": REDACTOR.scrub(status.message),
        "nodes": {**node_state_counts(status.nodes), "total": status.nodes.total}
        if status.nodes is not None
        else None,
        "nodeErrors": [REDACTOR.scrub(e) for e in status.node_errors],
        "conditions": [condition_document(c) for c in status.conditions],
    }


def error_document(error: SpecError) -> dict[str, Any]:
    """One spec error in ``/status``; ``message`` carries the field path as the CLI prints it."""
    return {
        "file": error.file,
        "line": error.line,
        "column": error.column,
        "path": error.path,
        "message": f"{error.path}: {error.message}" if error.path else error.message,
    }


def status_document(
    status: Status,
    errors: Sequence[SpecError],
    *,
    revision: str | None,
    backend: str,
    fleet: str,
    updated_at: datetime,
) -> dict[str, Any]:
    """The whole ``/status`` document."""
    return {
        "simulations": [simulation_document(s) for s in status.simulations],
        "pools": [pool_document(p) for p in status.pools],
        "errors": [error_document(e) for e in errors],
        "revision": revision,
        "backend": backend,
        "fleet": fleet,
        "updatedAt": _time(updated_at),
    }
