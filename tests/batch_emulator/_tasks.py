"""Tasks: adding (one or a collection), terminating, reactivating, deleting, and files.

Task ids are unique within a job without regard to case; a collection answers per task
(`success`, or `clienterror` with e.g. `TaskExists`) while job-level problems fail the
whole request. Only `constraints` can change after a task is added. Reactivation is for
failed completed tasks only (`TaskNotCompleted` / `TaskSucceeded` otherwise).

Task files exist once the task has been given a node: `stdout.txt`, `stderr.txt` and the
`wd` working directory, plus whatever a test puts there with `put_file`; they live on
that node and go with it or after the retention time (`_taskfiles.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._behaviour import Outcome, task_ended
from ._errors import BatchApiError, bad_property, check_id, conflict, not_found, not_supported
from ._jobs import check_mutable, check_not_deleting
from ._model import Job, Task, TaskFile, key
from ._taskfiles import check_available
from ._wire import parse_duration
from ._world import World

UNSUPPORTED_TASK_FIELDS = ("multiInstanceSettings", "dependsOn", "exitConditions")
DURATION_CONSTRAINTS = ("maxWallClockTime", "retentionTime")


@dataclass(frozen=True)
class FileEntry:
    name: str
    is_directory: bool
    file: TaskFile


def _check_accepts_tasks(job: Job) -> None:
    check_mutable(job)
    if job.state == "terminating":
        raise conflict("JobBeingTerminated", "The specified job is being terminated.")


class Tasks:
    def __init__(self, world: World) -> None:
        self.world = world

    # -- REST operations ----------------------------------------------------------------

    def add(self, job: Job, body: dict[str, Any]) -> Task:
        _check_accepts_tasks(job)
        task_id = str(body["id"])
        check_id(task_id)
        if key(task_id) in job.tasks:
            raise conflict("TaskExists", "The specified task already exists.")
        for field in UNSUPPORTED_TASK_FIELDS:
            if field in body:
                raise not_supported(f"tasks with {field}")
        self._check_constraints(body.get("constraints", {}))
        slots = int(body.get("requiredSlots", 1))
        if slots < 1:
            raise bad_property("requiredSlots", slots, "must be at least 1")
        now = self.world.now
        task = Task(
            created=now,
            id=task_id,
            job_id=job.id,
            spec=dict(body),
            seq=self.world.next_seq(),
            state_since=now,
        )
        job.tasks[key(task_id)] = task
        return task

    def add_collection(self, job: Job, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per-task results; raises only for problems with the job itself."""
        _check_accepts_tasks(job)
        limit = self.world.config.max_tasks_per_collection
        if len(values) > limit:
            raise BatchApiError(
                413,
                "RequestBodyTooLarge",
                f"The number of tasks in the collection exceeds the maximum of {limit}.",
                {"MaxTasks": str(limit), "TaskCount": str(len(values))},
            )
        results: list[dict[str, Any]] = []
        for body in values:
            try:
                task = self.add(job, body)
            except BatchApiError as error:
                if error.status >= 500:
                    raise
                results.append({"status": "clienterror", "taskId": body["id"], "error": error})
            else:
                results.append({"status": "success", "taskId": task.id, "task": task})
        return results

    def replace(self, job: Job, task: Task, body: dict[str, Any]) -> None:
        check_not_deleting(job)
        if task.state == "completed":
            raise conflict("TaskCompleted", "The specified task is already in a completed state.")
        constraints = dict(body.get("constraints", {}))
        self._check_constraints(constraints)
        task.spec["constraints"] = constraints
        task.touch(self.world.now)

    def terminate(self, job: Job, task: Task) -> None:
        check_not_deleting(job)
        if task.state == "completed":
            raise conflict("TaskCompleted", "The specified task is already in a completed state.")
        ran = task.state in ("preparing", "running")
        self.world.complete_task(job, task, task_ended(ran=ran))

    def reactivate(self, job: Job, task: Task) -> None:
        check_mutable(job)
        if job.state != "active":
            raise conflict("JobNotActive", "The specified job is not in active state.")
        if task.state != "completed":
            raise conflict(
                "TaskNotCompleted",
                "The specified task is not in a completed state, and the requested operation "
                "can be performed only on completed tasks.",
            )
        if task.result == "success":
            raise conflict(
                "TaskSucceeded",
                "The specified task has already completed successfully, and the requested "
                "operation cannot be performed on successful tasks.",
            )
        task.retry_count, task.last_retry = 0, None
        task.start_time = task.end_time = task.exit_code = None
        task.result = task.failure_info = None
        task.set_state("active", self.world.now)

    def delete(self, job: Job, task: Task) -> None:
        check_not_deleting(job)
        self.world.remove_task(job, task)

    # -- files --------------------------------------------------------------------------

    def files(self, task: Task, *, recursive: bool) -> list[FileEntry]:
        check_available(self.world, task)
        when = task.start_time or task.created
        # The working directory always exists, even when it is empty.
        entries = {"wd": FileEntry("wd", True, TaskFile(bytearray(), when, when))}
        for name, file in sorted(task.files.items()):
            parts = name.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(
                        folder, FileEntry(folder, True, TaskFile(bytearray(), when, when))
                    )
            if recursive or len(parts) == 1:
                entries[name] = FileEntry(name, False, file)
        return sorted(entries.values(), key=lambda e: e.name)

    def file(self, task: Task, path: str) -> FileEntry:
        check_available(self.world, task)
        if path in task.files:
            return FileEntry(path, False, task.files[path])
        folder = path.rstrip("/")
        if folder == "wd" or any(name.startswith(folder + "/") for name in task.files):
            when = task.start_time or task.created
            return FileEntry(folder, True, TaskFile(bytearray(), when, when))
        raise not_found("File", path)

    def delete_file(self, task: Task, path: str, *, recursive: bool) -> None:
        entry = self.file(task, path)
        if entry.is_directory and not recursive:
            raise conflict("OperationInvalidForCurrentState", "The directory is not empty.")
        doomed = [n for n in task.files if n == path or n.startswith(entry.name + "/")]
        for name in doomed:
            del task.files[name]

    # -- test controls ------------------------------------------------------------------

    def finish(self, job_id: str, task_id: str, outcome: Outcome) -> None:
        job, task = self.world.find_task(job_id, task_id)
        if task.state not in ("preparing", "running"):
            raise ValueError(f"task {job_id}/{task_id} is {task.state}, not running")
        self.world.complete_task(job, task, outcome)

    def put_file(self, job_id: str, task_id: str, path: str, data: bytes) -> None:
        task = self.world.task(job_id, task_id)
        now = self.world.now
        entry = task.files.setdefault(path, TaskFile(bytearray(), now, now))
        entry.content[:] = data
        entry.modified = now
        task.ever_ran = True

    # -- internals ----------------------------------------------------------------------

    @staticmethod
    def _check_constraints(constraints: dict[str, Any]) -> None:
        for name in DURATION_CONSTRAINTS:
            if name in constraints:
                try:
                    parse_duration(str(constraints[name]))
                except ValueError as error:
                    raise bad_property(
                        f"constraints.{name}", constraints[name], str(error)
                    ) from None
        retries = int(constraints.get("maxTaskRetryCount", 0))
        if retries < -1:
            raise bad_property("constraints.maxTaskRetryCount", retries, "must be -1 or more")
