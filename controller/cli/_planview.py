"""Render a plan for people (text), pull requests (markdown) and machines (json).

Each object gets one line per change ("roll out image a:1 → a:2 (8 simulators)") and, in
text and json, the actions this pass would take for it. Descriptions come from
:mod:`controller.planner` changes and :func:`controller.reconcile.describe`; neither ever
includes a secret value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from controller.planner import Change, Plan, subject
from controller.reconcile import describe
from controller.spec import SpecError

SYMBOLS = {"create": "+", "prune": "-", "needs replacement": "!"}


def _symbol(change: Change) -> str:
    return SYMBOLS.get(change.verb, "~")


def _actions_by_object(plan: Plan) -> dict[tuple[str, str], list[str]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for action in plan.actions:
        grouped.setdefault(subject(action), []).append(describe(action))
    return grouped


def _footer(plan: Plan) -> str:
    objects = {(c.kind, c.name) for c in plan.changes}
    changes, actions = len(plan.changes), len(plan.actions)
    return f"{changes} change(s) to {len(objects)} object(s); {actions} action(s) now."


def as_text(plan: Plan, errors: Sequence[SpecError], revision: str | None) -> str:
    """Plain text: a line per change, its actions indented under it."""
    lines = [f"revision {revision}"] if revision else []
    lines += [str(e) for e in errors]
    if not plan.changes and not plan.actions:
        lines.append("No changes: the fleet matches the specs.")
        return "\n".join(lines)
    actions = _actions_by_object(plan)
    for change in plan.changes:
        lines.append(f"{_symbol(change)} {change}")
        lines += [f"    {a}" for a in actions.pop((change.kind, change.name), [])]
    for (kind, name), items in actions.items():  # actions no change line covers (cleanup)
        lines.append(f"~ {kind} {name}:")
        lines += [f"    {item}" for item in items]
    lines.append(_footer(plan))
    return "\n".join(lines)


def as_markdown(plan: Plan, errors: Sequence[SpecError], revision: str | None) -> str:
    """A pull-request comment: one table row per change."""
    lines = ["### simfleet plan" + (f" at `{revision[:12]}`" if revision else ""), ""]
    if errors:
        lines += ["**Spec errors** (nothing is pruned until they are fixed):", ""]
        lines += [f"- `{e}`" for e in errors] + [""]
    if not plan.changes and not plan.actions:
        lines.append("No changes: the fleet matches the specs.")
        return "\n".join(lines)
    lines += ["| | object | change |", "| --- | --- | --- |"]
    for change in plan.changes:
        note = "" if change.applies else " *(not applied: replace it yourself)*"
        # A "|" (in run options, say) would end the table cell, even inside backticks.
        detail = f": {change.detail}".replace("|", "\\|") if change.detail else ""
        lines.append(
            f"| {_symbol(change)} | {change.kind} `{change.name}` | {change.verb}{detail}{note} |"
        )
    lines += ["", _footer(plan)]
    return "\n".join(lines)


def as_json(plan: Plan, errors: Sequence[SpecError], revision: str | None) -> str:
    """A JSON document: changes with their actions, errors, revision."""
    actions = _actions_by_object(plan)
    document: dict[str, Any] = {
        "revision": revision,
        "changes": [
            {
                "kind": c.kind,
                "name": c.name,
                "verb": c.verb,
                "detail": c.detail,
                "applies": c.applies,
                "actions": actions.get((c.kind, c.name), []),
            }
            for c in plan.changes
        ],
        "actions": len(plan.actions),
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
    return json.dumps(document, indent=2, ensure_ascii=False)


RENDERERS = {"text": as_text, "markdown": as_markdown, "json": as_json}
