"""Response bodies: the emulator's objects as the spec's `BatchPool`, `BatchJob`, ….

Batch echoes what the client set and fills in its own defaults (a task's constraints
always come back with `maxWallClockTime`, `retentionTime` and `maxTaskRetryCount`; a job
always has `priority`, `maxParallelTasks`, `onAllTasksComplete`, …), so a client that
reads its objects back sees the same shapes as against the service. Only properties the
spec defines are emitted (the conformance checks reject anything else), which is why
`odata.metadata`, present in real responses but absent from the spec, is left out.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from ._errors import BatchApiError
from ._model import Job, Node, Pool, Task
from ._tasks import FileEntry
from ._wire import UNLIMITED_DURATION, iso

NODE_AGENT_VERSION = "1.12.6"


def _url(base: str, *parts: str) -> str:
    return base + "".join("/" + quote(p, safe="") for p in parts)


def pool_url(base: str, pool_id: str) -> str:
    return _url(base, "pools", pool_id)


def job_url(base: str, job_id: str) -> str:
    return _url(base, "jobs", job_id)


def task_url(base: str, job_id: str, task_id: str) -> str:
    return _url(base, "jobs", job_id, "tasks", task_id)


def file_url(base: str, job_id: str, task_id: str, name: str) -> str:
    return _url(base, "jobs", job_id, "tasks", task_id, "files", name)


def pool(base: str, p: Pool) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in p.spec.items() if k not in ("id",)}
    body.update(
        id=p.id,
        url=pool_url(base, p.id),
        eTag=p.etag,
        lastModified=iso(p.last_modified),
        creationTime=iso(p.created),
        state=p.state,
        stateTransitionTime=iso(p.state_since),
        allocationState=p.allocation_state,
        allocationStateTransitionTime=iso(p.allocation_since),
        resizeTimeout=body.get("resizeTimeout", "PT15M"),
        currentDedicatedNodes=sum(1 for n in p.nodes.values() if n.dedicated),
        currentLowPriorityNodes=sum(1 for n in p.nodes.values() if not n.dedicated),
        targetDedicatedNodes=p.target_dedicated,
        targetLowPriorityNodes=p.target_low_priority,
        enableAutoScale=False,
        enableInterNodeCommunication=body.get("enableInterNodeCommunication", False),
        taskSlotsPerNode=p.slots_per_node,
        taskSchedulingPolicy=body.get("taskSchedulingPolicy", {"nodeFillType": "spread"}),
    )
    if p.resize_errors and p.allocation_state == "steady":
        body["resizeErrors"] = [dict(e) for e in p.resize_errors]
    if p.identities:
        body["identity"] = {
            "type": "UserAssigned",
            "userAssignedIdentities": [{"resourceId": r, **identity_ids(r)} for r in p.identities],
        }
    return body


def identity_ids(resource_id: str) -> dict[str, str]:
    """A user-assigned identity's client and principal ids: stable GUIDs made from its
    resource id (Azure makes them when the identity is created)."""
    return {
        "clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"client:{resource_id.lower()}")),
        "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal:{resource_id.lower()}")),
    }


def node(base: str, n: Node, world_jobs: dict[str, Job], vm_size: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": n.id,
        "url": _url(base, "pools", n.pool_id, "nodes", n.id),
        "state": n.state,
        "schedulingState": "enabled",
        "stateTransitionTime": iso(n.state_since),
        "allocationTime": iso(n.allocated),
        "ipAddress": n.ip,
        "affinityId": f"TVM:{n.id}",
        "vmSize": vm_size,
        "totalTasksRun": n.total_run,
        "runningTasksCount": len(n.running),
        "runningTaskSlotsCount": n.used_slots(),
        "totalTasksSucceeded": n.total_succeeded,
        "isDedicated": n.dedicated,
        "nodeAgentInfo": {"version": NODE_AGENT_VERSION, "lastUpdateTime": iso(n.allocated)},
    }
    if n.booted is not None:
        body["lastBootTime"] = iso(n.booted)
    if n.errors:
        body["errors"] = [dict(e) for e in n.errors]
    if n.start_task_info is not None:
        body["startTaskInfo"] = dict(n.start_task_info)
    recent = []
    for job_key, task_key in n.running:
        job = world_jobs.get(job_key)
        task = None if job is None else job.tasks.get(task_key)
        if job is not None and task is not None:
            recent.append(
                {
                    "taskUrl": task_url(base, job.id, task.id),
                    "jobId": job.id,
                    "taskId": task.id,
                    "taskState": task.state,
                }
            )
    if recent:
        body["recentTasks"] = recent
    return body


def job(base: str, j: Job) -> dict[str, Any]:
    body: dict[str, Any] = dict(j.spec)
    constraints = {"maxWallClockTime": UNLIMITED_DURATION, "maxTaskRetryCount": 0}
    constraints.update(j.spec.get("constraints", {}))
    execution: dict[str, Any] = {"startTime": iso(j.created)}
    if j.pool_id is not None:
        execution["poolId"] = j.pool_id
    if j.end_time is not None:
        execution["endTime"] = iso(j.end_time)
    if j.terminate_reason is not None:
        execution["terminateReason"] = j.terminate_reason
    body.update(
        id=j.id,
        url=job_url(base, j.id),
        eTag=j.etag,
        lastModified=iso(j.last_modified),
        creationTime=iso(j.created),
        state=j.state,
        stateTransitionTime=iso(j.state_since),
        priority=j.priority,
        allowTaskPreemption=j.spec.get("allowTaskPreemption", False),
        maxParallelTasks=j.max_parallel,
        usesTaskDependencies=j.spec.get("usesTaskDependencies", False),
        constraints=constraints,
        onAllTasksComplete=j.spec.get("onAllTasksComplete", "noaction"),
        onTaskFailure=j.spec.get("onTaskFailure", "noaction"),
        executionInfo=execution,
    )
    if j.previous_state is not None and j.previous_since is not None:
        body.update(
            previousState=j.previous_state, previousStateTransitionTime=iso(j.previous_since)
        )
    return body


def task(base: str, t: Task) -> dict[str, Any]:
    body: dict[str, Any] = dict(t.spec)
    constraints = {
        "maxWallClockTime": UNLIMITED_DURATION,
        "retentionTime": "P7D",
        "maxTaskRetryCount": 0,
    }
    constraints.update(t.spec.get("constraints", {}))
    body.update(
        id=t.id,
        url=task_url(base, t.job_id, t.id),
        eTag=t.etag,
        lastModified=iso(t.last_modified),
        creationTime=iso(t.created),
        state=t.state,
        stateTransitionTime=iso(t.state_since),
        constraints=constraints,
        requiredSlots=t.required_slots,
    )
    if t.previous_state is not None and t.previous_since is not None:
        body.update(
            previousState=t.previous_state, previousStateTransitionTime=iso(t.previous_since)
        )
    if t.ever_ran or t.retry_count or t.requeue_count or t.state == "completed":
        body["executionInfo"] = execution_info(t)
    if t.node is not None:
        pool_id, node_id = t.node
        body["nodeInfo"] = {
            "affinityId": f"TVM:{node_id}",
            "nodeUrl": _url(base, "pools", pool_id, "nodes", node_id),
            "poolId": pool_id,
            "nodeId": node_id,
            "taskRootDirectory": f"workitems/{t.job_id}/job-1/{t.id}",
            "taskRootDirectoryUrl": _url(base, "jobs", t.job_id, "tasks", t.id, "files"),
        }
    return body


def execution_info(t: Task) -> dict[str, Any]:
    info: dict[str, Any] = {"retryCount": t.retry_count, "requeueCount": t.requeue_count}
    optional = {
        "startTime": None if t.start_time is None else iso(t.start_time),
        "endTime": None if t.end_time is None else iso(t.end_time),
        "exitCode": t.exit_code,
        "result": t.result,
        "failureInfo": t.failure_info,
        "lastRetryTime": None if t.last_retry is None else iso(t.last_retry),
        "lastRequeueTime": None if t.last_requeue is None else iso(t.last_requeue),
    }
    info.update({k: v for k, v in optional.items() if v is not None})
    return info


def add_result(
    base: str, job_id: str, result: dict[str, Any], rid: str, now: float
) -> dict[str, Any]:
    """One `BatchTaskCreateResult` of an addtaskcollection answer."""
    out: dict[str, Any] = {"status": result["status"], "taskId": result["taskId"]}
    if "task" in result:
        t: Task = result["task"]
        out.update(
            eTag=t.etag,
            lastModified=iso(t.last_modified),
            location=task_url(base, job_id, t.id),
        )
    else:
        error: BatchApiError = result["error"]
        out["error"] = error.body(rid, now)
    return out


def node_file(base: str, job_id: str, task_id: str, entry: FileEntry) -> dict[str, Any]:
    f = entry.file
    return {
        "name": entry.name,
        "url": file_url(base, job_id, task_id, entry.name),
        "isDirectory": entry.is_directory,
        "properties": {
            "creationTime": iso(f.created),
            "lastModified": iso(f.modified),
            "contentLength": str(0 if entry.is_directory else len(f.content)),
            "contentType": "application/octet-stream",
            "fileMode": "0o40755" if entry.is_directory else "0o100644",
        },
    }
