"""The control API the soak drives a standalone emulator with: task identities, Spot nodes
coming back, and faults that hit a share of the requests until they are cleared."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError

from tests.batch_emulator import BatchEmulator
from tests.batch_emulator.fixtures import client_for

from .helpers import add_tasks, job_options, prepare, ready_pool


async def control(emulator: BatchEmulator, method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{emulator.endpoint}/_emulator/{path}", json=body) as reply,
    ):
        assert reply.status == 200, await reply.text()
        return await reply.json()


async def test_a_task_added_again_under_its_old_id_has_a_new_seq(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=1)
    await batch_client.create_job(job_options())
    await add_tasks(batch_client, "job-1", ["a"])
    prepare(batch_emulator)
    first = (await control(batch_emulator, "GET", "tasks"))["job-1"]["a"]
    assert first["state"] == "running"
    await batch_client.delete_task("job-1", "a")
    await add_tasks(batch_client, "job-1", ["a"])
    prepare(batch_emulator)
    again = (await control(batch_emulator, "GET", "tasks"))["job-1"]["a"]
    assert again["state"] == "running"
    assert again["seq"] != first["seq"]


async def test_preempted_spot_nodes_recover_on_request(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator, dedicated=0, spot=2)
    preempted = await control(batch_emulator, "POST", "preempt", {"poolId": "pool-1"})
    assert len(preempted["nodeIds"]) == 2
    body = {"poolId": "pool-1", "nodeIds": [*preempted["nodeIds"], "no-such-node"]}
    recovered = await control(batch_emulator, "POST", "recover", body)
    assert recovered["nodeIds"] == preempted["nodeIds"]  # an unknown node is skipped
    batch_emulator.advance(10)
    states = [n.state async for n in batch_client.list_nodes("pool-1")]
    assert states == [m.BatchNodeState.IDLE] * 2


async def test_a_fault_with_a_probability_lasts_until_the_faults_are_cleared(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    body = {"fault": "internal_error", "probability": 1.0, "seed": 3}
    await control(batch_emulator, "POST", "faults", body)
    for _ in range(3):
        with pytest.raises(HttpResponseError) as caught:
            await batch_client.get_job("job-1")
        assert caught.value.status_code == 500
    await control(batch_emulator, "DELETE", "faults")
    with pytest.raises(HttpResponseError) as caught:
        await batch_client.get_job("job-1")
    assert caught.value.status_code == 404  # the request reached the emulator again


async def test_the_request_log_times_each_request_and_names_its_path(
    make_batch_emulator: Any,
) -> None:
    emulator: BatchEmulator = await make_batch_emulator(request_log=True)
    async with client_for(emulator) as client:
        before = time.monotonic()
        await client.create_job(job_options())
        await add_tasks(client, "job-1", ["a"])
        after = time.monotonic()
    log = await control(emulator, "GET", "requests")
    assert [(r[2], r[3], r[4]) for r in log["requests"]] == [
        ("Jobs_CreateJob", "/jobs", 201),
        ("Tasks_CreateTaskCollection", "/jobs/job-1/addtaskcollection", 200),
    ]
    assert all(before <= r[0] <= r[1] <= after for r in log["requests"])
    assert (await control(emulator, "GET", "requests?since=1"))["requests"] == log["requests"][1:]
    await control(emulator, "DELETE", "requests")
    assert (await control(emulator, "GET", "requests"))["requests"] == []


async def test_the_request_log_names_method_and_user_agent_and_picks_out_writes(
    make_batch_emulator: Any,
) -> None:
    """Tell controllers apart by User-Agent; a refused write still counts as sent."""
    emulator: BatchEmulator = await make_batch_emulator(request_log=True)
    lease = "/jobs/simfleet-lease-default"
    async with (
        client_for(emulator, user_agent="simfleet-holder/a") as a,
        client_for(emulator, user_agent="simfleet-holder/b") as b,
    ):
        await a.create_job(job_options("simfleet-lease-default", "no-pool"))
        stale = (await a.get_job("simfleet-lease-default")).etag
        update = m.BatchJobUpdateOptions(metadata=[m.BatchMetadataItem(name="h", value="a")])
        await a.update_job(
            "simfleet-lease-default",
            update,
            etag=stale,
            match_condition=MatchConditions.IfNotModified,
        )
        with pytest.raises(HttpResponseError):
            await b.update_job(
                "simfleet-lease-default",
                update,
                etag=stale,
                match_condition=MatchConditions.IfNotModified,
            )
        with pytest.raises(HttpResponseError):
            await b.pool_exists("no-pool")  # HEAD: a read
        await b.get_job("simfleet-lease-default")

    log = emulator.requests
    assert [(e.method, e.user_agent.split()[0]) for e in log.entries] == [
        ("POST", "simfleet-holder/a"),
        ("GET", "simfleet-holder/a"),
        ("PATCH", "simfleet-holder/a"),
        ("PATCH", "simfleet-holder/b"),
        ("HEAD", "simfleet-holder/b"),
        ("GET", "simfleet-holder/b"),
    ]
    assert all("azsdk-python-batch/" in e.user_agent for e in log.entries)
    assert [(e.operation, e.outcome) for e in log.writes(agent="simfleet-holder/b")] == [
        ("Jobs_UpdateJob", 412)
    ]
    assert [e.path for e in log.writes(agent="simfleet-holder/a")] == ["/jobs", lease]
    assert len(log.writes(path_prefix=lease)) == 2
    assert log.writes(path_prefix="/pools/") == []
    counts = {(agent.split()[0], path): n for (agent, path), n in log.write_counts().items()}
    assert counts == {
        ("simfleet-holder/a", "/jobs"): 1,
        ("simfleet-holder/a", lease): 1,
        ("simfleet-holder/b", lease): 1,
    }
    over_http = (await control(emulator, "GET", "requests"))["requests"]
    assert [(r[5], r[6]) for r in over_http] == [(e.method, e.user_agent) for e in log.entries]


async def test_without_request_log_nothing_is_kept(batch_emulator: BatchEmulator) -> None:
    async with client_for(batch_emulator) as client:
        await client.create_job(job_options())
    assert (await control(batch_emulator, "GET", "requests")) == {"next": 0, "requests": []}


async def test_latency_set_over_http_delays_the_named_operations(
    batch_emulator: BatchEmulator,
) -> None:
    await control(
        batch_emulator, "POST", "latency", {"seconds": 0.25, "operations": ["Jobs_CreateJob"]}
    )
    assert batch_emulator.faults.delay_for("Jobs_CreateJob") == 0.25
    assert batch_emulator.faults.delay_for("Pools_ListPools") == 0.0
    await control(batch_emulator, "POST", "latency", {"seconds": 0})
    assert batch_emulator.faults.delay_for("Jobs_CreateJob") == 0.0
