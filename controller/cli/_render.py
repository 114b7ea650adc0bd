"""Render the ``/status`` document for people: the table of ``simfleet status``, and the
view of one simulation with a row per slot (``simfleet status NAME``).

Works on the JSON document, not on internal types, because ``status`` reads it over HTTP
from a daemon that may be a different version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

COLUMNS = ("NAME", "POOL", "IMAGE", "DESIRED", "READY", "UP-TO-DATE", "RESTARTS", "AGE", "MESSAGE")
SLOT_COLUMNS = ("SLOT", "STATE", "RESTARTS", "UP-TO-DATE", "AGE", "PID", "LAST EXIT", "ID")
STATE_STYLES = {"running": "green", "waiting": "yellow", "failed": "red", "pending": "cyan"}


def age(created: str | None, now: datetime | None = None) -> str:
    """``5s``, ``3m``, ``2h``, ``4d`` since an ISO timestamp; ``-`` when unknown."""
    if not created:
        return "-"
    then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status_table(document: dict[str, Any], now: datetime | None = None) -> RenderableType:
    """The simulations table, then the controller's own trouble, pools and spec errors
    when there are any."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in COLUMNS:
        table.add_column(column, no_wrap=column != "MESSAGE", overflow="fold")
    for sim in document.get("simulations", []):
        ready_style = "green" if sim["ready"] >= sim["desired"] else "yellow"
        table.add_row(
            sim["name"],
            sim["pool"],
            sim["image"] or "-",
            str(sim["desired"]),
            Text(str(sim["ready"]), style=ready_style),
            str(sim["upToDate"]),
            str(sim["restarts"]),
            age(sim.get("createdAt"), now),
            sim["message"],
        )
    parts: list[RenderableType] = [table]
    lease = document.get("lease") or {}
    if lease.get("role") == "standby":
        leader = (lease.get("leader") or {}).get("holder")
        led = f"led by {leader}" if leader else "with no leader"
        parts.append(
            Text(
                f"standby: fleet {lease['fleet']!r} is {led}; ask the leader for its fleet",
                style="yellow",
            )
        )
    controller = document.get("controller") or {}
    if controller.get("message"):
        parts.append(Text(f"controller: {controller['message']}", style="yellow"))
    if controller.get("consecutiveFailedPasses"):
        parts.append(
            Text(
                f"controller: {controller['consecutiveFailedPasses']} pass(es) in a row failed: "
                f"{controller.get('lastError', '')}",
                style="red",
            )
        )
    pools = [p for p in document.get("pools", []) if p.get("message")]
    for pool in pools:
        parts.append(Text(f"pool {pool['name']}: {pool['message']}", style="yellow"))
    for error in document.get("errors", []):
        where = f"{error['file']}:{error['line']}:{error['column']}"
        parts.append(Text(f"{where}: {error['message']}", style="red"))
    if document.get("revision"):
        parts.append(Text(f"revision {document['revision']}", style="dim"))
    return Group(*parts)


def exit_phrase(last: dict[str, Any] | None) -> str:
    """A slot's last exit in a few words: the Batch failure code, else the message."""
    if not last:
        return "-"
    if last.get("failureCode"):
        return str(last["failureCode"])
    if last.get("message"):
        return str(last["message"])
    if last.get("exitCode") is not None:
        return f"exited with code {last['exitCode']}"
    return str(last.get("reason") or "-")


def simulation_view(sim: dict[str, Any], now: datetime | None = None) -> RenderableType:
    """One simulation: its numbers, message and conditions, then a row per slot."""
    pid = "PID" if any(row.get("pid") is not None for row in sim.get("simulators", [])) else ""
    lines = [
        Text.assemble(("Name: ", "bold"), sim["name"], ("  Pool: ", "bold"), sim["pool"]),
        Text.assemble(("Image: ", "bold"), sim["image"] or "-"),
        Text.assemble(
            ("Simulators: ", "bold"),
            f"{sim['desired']} desired, {sim['ready']} ready, {sim['upToDate']} up to date, "
            f"{sim['restarts']} restarts; age {age(sim.get('createdAt'), now)}"
            + (" (suspended)" if sim.get("suspended") else ""),
        ),
    ]
    if sim.get("message"):
        lines.append(Text.assemble(("Message: ", "bold"), sim["message"]))
    for condition in sim.get("conditions", []):
        text = f"{condition['type']}={condition['status']} {condition['reason']}"
        detail = f": {condition['message']}" if condition.get("message") else ""
        lines.append(Text.assemble(("Condition: ", "bold"), text + detail))
    slots = Table(box=None, pad_edge=False, header_style="bold")
    for column in SLOT_COLUMNS:
        if column != "PID" or pid:
            slots.add_column(column, no_wrap=column != "LAST EXIT", overflow="fold")
    for row in sim.get("simulators", []):
        cells: list[RenderableType] = [
            str(row["slot"]),
            Text(row["state"], style=STATE_STYLES.get(row["state"], "")),
            str(row["restarts"]),
            "yes" if row["upToDate"] else "no",
            age(row.get("startedAt"), now),
        ]
        if pid:
            cells.append("-" if row.get("pid") is None else str(row["pid"]))
        cells += [exit_phrase(row.get("lastExit")), row["id"] or "-"]
        slots.add_row(*cells)
    return Group(*lines, Text(""), slots)
