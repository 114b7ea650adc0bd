"""The emulator against BatchService.json: route coverage and the validator itself.

Every test in this folder already runs with the conformance audit on (the fixture fails a
test whose requests or answers break the spec); these tests check the audit's own teeth
and list which of the spec's operations the emulator serves.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch.aio import BatchClient
from azure.core.exceptions import HttpResponseError

from tests.batch_emulator import BatchEmulator
from tests.batch_emulator._app import HANDLERS
from tests.batch_emulator._conformance import describe, schema_book
from tests.batch_emulator._spec import load_spec
from tests.batch_emulator.fixtures import client_for

from .helpers import pool_options

# What simfleet's Azure backend uses (issue 3): these must exist.
REQUIRED = {
    "Pools_CreatePool", "Pools_GetPool", "Pools_ListPools", "Pools_UpdatePool", "Pools_ResizePool",
    "Pools_StopPoolResize", "Pools_DeletePool", "Pools_RemoveNodes", "Nodes_ListNodes",
    "Jobs_CreateJob", "Jobs_GetJob", "Jobs_ListJobs", "Jobs_UpdateJob", "Jobs_TerminateJob",
    "Jobs_DeleteJob", "Jobs_GetJobTaskCounts",
    "Tasks_CreateTask", "Tasks_CreateTaskCollection", "Tasks_ListTasks", "Tasks_GetTask",
    "Tasks_TerminateTask", "Tasks_ReactivateTask", "Tasks_DeleteTask", "Tasks_ListTaskFiles",
    "Tasks_GetTaskFile", "Tasks_GetTaskFileProperties",
}  # fmt: skip


def test_routes_against_the_spec_paths() -> None:
    spec = load_spec()
    assert (len(spec.templates), len(spec.operations)) == (51, 72)
    assert set(HANDLERS) <= set(spec.by_id), "every route must be a spec operation"
    missing = REQUIRED - set(HANDLERS)
    assert not missing, f"required operations not served: {sorted(missing)}"

    lines = []
    covered = 0
    for template in spec.templates:
        ops = [op for op in spec.operations if op.template == template]
        served = [f"{op.method} {op.operation_id}" for op in ops if op.operation_id in HANDLERS]
        covered += bool(served)
        mark = "x" if served else " "
        lines.append(f"[{mark}] {template:58} {', '.join(served)}")
    print("\n".join(lines))
    print(f"{covered}/51 path templates, {len(HANDLERS)}/72 operations served")
    assert (covered, len(HANDLERS)) == (19, 32)


def _response_errors(definition: str, instance: Any) -> list[str]:
    book = schema_book(load_spec())
    return [
        describe(e)
        for e in book.errors({"$ref": f"#/definitions/{definition}"}, instance, request=False)
    ]


def _request_errors(definition: str, instance: Any) -> list[str]:
    book = schema_book(load_spec())
    return [
        describe(e)
        for e in book.errors({"$ref": f"#/definitions/{definition}"}, instance, request=True)
    ]


def test_unknown_properties_are_rejected_in_responses() -> None:
    counts = {"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0}
    ok = {"taskCounts": counts, "taskSlotCounts": counts}
    assert _response_errors("BatchTaskCountsResult", ok) == []
    assert _response_errors("BatchTaskCountsResult", {**ok, "odata.metadata": "x"}) == [
        "(root): Additional properties are not allowed ('odata.metadata' was unexpected)"
    ]
    nested = {**ok, "taskCounts": {**counts, "preparing": 0}}
    assert len(_response_errors("BatchTaskCountsResult", nested)) == 1


def test_read_only_properties_are_rejected_in_requests_only() -> None:
    task = {"constraints": {"maxTaskRetryCount": 1}}
    assert _request_errors("BatchTask", task) == []
    assert _request_errors("BatchTask", {**task, "state": "active"}) != []
    assert _response_errors("BatchTask", {**task, "state": "active"}) == []


@pytest.mark.parametrize(
    ("instance", "problem"),
    [
        ({"state": "Active"}, "is not one of"),  # enum values are lowercase on the wire
        ({"creationTime": "yesterday"}, "is not a 'date-time'"),
        ({"constraints": {"maxWallClockTime": "5 minutes"}}, "is not a 'duration'"),
        ({"requiredSlots": 2**31}, "is greater than the maximum"),
        ({"url": "not a url"}, "is not a 'uri'"),
        ({"executionInfo": {"retryCount": 0}}, "'requeueCount' is a required property"),
    ],
)
def test_formats_enums_and_required(instance: dict[str, Any], problem: str) -> None:
    errors = _response_errors("BatchTask", instance)
    assert len(errors) == 1, errors
    assert problem in errors[0]


async def test_the_audit_catches_a_response_that_breaks_the_spec(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_pool(pool_options())
    batch_emulator.state.world.pool("pool-1").spec["colour"] = "blue"  # leaks into GET
    await batch_client.get_pool("pool-1")
    [violation] = batch_emulator.take_violations()
    assert (violation.direction, violation.operation, violation.status) == (
        "response",
        "Pools_GetPool",
        200,
    )
    assert "'colour' was unexpected" in str(violation)


async def test_an_emulator_bug_is_a_violation_not_a_silent_500(
    batch_emulator: BatchEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ctx: object) -> object:
        raise KeyError("oops")

    monkeypatch.setitem(HANDLERS, "Jobs_ListJobs", broken)
    async with client_for(batch_emulator, retry_total=0) as client:
        with pytest.raises(HttpResponseError) as caught:
            [_ async for _ in client.list_jobs()]
    assert (caught.value.status_code, caught.value.error.code) == (500, "InternalError")
    [violation] = batch_emulator.take_violations()
    assert (violation.direction, violation.operation) == ("emulator", "Jobs_ListJobs")
