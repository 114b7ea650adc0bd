"""Scaling: remove the highest slots first, and stop duplicates in any slot.

Scaling down from 8 to 5 stops the live simulators of slots 7, 6 and 5, in that order,
whatever their template; slots 0–4 are untouched. A simulator already stopping is not
sent another stop: it still holds its slot until it is gone. Scaling up needs nothing here: slots
without a live simulator are filled by :mod:`controller.planner._filling`.
"""

from __future__ import annotations

from controller.planner._actions import StopReason, StopTask
from controller.planner._view import SimulationView


def scale_down(view: SimulationView) -> tuple[StopTask, ...]:
    """Stop every live simulator in slots ``desired`` and above, highest slot first."""
    return tuple(
        StopTask(
            (job := task.job or view.job_id),
            task.id,
            slot.index,
            StopReason.SCALE_DOWN,
            view.mark(job),
        )
        for slot in reversed(view.beyond)
        for task in (*slot.live, *slot.duplicates)
        if not task.stopping
    )


def stop_duplicates(view: SimulationView) -> tuple[StopTask, ...]:
    """Stop the extra live simulators of slots below ``desired`` (never two per slot)."""
    return tuple(
        StopTask(
            (job := task.job or view.job_id),
            task.id,
            slot.index,
            StopReason.DUPLICATE,
            view.mark(job),
        )
        for slot in view.crowded
        if slot.index < view.desired
        for task in slot.duplicates
        if not task.stopping
    )
