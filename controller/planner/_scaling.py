"""Scaling: remove the highest slots first, and stop duplicates in any slot.

Scaling down from 8 to 5 stops the live simulators of slots 7, 6 and 5, in that order,
whatever their template; slots 0–4 are untouched. A simulator already stopping is not
sent another stop: it still holds its slot until it is gone. Scaling up needs nothing here: slots
without a live simulator are filled by :mod:`controller.planner._restarts`.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.planner._slots import Slot
from controller.planner._types import StopReason, StopTask


def scale_down(job: str, slots: Mapping[int, Slot], desired: int) -> tuple[StopTask, ...]:
    """Stop every live simulator in slots ``desired`` and above, highest slot first."""
    return tuple(
        StopTask(job, task.id, index, StopReason.SCALE_DOWN)
        for index in sorted(slots, reverse=True)
        if index >= desired
        for task in (*slots[index].live, *slots[index].duplicates)
        if not task.stopping
    )


def stop_duplicates(job: str, slots: Mapping[int, Slot], desired: int) -> tuple[StopTask, ...]:
    """Stop the extra live simulators of slots below ``desired`` (never two per slot)."""
    return tuple(
        StopTask(job, task.id, index, StopReason.DUPLICATE)
        for index in sorted(slots)
        if index < desired
        for task in slots[index].duplicates
        if not task.stopping
    )
