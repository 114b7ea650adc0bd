"""The soak's invariants, judged from what really runs and from what the daemon shows.

A census is ``simulation → [(slot, task id)]`` of the simulators alive right now, taken by
the scenario drivers (``tests/scenarios/conftest.py``): on the local backend the processes
that carry the soak's marker, on Azure the emulator's tasks that are not completed
(running, or queued again after a preemption). Task ids carry slot and template revision
(``<simulation>-s<slot>-r<revision>-a<attempt>``), which is what tells a rollout's old and
new simulator of one slot (allowed, within ``maxSurge``) from a duplicate (never allowed).

Everything here is a pure function of a census, a ``/status`` document and the model, so
the runner decides *when* to look and this module only decides *what is wrong*.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _soak_specs import MAX_SURGE, FleetModel

from controller.planner import parse_task_id

Census = Mapping[str, list[tuple[int, str]]]


@dataclass(frozen=True)
class SlotProblem:
    """A slot holding simulators it must not hold at once."""

    simulation: str
    slot: int
    tasks: tuple[str, ...]
    what: str

    def __str__(self) -> str:
        return f"{self.simulation} slot {self.slot}: {self.what} ({', '.join(self.tasks)})"


def _by_slot(rows: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    slots: dict[int, list[str]] = defaultdict(list)
    for slot, task in rows:
        slots[slot].append(task)
    return slots


def _revision(simulation: str, task: str) -> str:
    key = parse_task_id(simulation, task)
    return key.revision if key is not None else task


def doubled(census: Census) -> list[SlotProblem]:
    """Slots with two live simulators of one template: a duplicate, never allowed.

    A slot may hold an old simulator and its replacement during a rollout, and more than
    one replacement after rollouts in quick succession; how many such extra simulators a
    simulation may have at once is ``maxSurge``'s business (:func:`surplus`).
    """
    problems = []
    for simulation, rows in census.items():
        for slot, tasks in sorted(_by_slot(rows).items()):
            revisions = [_revision(simulation, t) for t in tasks]
            if len(set(revisions)) < len(revisions):
                what = "two live simulators of one template"
                problems.append(SlotProblem(simulation, slot, tuple(sorted(tasks)), what))
    return problems


def surplus(census: Census) -> dict[str, int]:
    """Per simulation, live simulators beyond one per slot (surged replacements).

    The Deployment controller's rule, all replicas <= desired + maxSurge, counted per
    slot: 90 slots with one simulator each and 13 with three give 26 over.
    """
    return {
        simulation: sum(len(tasks) - 1 for tasks in _by_slot(rows).values())
        for simulation, rows in census.items()
    }


def surge_allowance(desired: int) -> int:
    """``maxSurge`` of the soak's specs resolved as the Deployment controller does (up)."""
    return math.ceil(MAX_SURGE * desired)


def unconverged(model: FleetModel, status: Mapping[str, Any], census: Census) -> list[str]:
    """Why the fleet does not yet match the model; empty once it does.

    Converged: no spec error; ``/status`` lists exactly the model's simulations, each with
    desired == ready == upToDate == the model's count; the census holds exactly one live
    simulator in each slot ``0 … n-1`` and nothing else, and those are the simulators
    ``/status`` shows running.
    """
    reasons = [f"spec error: {e.get('file')}: {e.get('message')}" for e in status["errors"]]
    rows = {s["name"]: s for s in status["simulations"]}
    if set(rows) != set(model.simulations):
        reasons.append(f"status lists {sorted(rows)}, specs define {sorted(model.simulations)}")
    for name, sim in model.simulations.items():
        row = rows.get(name)
        if row is not None:
            counts = (row["desired"], row["ready"], row["upToDate"])
            if counts != (sim.simulators,) * 3:
                reasons.append(f"{name}: desired/ready/upToDate {counts}, want {sim.simulators}")
            running = {r["id"] for r in row["simulators"] if r["state"] == "running"}
        else:
            running = set()
        live = census.get(name, [])
        slots = _by_slot(live)
        wrong = sorted(s for s in set(slots) | set(range(sim.simulators)) if len(slots[s]) != 1)
        if wrong:
            reasons.append(f"{name}: slots {wrong[:8]} do not hold exactly one simulator")
        if {task for _, task in live} != running:
            reasons.append(f"{name}: what runs differs from what /status shows running")
    strays = sorted(name for name, live in census.items() if live and name not in model.simulations)
    if strays:
        reasons.append(f"simulators of undefined simulations still run: {strays}")
    return reasons


def lost_slots(model: FleetModel, census: Census) -> list[str]:
    """Slots the specs ask for that hold no live simulator."""
    lost = []
    for name, sim in model.simulations.items():
        held = {slot for slot, _ in census.get(name, [])}
        lost += [f"{name} slot {s}" for s in range(sim.simulators) if s not in held]
    return lost


# --------------------------------------------------------------------------- secrets

#: A simulator's own output files: its program wrote them, simfleet only keeps them for
#: ``simfleet logs`` (the soak's simulators print their secret there on purpose).
SIMULATOR_OUTPUT = ("stdout", "stderr")


def secrets_in(text: str, values: Iterable[str]) -> set[str]:
    return {value for value in values if value in text}


def where(text: str, value: str) -> str:
    """Where ``value`` shows in ``text``: a JSON path (of the first log line holding it)."""
    try:
        document = json.loads(text)
    except ValueError:
        line = next((line for line in text.splitlines() if value in line), "")
        try:
            document = json.loads(line)
        except ValueError:
            return repr(line.replace(value, "<secret>")[:160])
        event = document.get("event") if isinstance(document, dict) else None
        return f"event {event!r} {_json_path(document, value) or '?'}"
    return _json_path(document, value) or "?"


def _json_path(node: object, value: str, path: str = "") -> str | None:
    if isinstance(node, str):
        return path or "." if value in node else None
    if isinstance(node, dict):
        items = [(f"{path}.{key}", child) for key, child in node.items()]
    elif isinstance(node, list):
        items = [(f"{path}[{_label(child, i)}]", child) for i, child in enumerate(node)]
    else:
        return None
    for child_path, child in items:
        found = _json_path(child, value, child_path)
        if found is not None:
            return found
    return None


def _label(node: object, index: int) -> str:
    if isinstance(node, dict):
        for key in ("name", "slot", "id"):
            if key in node:
                return f"{key}={node[key]}"
    return str(index)


def secrets_in_state(state_dir: Path, values: Iterable[str]) -> list[tuple[str, str]]:
    """(where, value) for every file simfleet wrote under ``state_dir`` holding a secret."""
    values = list(values)
    found: list[tuple[str, str]] = []
    if not state_dir.is_dir():
        return found
    for path in sorted(state_dir.rglob("*")):
        if not path.is_file() or path.name.startswith(SIMULATOR_OUTPUT):
            continue
        try:
            text = path.read_bytes().decode(errors="replace")
        except OSError:
            continue  # removed while we walked
        found += [
            (f"{path.relative_to(state_dir)} {where(text, value)}", value)
            for value in secrets_in(text, values)
        ]
    return found
