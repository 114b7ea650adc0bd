"""Where a task's files live, and when they are gone.

A task's directory (`stdout.txt`, `stderr.txt`, `wd`) is on the node of its latest run,
not in the Batch service. So, as on Batch:

* a run on another node (after a requeue) starts with new, empty files;
* the files go with the node: once it left the pool (a shrink, the pool's deletion) the
  file API answers 404 `NodeNotFound`, and once it booted again as a new machine (a Spot
  node preempted and recovered) 409 `TaskFilesUnavailable`;
* a completed task's files are kept for `constraints.retentionTime` (default 7 days) from
  its end, then deleted: 409 `TaskFilesUnavailable`, which is also the answer for a task
  that never ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import BatchApiError, conflict
from ._model import Node, Pool, Task

if TYPE_CHECKING:
    from ._world import World

#: Batch's default `constraints.retentionTime`: seven days, in seconds.
DEFAULT_RETENTION = 7 * 24 * 3600.0


def moved_to(task: Task, pool: Pool, node: Node) -> None:
    """A run of ``task`` starts on ``node``: files of a run elsewhere are not here."""
    home = (pool.id, node.id, node.booted)
    if task.files_home != home:
        task.files.clear()
    task.files_home = home


def _unavailable() -> BatchApiError:
    return conflict("TaskFilesUnavailable", "The files of the specified task are unavailable.")


def check_available(world: World, task: Task) -> None:
    """Raise Batch's answer when the task's files cannot be read (or listed, or deleted)."""
    if not task.ever_ran or task.files_home is None:
        raise _unavailable()
    node = world.node_of(task)
    if node is None:
        raise BatchApiError(404, "NodeNotFound", "The specified node does not exist.")
    if node.state == "preempted" or node.booted != task.files_home[2]:
        raise _unavailable()  # the machine was reclaimed (and may be back as a new one)
    if task.state == "completed" and task.end_time is not None:
        retention = task.constraint_seconds("retentionTime")
        kept = DEFAULT_RETENTION if retention is None else retention
        if world.now >= task.end_time + kept:
            raise _unavailable()
