"""Trim history: forget exited simulators beyond a short history per slot.

Exited tasks are kept so ``simfleet logs`` can show why a simulator died; past the newest
``history`` exited tasks of a slot they are deleted (Batch keeps completed tasks until
they are deleted, and a crash-looping fleet would otherwise pile up thousands). The newest
task of a slot is always kept: its attempt number and back-off state seed the next one.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.planner._actions import DeleteTask
from controller.planner._slots import Slot


def trim(
    job: str, slots: Mapping[int, Slot], history: int, simulation: str = ""
) -> tuple[DeleteTask, ...]:
    """Delete each slot's exited tasks beyond its newest ``history`` (at least one kept).

    ``job``: the simulation's current job; ``simulation``: its name when that differs."""
    keep = max(1, history)
    deletions = []
    for slot in slots.values():  # in slot order
        if len(slot.history) <= keep:  # the common case: nothing to forget
            continue
        exited = [t for t in slot.history if not t.live]
        newest_overall = slot.latest
        for task in exited[keep:]:
            if task is not newest_overall:
                owner = task.job or job
                deletions.append(
                    DeleteTask(owner, task.id, "" if owner == simulation else simulation)
                )
    return tuple(deletions)
