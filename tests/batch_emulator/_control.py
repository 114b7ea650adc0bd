"""An HTTP control surface under `/_emulator/`, for emulators running in another process.

In-process tests call the `BatchEmulator` methods directly. A standalone emulator
(`python -m tests.batch_emulator`) serves the same controls as small JSON endpoints,
unauthenticated and on loopback only, outside the Batch URL space:

    GET    /_emulator/state        clock, pools, jobs, counters, requeued (by cause), violations
    GET    /_emulator/tasks        job → task → {"state", "seq"}; ``seq`` is unique per task
                                   ever added, so a task re-added under an old id is told apart
    POST   /_emulator/advance      {"seconds": 30}
    POST   /_emulator/speed        {"speed": 60}
    POST   /_emulator/finish-task  {"jobId", "taskId", "exitCode", "stdout", "stderr",
                                    "failureCode"}
    POST   /_emulator/preempt      {"poolId", "count"} or {"poolId", "nodeIds": [...]}
    POST   /_emulator/recover      {"poolId", "nodeIds": [...]}: preempted, unusable or
                                   start-task-failed nodes boot again
    POST   /_emulator/rules        {"imageContains", "after", "exitCode", "failureCode",
                                    "details": {name: value}, ...}
    POST   /_emulator/broken-images {"imageContains", "code", "detail"}: pulls fail (tasks,
                                   and nodes prefetching it turn unusable)
    POST   /_emulator/unusable     {"poolId", "count" or "nodeIds", "code", "message",
                                    "details": {name: value}}: nodes turn unusable
    POST   /_emulator/start-task   {"poolId", "exitCode"}: the pool's start task fails
    POST   /_emulator/faults       {"fault": "throttle"|"server_busy"|"internal_error"|"drop",
                                    "times", "operations", "retryAfter", "afterProcessing"};
                                   with "probability" (and "seed") instead of "times": that
                                   share of matching requests fails until DELETE
    DELETE /_emulator/faults       remove all faults
    DELETE /_emulator/counters     reset request counters
    POST   /_emulator/latency      {"seconds": 0.01, "operations": [...]}: wall seconds added
                                   to every (matching) request; 0 removes it
    GET    /_emulator/requests     ?since=N: the timed request log from entry N on (with
                                   ``request_log`` on), {"next": entries so far (the N of
                                   the next read), "requests": [[arrived,
                                   answered, operationId, path, outcome, method,
                                   userAgent], ...]}; monotonic seconds, comparable with
                                   ``time.monotonic()`` on the host
    DELETE /_emulator/requests     forget the logged requests
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._behaviour import TaskRule
from ._errors import BatchApiError
from ._faults import Fault

if TYPE_CHECKING:
    from ._emulator import BatchEmulator

PREFIX = "/_emulator"


def add_control_routes(app: web.Application, emulator: BatchEmulator) -> None:
    async def body(request: web.Request) -> dict[str, Any]:
        data = await request.json() if request.can_read_body else {}
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return data

    def done(**extra: Any) -> web.Response:
        return web.json_response({"ok": True, **extra})

    async def state(_: web.Request) -> web.Response:
        emulator.sync()
        snapshot = emulator.state.world.snapshot()
        counters = {
            op: {str(k): v for k, v in out.items()}
            for op, out in emulator.counters.by_operation().items()
        }
        return web.json_response(
            {
                **snapshot,
                "counters": counters,
                "requeued": dict(emulator.state.pools.requeued),
                "violations": [str(v) for v in emulator.violations],
                "earlyArrivals": [
                    [a.operation, a.early_by] for a in emulator.faults.early_arrivals
                ],
            }
        )

    async def tasks(_: web.Request) -> web.Response:
        emulator.sync()
        return web.json_response(
            {
                job.id: {t.id: {"state": t.state, "seq": t.seq} for t in job.tasks.values()}
                for job in emulator.state.world.jobs.values()
            }
        )

    async def advance(request: web.Request) -> web.Response:
        emulator.advance(float((await body(request))["seconds"]))
        return done(now=emulator.now)

    async def speed(request: web.Request) -> web.Response:
        emulator.set_speed(float((await body(request))["speed"]))
        return done()

    async def finish(request: web.Request) -> web.Response:
        data = await body(request)
        try:
            emulator.finish_task(
                data["jobId"],
                data["taskId"],
                exit_code=data.get("exitCode", 0),
                stdout=data.get("stdout", ""),
                stderr=data.get("stderr", ""),
                failure_code=data.get("failureCode"),
            )
        except ValueError as error:
            raise web.HTTPConflict(text=str(error)) from None
        return done()

    async def preempt(request: web.Request) -> web.Response:
        data = await body(request)
        nodes = emulator.preempt(
            data["poolId"], node_ids=data.get("nodeIds"), count=data.get("count")
        )
        return done(nodeIds=nodes)

    async def recover(request: web.Request) -> web.Response:
        data = await body(request)
        recovered = []
        for node_id in data["nodeIds"]:
            try:
                emulator.recover_node(data["poolId"], node_id)
            except (KeyError, BatchApiError):
                continue  # the node left the pool (resized away) or the pool is gone
            recovered.append(node_id)
        return done(nodeIds=recovered)

    async def rules(request: web.Request) -> web.Response:
        data = await body(request)
        emulator.add_rule(
            TaskRule(
                image_contains=data.get("imageContains"),
                command_contains=data.get("commandContains"),
                task_id_prefix=data.get("taskIdPrefix"),
                after=float(data.get("after", 0)),
                exit_code=data.get("exitCode", 0),
                failure_code=data.get("failureCode"),
                failure_message=data.get("failureMessage", ""),
                stdout=data.get("stdout", ""),
                stderr=data.get("stderr", ""),
                details=tuple(dict(data.get("details", {})).items()),
            )
        )
        return done()

    async def broken_images(request: web.Request) -> web.Response:
        data = await body(request)
        try:
            emulator.break_image(
                data["imageContains"],
                code=data.get("code", "ContainerInvalidImage"),
                detail=data.get("detail", ""),
            )
        except ValueError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        return done()

    async def unusable(request: web.Request) -> web.Response:
        data = await body(request)
        extra = {k: data[k] for k in ("code", "message") if k in data}
        try:
            nodes = emulator.make_unusable(
                data["poolId"],
                details=data.get("details"),
                node_ids=data.get("nodeIds"),
                count=data.get("count"),
                **extra,
            )
        except ValueError as error:
            raise web.HTTPConflict(text=str(error)) from None
        return done(nodeIds=nodes)

    async def start_task(request: web.Request) -> web.Response:
        data = await body(request)
        try:
            emulator.fail_start_tasks(data["poolId"], exit_code=int(data.get("exitCode", 1)))
        except ValueError as error:
            raise web.HTTPConflict(text=str(error)) from None
        return done()

    async def faults(request: web.Request) -> web.Response:
        data = await body(request)
        after = bool(data.get("afterProcessing", False))
        retry_after = float(data.get("retryAfter", 1))
        makers = {
            "throttle": lambda: Fault.throttle(retry_after=retry_after),
            "server_busy": lambda: Fault.server_busy(retry_after=retry_after),
            "internal_error": lambda: Fault.internal_error(after_processing=after),
            "drop": lambda: Fault.drop(after_processing=after),
        }
        if data.get("fault") not in makers:
            raise web.HTTPBadRequest(text=f"fault must be one of {sorted(makers)}")
        if "probability" in data:
            emulator.faults.random(
                makers[data["fault"]](),
                probability=float(data["probability"]),
                seed=int(data.get("seed", 0)),
                operations=data.get("operations"),
            )
        else:
            emulator.faults.inject(
                makers[data["fault"]](),
                times=int(data.get("times", 1)),
                operations=data.get("operations"),
            )
        return done()

    async def clear_faults(_: web.Request) -> web.Response:
        emulator.faults.clear()
        return done()

    async def reset_counters(_: web.Request) -> web.Response:
        emulator.counters.reset()
        return done()

    async def latency(request: web.Request) -> web.Response:
        data = await body(request)
        operations = data.get("operations")
        emulator.faults.latency = float(data["seconds"])
        emulator.faults.latency_operations = None if operations is None else frozenset(operations)
        return done()

    async def requests(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        entries = emulator.requests.since(since)
        return web.json_response(
            {"next": len(emulator.requests), "requests": [list(e) for e in entries]}
        )

    async def clear_requests(_: web.Request) -> web.Response:
        emulator.requests.clear()
        return done()

    app.router.add_get(f"{PREFIX}/state", state)
    app.router.add_get(f"{PREFIX}/tasks", tasks)
    app.router.add_post(f"{PREFIX}/advance", advance)
    app.router.add_post(f"{PREFIX}/speed", speed)
    app.router.add_post(f"{PREFIX}/finish-task", finish)
    app.router.add_post(f"{PREFIX}/preempt", preempt)
    app.router.add_post(f"{PREFIX}/recover", recover)
    app.router.add_post(f"{PREFIX}/rules", rules)
    app.router.add_post(f"{PREFIX}/broken-images", broken_images)
    app.router.add_post(f"{PREFIX}/unusable", unusable)
    app.router.add_post(f"{PREFIX}/start-task", start_task)
    app.router.add_post(f"{PREFIX}/faults", faults)
    app.router.add_delete(f"{PREFIX}/faults", clear_faults)
    app.router.add_delete(f"{PREFIX}/counters", reset_counters)
    app.router.add_post(f"{PREFIX}/latency", latency)
    app.router.add_get(f"{PREFIX}/requests", requests)
    app.router.add_delete(f"{PREFIX}/requests", clear_requests)
