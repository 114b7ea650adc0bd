"""Render a plan for people (text), pull requests (markdown) and machines (json).

Actions are grouped by the object they change, in the order the pass would run them.
Descriptions come from :func:`controller.reconcile.describe`, which never includes a
secret value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from controller.planner import Action
from controller.reconcile import describe, subject
from controller.spec import SpecError


def grouped(actions: Sequence[Action]) -> dict[tuple[str, str], list[str]]:
    """Action descriptions by (kind, name), in first-appearance order."""
    groups: dict[tuple[str, str], list[str]] = {}
    for action in actions:
        groups.setdefault(subject(action), []).append(describe(action))
    return groups


def as_text(actions: Sequence[Action], errors: Sequence[SpecError], revision: str | None) -> str:
    """Plain text, one object per paragraph."""
    lines = [f"revision {revision}"] if revision else []
    lines += [str(e) for e in errors]
    groups = grouped(actions)
    if not groups:
        lines.append("No changes: the fleet matches the specs.")
    for (kind, name), items in groups.items():
        lines.append(f"{kind} {name}:")
        lines += [f"  - {item}" for item in items]
    lines.append(f"{len(actions)} action(s) on {len(groups)} object(s).")
    return "\n".join(lines)


def as_markdown(
    actions: Sequence[Action], errors: Sequence[SpecError], revision: str | None
) -> str:
    """A pull-request comment."""
    groups = grouped(actions)
    lines = ["### simfleet plan" + (f" at `{revision[:12]}`" if revision else ""), ""]
    if errors:
        lines += ["**Spec errors** (nothing will be pruned until they are fixed):", ""]
        lines += [f"- `{e}`" for e in errors] + [""]
    if not groups:
        lines.append("No changes: the fleet matches the specs.")
        return "\n".join(lines)
    lines += ["| object | change |", "| --- | --- |"]
    for (kind, name), items in groups.items():
        for item in items:
            lines.append(f"| {kind} `{name}` | {item} |")
    lines += ["", f"{len(actions)} action(s) on {len(groups)} object(s)."]
    return "\n".join(lines)


def as_json(actions: Sequence[Action], errors: Sequence[SpecError], revision: str | None) -> str:
    """A JSON document: changes per object, errors, revision."""
    document: dict[str, Any] = {
        "revision": revision,
        "changes": [
            {"kind": kind, "name": name, "actions": items}
            for (kind, name), items in grouped(actions).items()
        ],
        "errors": [
            {
                "file": e.file,
                "line": e.line,
                "column": e.column,
                "path": e.path,
                "message": e.message,
            }
            for e in errors
        ],
    }
    return json.dumps(document, indent=2)


RENDERERS = {"text": as_text, "markdown": as_markdown, "json": as_json}
