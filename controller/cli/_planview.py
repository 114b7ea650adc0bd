"""Render a plan for people (text), pull requests (markdown) and machines (json).

Each object gets one line per change ("roll out image a:1 → a:2 (8 simulators)") and, in
text and json, the actions this pass would take for it. Descriptions come from
:mod:`controller.planner` changes and :meth:`describe` of each action; neither ever
includes a secret value.

A plan also says what it holds back: objects it leaves as they are although they differ
from the specs (a file that fails to load, an undefined pool, orphans kept because the
directory is empty, a suspended simulation that drifted, an id taken by another fleet's
object or by one simfleet did not create), each with the status message that says why
(for a conflict: whose the object is). "No changes: the fleet matches the specs." is
printed only when that is true: no change, no spec error, nothing held back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller.planner import Change, Plan, SimulationStatus, subject
from controller.spec import SpecError

SYMBOLS = {"create": "+", "prune": "-", "needs replacement": "!"}


def _symbol(change: Change) -> str:
    return SYMBOLS.get(change.verb, "~")


def _actions_by_object(plan: Plan) -> dict[tuple[str, str], list[str]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for action in plan.actions:
        grouped.setdefault(subject(action), []).append(action.describe())
    return grouped


@dataclass(frozen=True)
class Held:
    """An object the plan leaves as it is although it differs from the specs."""

    kind: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.message}"


def _drifted(sim: SimulationStatus) -> bool:
    return sim.ready != sim.desired or sim.up_to_date != sim.desired


def held_back(plan: Plan) -> list[Held]:
    """What the plan holds back and why: every object no change line covers whose status
    has something to say (a suspended simulation only when it differs from its spec)."""
    covered = {(c.kind, c.name) for c in plan.changes} | {subject(a) for a in plan.actions}
    held = []
    for sim in plan.status.simulations:
        if ("simulation", sim.name) in covered:
            continue
        if sim.suspended:
            if _drifted(sim):
                held.append(
                    Held(
                        "simulation",
                        sim.name,
                        f"suspended, so left as it is although it differs from its spec "
                        f"({sim.ready}/{sim.desired} ready, {sim.up_to_date} up to date)",
                    )
                )
        elif sim.message:
            held.append(Held("simulation", sim.name, sim.message))
    held += [
        Held("pool", pool.name, pool.message)
        for pool in plan.status.pools
        if pool.message and ("pool", pool.name) not in covered
    ]
    return held


def _footer(plan: Plan, errors: Sequence[SpecError], held: Sequence[Held]) -> str:
    """The last line: what this plan does, and whether the fleet then matches the specs."""
    if not plan.changes and not plan.actions and not errors and not held:
        return "No changes: the fleet matches the specs."
    parts = []
    if plan.changes or plan.actions:
        objects = {(c.kind, c.name) for c in plan.changes}
        parts.append(
            f"{len(plan.changes)} change(s) to {len(objects)} object(s); "
            f"{len(plan.actions)} action(s) now"
        )
    else:
        parts.append("No changes now, but the fleet does not match the specs")
    if errors:
        parts.append(f"{len(errors)} spec error(s) hold back their files and all pruning")
    if held:
        parts.append(f"{len(held)} object(s) held back")
    return "; ".join(parts) + "."


def as_text(plan: Plan, errors: Sequence[SpecError], revision: str | None) -> str:
    """Plain text: a line per change, its actions indented under it, then what is held."""
    lines = [f"revision {revision}"] if revision else []
    lines += [str(e) for e in errors]
    actions = _actions_by_object(plan)
    for change in plan.changes:
        lines.append(f"{_symbol(change)} {change}")
        lines += [f"    {a}" for a in actions.pop((change.kind, change.name), [])]
    for (kind, name), items in actions.items():  # actions no change line covers (cleanup)
        lines.append(f"~ {kind} {name}:")
        lines += [f"    {item}" for item in items]
    held = held_back(plan)
    if held:
        lines.append("Held back (left as they are):")
        lines += [f"  {h}" for h in held]
    lines.append(_footer(plan, errors, held))
    return "\n".join(lines)


def _short(revision: str) -> str:
    """The commit's first 12 digits, still saying ``-dirty`` when the specs differ from it."""
    commit, dirty, _ = revision.partition("-dirty")
    return commit[:12] + dirty


def as_markdown(plan: Plan, errors: Sequence[SpecError], revision: str | None) -> str:
    """A pull-request comment: one table row per change."""
    lines = ["### simfleet plan" + (f" at `{_short(revision)}`" if revision else ""), ""]
    if errors:
        lines += ["**Spec errors** (nothing is pruned until they are fixed):", ""]
        lines += [f"- `{e}`" for e in errors] + [""]
    if plan.changes:
        lines += ["| | object | change |", "| --- | --- | --- |"]
    for change in plan.changes:
        note = "" if change.applies else " *(not applied: replace it yourself)*"
        # A "|" (in run options, say) would end the table cell, even inside backticks.
        detail = f": {change.detail}".replace("|", "\\|") if change.detail else ""
        lines.append(
            f"| {_symbol(change)} | {change.kind} `{change.name}` | {change.verb}{detail}{note} |"
        )
    held = held_back(plan)
    if held:
        lines += ["", "**Held back** (left as they are):", ""][1 if lines[-1] == "" else 0 :]
        lines += [f"- {h.kind} `{h.name}`: {h.message}" for h in held]
    if plan.changes or held:
        lines.append("")
    lines.append(_footer(plan, errors, held))
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
        "heldBack": [
            {"kind": h.kind, "name": h.name, "message": h.message} for h in held_back(plan)
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
    return json.dumps(document, indent=2, ensure_ascii=False)


RENDERERS = {"text": as_text, "markdown": as_markdown, "json": as_json}
