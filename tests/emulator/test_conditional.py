"""Conditional requests through the real SDK: what a lease kept in job metadata relies on.

The lease is a job (`simfleet-lease-<fleet>`) on a pool that does not exist, read with GET
(its ETag) and written with PATCH + `If-Match`. These tests hold the emulator to
BatchService.json and to Batch's page on conditional headers: ETags on every version,
412 `ConditionNotMet` for a stale one, 304 for an unchanged read, the only two header
combinations Batch accepts, exactly one winner among concurrent writers, and metadata
that a PATCH replaces as a whole.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from tests.batch_emulator import BatchEmulator
from tests.batch_emulator.fixtures import EmulatorFactory, client_for

from .helpers import add_tasks, job_options, pool_options

LEASE = "simfleet-lease-default"
NO_POOL = "simfleet-lease-pool-default"  # never created: tasks would wait forever
IF_NOT_MODIFIED = MatchConditions.IfNotModified


def _headers(_: Any, __: Any, headers: dict[str, Any]) -> dict[str, Any]:
    """`cls=` callback: the response headers the SDK parsed, instead of the body."""
    return headers


def _meta(**items: str) -> list[m.BatchMetadataItem]:
    return [m.BatchMetadataItem(name=k, value=v) for k, v in items.items()]


def _as_dict(job: m.BatchJob) -> dict[str, str]:
    return {item.name: item.value for item in job.metadata or []}


async def _lease(client: BatchClient, **metadata: str) -> m.BatchJob:
    await client.create_job(job_options(LEASE, NO_POOL, metadata=_meta(**metadata)))
    return await client.get_job(LEASE)


async def _patch(
    client: BatchClient,
    etag: str | None,
    match: MatchConditions | None = IF_NOT_MODIFIED,
    **md: str,
) -> dict[str, Any]:
    update = m.BatchJobUpdateOptions(metadata=_meta(**md))
    headers: dict[str, Any] = await client.update_job(
        LEASE, update, etag=etag, match_condition=match, cls=_headers
    )
    return headers


# -- ETags and Last-Modified ------------------------------------------------------------


async def test_get_job_answers_etag_and_last_modified_in_headers_and_body(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    created = await batch_client.create_job(job_options(LEASE, NO_POOL), cls=_headers)
    job = await batch_client.get_job(LEASE)
    got: Any = await batch_client.get_job(LEASE, cls=_headers)
    assert job.etag
    assert got["ETag"] == job.etag == created["ETag"]
    assert job.last_modified is not None
    assert got["Last-Modified"] == job.last_modified.replace(microsecond=0)
    assert job.last_modified == job.creation_time


async def test_every_write_answers_a_new_etag_even_within_one_clock_tick(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    """The clock is frozen: an ETag made from the time alone would repeat."""
    job = await _lease(batch_client, holder="a")
    first = await _patch(batch_client, job.etag, holder="b")
    second = await _patch(batch_client, first["ETag"], holder="c")
    replaced: Any = await batch_client.replace_job(
        LEASE,
        m.BatchJob(pool_info=m.BatchPoolInfo(pool_id=NO_POOL), metadata=_meta(holder="d")),
        etag=second["ETag"],
        match_condition=IF_NOT_MODIFIED,
        cls=_headers,
    )
    etags = [job.etag, first["ETag"], second["ETag"], replaced["ETag"]]
    assert len(set(etags)) == 4, etags
    assert first["Last-Modified"] == second["Last-Modified"] == replaced["Last-Modified"]
    now = await batch_client.get_job(LEASE)
    assert (now.etag, _as_dict(now)) == (replaced["ETag"], {"holder": "d"})


# -- If-Match ---------------------------------------------------------------------------


async def test_a_stale_if_match_refuses_patch_put_and_delete(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    stale = (await _lease(batch_client, holder="a")).etag
    current = (await _patch(batch_client, stale, holder="b"))["ETag"]

    with pytest.raises(ResourceModifiedError) as patched:
        await _patch(batch_client, stale, holder="thief")
    with pytest.raises(ResourceModifiedError) as replaced:
        await batch_client.replace_job(
            LEASE,
            m.BatchJob(pool_info=m.BatchPoolInfo(pool_id=NO_POOL)),
            etag=stale,
            match_condition=IF_NOT_MODIFIED,
        )
    with pytest.raises(ResourceModifiedError) as deleted:
        await batch_client.begin_delete_job(LEASE, etag=stale, match_condition=IF_NOT_MODIFIED)
    for caught in (patched, replaced, deleted):
        assert (caught.value.status_code, caught.value.error.code) == (412, "ConditionNotMet")

    job = await batch_client.get_job(LEASE)
    assert (job.state, job.etag, _as_dict(job)) == ("active", current, {"holder": "b"})
    await batch_client.begin_delete_job(LEASE, etag=current, match_condition=IF_NOT_MODIFIED)
    assert (await batch_client.get_job(LEASE)).state == "deleting"


async def test_if_match_star_needs_the_job_to_exist(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    with pytest.raises(ResourceNotFoundError) as star:
        await _patch(batch_client, None, MatchConditions.IfPresent, holder="a")
    # The object is looked up first; azure-batch's exception policy then calls any error
    # on a request with an `If-Match` ETag ResourceModifiedError, even this 404.
    with pytest.raises(HttpResponseError) as missing:
        await _patch(batch_client, "0x8DC0000000000", holder="a")
    for caught in (star, missing):
        assert (caught.value.status_code, caught.value.error.code) == (404, "JobNotFound")
    await _lease(batch_client)
    await _patch(batch_client, None, MatchConditions.IfPresent, holder="a")
    assert _as_dict(await batch_client.get_job(LEASE)) == {"holder": "a"}


async def test_a_jobs_etag_ignores_its_tasks(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    """The spec: a job's lastModified "does not factor in task-level changes"."""
    job = await _lease(batch_client)
    await add_tasks(batch_client, LEASE, ["t1", "t2"])
    await batch_client.terminate_task(LEASE, "t1")
    assert (await batch_client.get_job(LEASE)).etag == job.etag


async def test_quoted_bare_and_listed_etags_match_but_weak_ones_do_not(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    """azure-core quotes the ETag it sends; Batch hands it out bare."""
    etag = (await _lease(batch_client)).etag
    assert etag is not None
    assert not etag.startswith('"')
    update = m.BatchJobUpdateOptions(metadata=_meta(holder="a"))
    with pytest.raises(HttpResponseError) as weak:
        await batch_client.update_job(LEASE, update, headers={"If-Match": f'W/"{etag}"'})
    assert weak.value.status_code == 412
    await batch_client.update_job(LEASE, update, headers={"If-Match": etag})
    etag = (await batch_client.get_job(LEASE)).etag
    await batch_client.update_job(LEASE, update, headers={"If-Match": f'"0x1", "{etag}"'})


async def test_a_stale_if_match_on_a_read_is_412_not_304(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    """Batch's read table: If-Match and If-Unmodified-Since fail with 412."""
    stale = (await _lease(batch_client)).etag
    await _patch(batch_client, stale, holder="b")
    with pytest.raises(ResourceModifiedError) as caught:
        await batch_client.get_job(LEASE, etag=stale, match_condition=IF_NOT_MODIFIED)
    assert (caught.value.status_code, caught.value.error.code) == (412, "ConditionNotMet")


# -- If-None-Match ----------------------------------------------------------------------


async def test_if_none_match_is_304_on_a_read_and_412_on_a_write(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    job = await _lease(batch_client, holder="a")
    # azure-batch's own exception policy raises ResourceModifiedError for a 304 (and
    # ResourceNotFoundError for anything sent with `*`): the status is what counts.
    with pytest.raises(HttpResponseError) as unchanged:
        await batch_client.get_job(LEASE, etag=job.etag, match_condition=MatchConditions.IfModified)
    assert unchanged.value.status_code == 304
    assert unchanged.value.response.headers["ETag"] == job.etag
    with pytest.raises(HttpResponseError) as any_version:  # If-None-Match: *
        await batch_client.get_job(LEASE, match_condition=MatchConditions.IfMissing)
    assert any_version.value.status_code == 304

    with pytest.raises(HttpResponseError) as written:
        await _patch(batch_client, job.etag, MatchConditions.IfModified, holder="b")
    assert (written.value.status_code, written.value.error.code) == (412, "ConditionNotMet")
    with pytest.raises(HttpResponseError) as exists:  # If-None-Match: *
        await _patch(batch_client, None, MatchConditions.IfMissing, holder="b")
    assert (exists.value.status_code, exists.value.error.code) == (412, "ConditionNotMet")

    changed = await _patch(batch_client, job.etag, IF_NOT_MODIFIED, holder="c")
    fresh = await batch_client.get_job(
        LEASE, etag=job.etag, match_condition=MatchConditions.IfModified
    )
    assert (fresh.etag, _as_dict(fresh)) == (changed["ETag"], {"holder": "c"})


# -- If-Modified-Since / If-Unmodified-Since --------------------------------------------


async def test_modified_since_and_unmodified_since_follow_batchs_tables(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    created = await _lease(batch_client)
    batch_emulator.advance(10)
    await _patch(batch_client, created.etag, holder="a")
    job = await batch_client.get_job(LEASE)
    before, at = created.last_modified, job.last_modified
    assert before is not None
    assert at is not None
    assert at - before == datetime.timedelta(seconds=10)

    assert (await batch_client.get_job(LEASE, if_modified_since=before)).etag == job.etag
    with pytest.raises(HttpResponseError) as unchanged:
        await batch_client.get_job(LEASE, if_modified_since=at)
    assert unchanged.value.status_code == 304
    with pytest.raises(HttpResponseError) as read:
        await batch_client.get_job(LEASE, if_unmodified_since=before)
    assert (read.value.status_code, read.value.error.code) == (412, "ConditionNotMet")

    update = m.BatchJobUpdateOptions(metadata=_meta(holder="b"))
    with pytest.raises(HttpResponseError) as not_since:
        await batch_client.update_job(LEASE, update, if_modified_since=at)
    with pytest.raises(HttpResponseError) as since:
        await batch_client.update_job(LEASE, update, if_unmodified_since=before)
    assert {not_since.value.status_code, since.value.status_code} == {412}
    assert _as_dict(await batch_client.get_job(LEASE)) == {"holder": "a"}
    await batch_client.update_job(LEASE, update, if_unmodified_since=at)
    await batch_client.update_job(LEASE, update, if_modified_since=before)


async def test_only_the_two_documented_header_pairs_may_be_combined(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    job = await _lease(batch_client)
    batch_emulator.advance(10)
    late = await _patch(batch_client, job.etag, holder="a")
    assert job.last_modified is not None
    old = job.last_modified

    # If-Match + If-Unmodified-Since: the ETag decides (the date alone would refuse).
    await _patch_with(batch_client, late["ETag"], if_unmodified_since=old)
    # If-None-Match + If-Modified-Since: the ETag decides (the date alone would say 304).
    read = await batch_client.get_job(
        LEASE,
        etag=job.etag,
        match_condition=MatchConditions.IfModified,
        if_modified_since=late["Last-Modified"],
    )
    assert read.id == LEASE  # 200, not 304

    for kwargs in (
        {"if_modified_since": old},  # If-Match + If-Modified-Since
        {"headers": {"If-None-Match": '"0x1"'}},  # If-Match + If-None-Match
    ):
        with pytest.raises(HttpResponseError) as caught:
            await _patch_with(batch_client, late["ETag"], **kwargs)
        assert caught.value.status_code == 400
        assert caught.value.error.code == "MultipleConditionHeadersNotSupported"


async def _patch_with(client: BatchClient, etag: str, **kwargs: Any) -> None:
    update = m.BatchJobUpdateOptions(metadata=_meta(holder="z"))
    await client.update_job(LEASE, update, etag=etag, match_condition=IF_NOT_MODIFIED, **kwargs)


async def test_a_malformed_date_or_an_undeclared_conditional_header_is_400(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    """The emulator never ignores a condition: a write believed conditional must be."""
    await _lease(batch_client)
    with pytest.raises(HttpResponseError) as malformed:
        await batch_client.get_job(LEASE, headers={"If-Modified-Since": "yesterday"})
    assert (malformed.value.status_code, malformed.value.error.code) == (400, "InvalidHeaderValue")
    with pytest.raises(HttpResponseError) as undeclared:  # create job takes no conditions
        await batch_client.create_job(job_options("other", NO_POOL), headers={"If-None-Match": "*"})
    assert (undeclared.value.status_code, undeclared.value.error.code) == (400, "UnsupportedHeader")
    with pytest.raises(ResourceNotFoundError):
        await batch_client.get_job("other")


# -- races ------------------------------------------------------------------------------


async def test_concurrent_patches_with_one_etag_have_exactly_one_winner(
    make_batch_emulator: EmulatorFactory,
) -> None:
    """Candidates racing for a lease, each with its own connection, all at once."""
    emulator = await make_batch_emulator()
    emulator.faults.latency = 0.05  # all are in flight together
    clients = [client_for(emulator, user_agent=f"simfleet-holder/c{i}") for i in range(6)]
    try:
        etag = (await _lease(clients[0], holder="nobody")).etag
        results = await asyncio.gather(
            *(_patch(c, etag, holder=f"c{i}") for i, c in enumerate(clients)),
            return_exceptions=True,
        )
        winners = [i for i, r in enumerate(results) if isinstance(r, dict)]
        losers = [r for r in results if isinstance(r, ResourceModifiedError)]
        assert (len(winners), len(losers)) == (1, len(clients) - 1), results
        assert {r.status_code for r in losers} == {412}
        job = await clients[0].get_job(LEASE)
        assert _as_dict(job) == {"holder": f"c{winners[0]}"}
        assert job.etag == results[winners[0]]["ETag"]  # type: ignore[index]
    finally:
        for client in clients:
            await client.close()


async def test_concurrent_creates_of_one_job_have_exactly_one_winner(
    make_batch_emulator: EmulatorFactory,
) -> None:
    emulator = await make_batch_emulator()
    emulator.faults.latency = 0.05
    clients = [client_for(emulator) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(c.create_job(job_options(LEASE, NO_POOL)) for c in clients), return_exceptions=True
        )
        assert sum(r is None for r in results) == 1, results
        errors = [r for r in results if isinstance(r, ResourceExistsError)]
        assert [e.error.code for e in errors] == ["JobExists"] * (len(clients) - 1)
    finally:
        for client in clients:
            await client.close()


# -- the lease job itself ---------------------------------------------------------------


async def test_a_job_on_a_pool_that_does_not_exist_is_accepted_and_stays_active(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    job = await _lease(batch_client, holder="a")
    batch_emulator.advance(7 * 86400)
    later = await batch_client.get_job(LEASE)
    assert (later.state, later.pool_info.pool_id, later.etag) == ("active", NO_POOL, job.etag)
    with pytest.raises(ResourceNotFoundError):
        await batch_client.get_pool(NO_POOL)
    await _patch(batch_client, later.etag, holder="b")
    assert (await batch_client.get_job(LEASE)).state == "active"


async def test_patch_replaces_the_whole_metadata_list_and_leaves_it_when_omitted(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _lease(batch_client, **{"simfleet-lease": "default", "holder": "a", "renewed": "1"})
    await _patch(batch_client, None, None, holder="b")
    assert _as_dict(await batch_client.get_job(LEASE)) == {"holder": "b"}
    await batch_client.update_job(LEASE, m.BatchJobUpdateOptions(priority=5))
    job = await batch_client.get_job(LEASE)
    assert (job.priority, _as_dict(job)) == (5, {"holder": "b"})
    await _patch(batch_client, None, None)
    assert (await batch_client.get_job(LEASE)).metadata in (None, [])


async def test_put_replaces_metadata_too(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await _lease(batch_client, holder="a")
    await batch_client.replace_job(LEASE, m.BatchJob(pool_info=m.BatchPoolInfo(pool_id=NO_POOL)))
    assert (await batch_client.get_job(LEASE)).metadata in (None, [])


async def test_long_and_unicode_metadata_values_come_back_exactly(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    """BatchService.json and Batch's limits page set no size on metadata; the 1 MiB
    request body is the only bound, so a lease record of any sensible size fits."""
    value = ("holder=ctl-ä1/π;" * 4096)[:65536]
    job = await _lease(batch_client)
    await _patch(batch_client, job.etag, record=value, empty="")
    assert _as_dict(await batch_client.get_job(LEASE)) == {"record": value, "empty": ""}


# -- pools share the code ---------------------------------------------------------------


async def test_pools_honour_the_same_conditions(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await batch_client.create_pool(pool_options())
    stale = (await batch_client.get_pool("pool-1")).etag
    update = m.BatchPoolUpdateOptions(metadata=_meta(owner="a"))
    changed: Any = await batch_client.update_pool(
        "pool-1", update, etag=stale, match_condition=IF_NOT_MODIFIED, cls=_headers
    )
    assert changed["ETag"] != stale
    with pytest.raises(ResourceModifiedError):
        await batch_client.update_pool(
            "pool-1", update, etag=stale, match_condition=IF_NOT_MODIFIED
        )
    with pytest.raises(ResourceModifiedError):
        await batch_client.get_pool("pool-1", etag=stale, match_condition=IF_NOT_MODIFIED)
    with pytest.raises(ResourceModifiedError):
        await batch_client.begin_delete_pool("pool-1", etag=stale, match_condition=IF_NOT_MODIFIED)
    with pytest.raises(HttpResponseError) as unchanged:
        await batch_client.get_pool(
            "pool-1", etag=changed["ETag"], match_condition=MatchConditions.IfModified
        )
    assert unchanged.value.status_code == 304
    assert (await batch_client.get_pool("pool-1")).state == "active"
