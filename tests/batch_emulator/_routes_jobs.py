"""Handlers for job, task and task-file operations, keyed by the spec's operationIds."""

from __future__ import annotations

import re

from . import _render as render
from ._errors import BatchApiError
from ._http import Ctx, Handler, Reply, list_reply, single_reply
from ._model import Job, Task
from ._tasks import FileEntry
from ._wire import rfc1123

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _job(ctx: Ctx) -> Job:
    return ctx.account.world.job(ctx.path["jobId"])


def _task(ctx: Ctx) -> tuple[Job, Task]:
    return ctx.account.world.find_task(ctx.path["jobId"], ctx.path["taskId"])


def _job_written(ctx: Ctx, job: Job, status: int) -> Reply:
    url = render.job_url(ctx.base_url, job.id)
    return Reply(status, etag=job.etag, last_modified=job.last_modified, data_service_id=url)


def _task_written(ctx: Ctx, job: Job, task: Task, status: int) -> Reply:
    url = render.task_url(ctx.base_url, job.id, task.id)
    return Reply(status, etag=task.etag, last_modified=task.last_modified, data_service_id=url)


# -- jobs -------------------------------------------------------------------------------


def list_jobs(ctx: Ctx) -> Reply:
    jobs = ctx.account.world.jobs.values()
    return list_reply(ctx, [(j.order, render.job(ctx.base_url, j)) for j in jobs])


def create_job(ctx: Ctx) -> Reply:
    return _job_written(ctx, ctx.account.jobs.create(ctx.body), 201)


def get_job(ctx: Ctx) -> Reply:
    job = _job(ctx)
    ctx.check_preconditions(job.etag, job.last_modified)
    body = render.job(ctx.base_url, job)
    return single_reply(ctx, body, etag=job.etag, last_modified=job.last_modified)


def update_job(ctx: Ctx) -> Reply:
    job = _job(ctx)
    ctx.check_preconditions(job.etag, job.last_modified)
    ctx.account.jobs.update(job, ctx.body, replace=ctx.op.method == "PUT")
    return _job_written(ctx, job, 200)


def delete_job(ctx: Ctx) -> Reply:
    job = _job(ctx)
    ctx.check_preconditions(job.etag, job.last_modified)
    ctx.account.jobs.delete(job)
    return Reply(202)


def terminate_job(ctx: Ctx) -> Reply:
    job = _job(ctx)
    ctx.check_preconditions(job.etag, job.last_modified)
    reason = (ctx.body or {}).get("terminateReason")
    ctx.account.jobs.terminate(job, reason)
    return _job_written(ctx, job, 202)


def task_counts(ctx: Ctx) -> Reply:
    job = _job(ctx)
    body = ctx.account.counts.of(job, ctx.now)
    return Reply(200, body, etag=job.etag, last_modified=job.last_modified)


# -- tasks ------------------------------------------------------------------------------


def create_task(ctx: Ctx) -> Reply:
    job = _job(ctx)
    task = ctx.account.tasks.add(job, ctx.body)
    return _task_written(ctx, job, task, 201)


def create_task_collection(ctx: Ctx) -> Reply:
    job = _job(ctx)
    results = ctx.account.tasks.add_collection(job, ctx.body["value"])
    values = [render.add_result(ctx.base_url, job.id, r, ctx.request_id, ctx.now) for r in results]
    return Reply(200, {"value": values}, etag=job.etag, last_modified=job.last_modified)


def list_tasks(ctx: Ctx) -> Reply:
    tasks = _job(ctx).tasks.values()
    return list_reply(ctx, [(t.order, render.task(ctx.base_url, t)) for t in tasks])


def get_task(ctx: Ctx) -> Reply:
    job, task = _task(ctx)
    ctx.check_preconditions(task.etag, task.last_modified)
    reply = single_reply(ctx, render.task(ctx.base_url, task))
    reply.etag, reply.last_modified = task.etag, task.last_modified
    reply.data_service_id = render.task_url(ctx.base_url, job.id, task.id)
    return reply


def replace_task(ctx: Ctx) -> Reply:
    job, task = _task(ctx)
    ctx.check_preconditions(task.etag, task.last_modified)
    ctx.account.tasks.replace(job, task, ctx.body)
    return _task_written(ctx, job, task, 200)


def delete_task(ctx: Ctx) -> Reply:
    job, task = _task(ctx)
    ctx.check_preconditions(task.etag, task.last_modified)
    ctx.account.tasks.delete(job, task)
    return Reply(200)


def terminate_task(ctx: Ctx) -> Reply:
    job, task = _task(ctx)
    ctx.check_preconditions(task.etag, task.last_modified)
    ctx.account.tasks.terminate(job, task)
    return _task_written(ctx, job, task, 204)


def reactivate_task(ctx: Ctx) -> Reply:
    job, task = _task(ctx)
    ctx.check_preconditions(task.etag, task.last_modified)
    ctx.account.tasks.reactivate(job, task)
    return _task_written(ctx, job, task, 204)


# -- task files -------------------------------------------------------------------------


def list_task_files(ctx: Ctx) -> Reply:
    job, task = _task(ctx)
    entries = ctx.account.tasks.files(task, recursive=ctx.flag("recursive"))
    items = [(i, render.node_file(ctx.base_url, job.id, task.id, e)) for i, e in enumerate(entries)]
    return list_reply(ctx, items)


def _file_headers(ctx: Ctx, job: Job, task: Task, entry: FileEntry) -> dict[str, str]:
    return {
        "ocp-creation-time": rfc1123(entry.file.created),
        "ocp-batch-file-isdirectory": str(entry.is_directory).lower(),
        "ocp-batch-file-url": render.file_url(ctx.base_url, job.id, task.id, entry.name),
        "ocp-batch-file-mode": "0o40755" if entry.is_directory else "0o100644",
        "Content-Type": "application/octet-stream",
    }


def _file_reply(ctx: Ctx, entry: FileEntry, data: bytes, headers: dict[str, str]) -> Reply:
    modified = entry.file.modified
    etag = f"0x{int(modified * 10_000_000):X}"
    return Reply(200, raw=data, headers=headers, etag=etag, last_modified=modified)


def get_task_file(ctx: Ctx) -> Reply:
    job, task = _task(ctx)
    entry = ctx.account.tasks.file(task, ctx.path["filePath"])
    ctx.check_preconditions(None, entry.file.modified)
    data = bytes(entry.file.content)
    wanted = ctx.headers.get("ocp-range")
    if wanted:
        data = _slice(data, wanted)
    return _file_reply(ctx, entry, data, _file_headers(ctx, job, task, entry))


def task_file_properties(ctx: Ctx) -> Reply:
    job, task = _task(ctx)
    entry = ctx.account.tasks.file(task, ctx.path["filePath"])
    ctx.check_preconditions(None, entry.file.modified)
    headers = _file_headers(ctx, job, task, entry)
    headers["Content-Length"] = str(len(entry.file.content))
    return _file_reply(ctx, entry, b"", headers)


def delete_task_file(ctx: Ctx) -> Reply:
    _, task = _task(ctx)
    ctx.account.tasks.delete_file(task, ctx.path["filePath"], recursive=ctx.flag("recursive"))
    return Reply(200)


def _slice(data: bytes, wanted: str) -> bytes:
    """`bytes=a-b` (inclusive), `bytes=a-` or `bytes=-n`; 416 InvalidRange otherwise."""
    match = _RANGE.match(wanted.strip())
    size = len(data)
    if match and (match.group(1) or match.group(2)):
        first, last = match.group(1), match.group(2)
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        else:
            start, end = max(size - int(last), 0), size - 1
        if start < size and start <= end:
            return data[start : end + 1]
    raise BatchApiError(
        416,
        "InvalidRange",
        "The range specified is invalid for the current size of the resource.",
        {"Range": wanted, "ContentLength": str(size)},
    )


HANDLERS: dict[str, Handler] = {
    "Jobs_ListJobs": list_jobs,
    "Jobs_CreateJob": create_job,
    "Jobs_GetJob": get_job,
    "Jobs_UpdateJob": update_job,
    "Jobs_ReplaceJob": update_job,
    "Jobs_DeleteJob": delete_job,
    "Jobs_TerminateJob": terminate_job,
    "Jobs_GetJobTaskCounts": task_counts,
    "Tasks_CreateTask": create_task,
    "Tasks_CreateTaskCollection": create_task_collection,
    "Tasks_ListTasks": list_tasks,
    "Tasks_GetTask": get_task,
    "Tasks_ReplaceTask": replace_task,
    "Tasks_DeleteTask": delete_task,
    "Tasks_TerminateTask": terminate_task,
    "Tasks_ReactivateTask": reactivate_task,
    "Tasks_ListTaskFiles": list_task_files,
    "Tasks_GetTaskFile": get_task_file,
    "Tasks_GetTaskFileProperties": task_file_properties,
    "Tasks_DeleteTaskFile": delete_task_file,
}
