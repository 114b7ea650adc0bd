"""Jobs: creation, updates, termination, asynchronous deletion and task counts.

A job binds tasks to a pool (`poolInfo.poolId`; the pool need not exist yet, tasks just
wait). Terminating a job ends its tasks (running ones are killed, queued ones complete
without running, both with `TaskEnded`), then the job is `completed` after
`job_terminate_delay`. Deleting is asynchronous like pools: `deleting` for
`deletion_delay`, meanwhile a create with the same id answers 409 `JobBeingDeleted`.
`onAllTasksComplete: terminatejob` and `constraints.maxWallClockTime` end the job the
way Batch does (terminate reasons `AllTasksComplete`, `MaxWallClockTimeExpiry`).
"""

from __future__ import annotations

from typing import Any

from ._behaviour import task_ended
from ._errors import check_id, conflict, not_supported
from ._model import Job, key
from ._wire import parse_duration
from ._world import World

UNSUPPORTED_JOB_FIELDS = ("jobManagerTask", "jobPreparationTask", "jobReleaseTask")
REPLACEABLE_FIELDS = (
    "priority",
    "allowTaskPreemption",
    "maxParallelTasks",
    "constraints",
    "poolInfo",
    "onAllTasksComplete",
    "metadata",
)
LIVE_STATES = ("active", "disabling", "disabled", "enabling", "terminating")


class Jobs:
    def __init__(self, world: World) -> None:
        self.world = world
        world.task_completed = self._task_completed

    def create(self, body: dict[str, Any]) -> Job:
        w = self.world
        job_id = str(body["id"])
        check_id(job_id)
        existing = w.jobs.get(key(job_id))
        if existing is not None:
            check_not_deleting(existing)
            raise conflict("JobExists", "The specified job already exists.")
        active = sum(1 for j in w.jobs.values() if j.state in LIVE_STATES)
        if active >= w.config.active_job_quota:
            raise conflict(
                "ActiveJobAndScheduleQuotaReached",
                "Active job and schedule quota for the account has been reached.",
            )
        self._check_supported(body)
        now = w.now
        job = Job(created=now, id=job_id, spec=dict(body), state_since=now)
        w.jobs[key(job_id)] = job
        self._arm_wall_clock(job)
        return job

    def update(self, job: Job, body: dict[str, Any], *, replace: bool = False) -> None:
        check_mutable(job)
        self._check_supported(body)
        new_pool = "poolInfo" in body and body["poolInfo"] != job.spec.get("poolInfo")
        busy = any(t.state in ("preparing", "running") for t in job.tasks.values())
        if new_pool and busy and job.state != "disabled":
            raise conflict(
                "OperationInvalidForCurrentState",
                "The pool of a job with running tasks can only be changed when it is disabled.",
            )
        if replace:
            for field in REPLACEABLE_FIELDS:
                job.spec.pop(field, None)
        job.spec.update({k: v for k, v in body.items() if k in REPLACEABLE_FIELDS or not replace})
        job.touch(self.world.now)
        self._arm_wall_clock(job)

    def terminate(self, job: Job, reason: str | None) -> None:
        check_mutable(job)
        if job.state == "terminating":
            raise conflict("JobBeingTerminated", "The specified job is being terminated.")
        self._terminate(job, reason or "UserTerminate")

    def delete(self, job: Job) -> None:
        check_not_deleting(job)
        w = self.world
        if job.event is not None:
            job.event.cancel()
        job.set_state("deleting", w.now)
        for task in job.tasks.values():
            if task.state in ("preparing", "running"):
                w.release(job, task)  # still listed until the job is gone
        job.event = w.timeline.after(w.config.deletion_delay, lambda: self._gone(job))

    @staticmethod
    def task_counts(job: Job) -> dict[str, Any]:
        counts = dict.fromkeys(("active", "running", "completed", "succeeded", "failed"), 0)
        slots = dict(counts)
        for task in job.tasks.values():
            buckets = {"active": ["active"], "preparing": ["running"], "running": ["running"]}
            names = buckets.get(task.state) or [
                "completed",
                "succeeded" if task.result == "success" else "failed",
            ]
            for name in names:
                counts[name] += 1
                slots[name] += task.required_slots
        return {"taskCounts": counts, "taskSlotCounts": slots}

    # -- internals ----------------------------------------------------------------------

    @staticmethod
    def _check_supported(body: dict[str, Any]) -> None:
        for field in UNSUPPORTED_JOB_FIELDS:
            if field in body:
                raise not_supported(f"jobs with {field}")
        if "autoPoolSpecification" in body.get("poolInfo", {}):
            raise not_supported("auto pools (poolInfo.autoPoolSpecification)")

    def _terminate(self, job: Job, reason: str) -> None:
        w = self.world
        if job.event is not None:
            job.event.cancel()
        job.set_state("terminating", w.now)
        job.terminate_reason = reason
        for task in list(job.tasks.values()):
            if task.state != "completed":
                ran = task.state in ("preparing", "running")
                w.complete_task(job, task, task_ended(ran=ran))
        job.event = w.timeline.after(w.config.job_terminate_delay, lambda: self._complete(job))

    def _complete(self, job: Job) -> None:
        job.event = None
        job.end_time = self.world.now
        job.set_state("completed", self.world.now)

    def _arm_wall_clock(self, job: Job) -> None:
        raw = job.spec.get("constraints", {}).get("maxWallClockTime")
        if raw is None or job.state != "active":
            return
        if job.event is not None:
            job.event.cancel()
        deadline = job.created + parse_duration(str(raw))
        job.event = self.world.timeline.at(
            deadline, lambda: self._terminate(job, "MaxWallClockTimeExpiry")
        )

    def _task_completed(self, job: Job) -> None:
        if (
            job.state == "active"
            and job.spec.get("onAllTasksComplete") == "terminatejob"
            and job.tasks
            and all(t.state == "completed" for t in job.tasks.values())
        ):
            self._terminate(job, "AllTasksComplete")

    def _gone(self, job: Job) -> None:
        self.world.jobs.pop(key(job.id), None)


def check_not_deleting(job: Job) -> None:
    if job.state == "deleting":
        raise conflict(
            "JobBeingDeleted",
            "The specified job has been marked for deletion and is being garbage collected.",
        )


def check_mutable(job: Job) -> None:
    """Updates, terminations and new tasks need a job that is neither deleted nor done."""
    check_not_deleting(job)
    if job.state == "completed":
        raise conflict("JobCompleted", "The specified job is already in a completed state.")
