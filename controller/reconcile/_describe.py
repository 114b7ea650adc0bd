"""One line about an action, the same words in logs, ``apply``'s output and ``plan``'s."""

from __future__ import annotations

from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    ResizePool,
    StopTask,
)


def describe(action: Action) -> str:
    """One line about an action, safe to log and show (no secrets)."""
    match action:
        case CreatePool(name, spec, dedicated, spot):
            return f"create pool {name} ({spec.vm_size}, {dedicated} dedicated + {spot} spot)"
        case ResizePool(name, dedicated, spot, from_dedicated, from_spot):
            return f"resize pool {name} {from_dedicated}+{from_spot} → {dedicated}+{spot} nodes"
        case DeletePool(name):
            return f"delete pool {name}"
        case CreateJob(name, pool):
            return f"create simulation {name} on pool {pool}"
        case DeleteJob(name):
            return f"delete simulation {name} and its simulators"
        case AddTasks(job, template, tasks):
            slots = ", ".join(str(t.slot) for t in tasks[:10]) + (", …" if len(tasks) > 10 else "")
            return f"start {len(tasks)} simulator(s) of {job} ({template.image}) in slot(s) {slots}"
        case StopTask(job, task_id, slot, reason):
            return f"stop simulator {task_id} of {job} (slot {slot}, {reason})"
        case DeleteTask(job, task_id):
            return f"forget exited simulator {task_id} of {job}"
    raise AssertionError(action)
