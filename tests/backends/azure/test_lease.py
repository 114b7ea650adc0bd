"""The fleet's lease kept in Batch: a job's metadata, written with If-Match, against the
emulator through the real SDK. Every lease here runs on one test clock (``clock``), so
"the record stayed unchanged for the lease duration" takes no waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from controller.backends import LeaseLostError, LeaseTimings
from controller.backends.azure import AzureBackend, AzureLease, lease_job_id
from controller.planner import CreateJob
from tests.backends.azure.conftest import Clock, settings_for
from tests.batch_emulator._emulator import BatchEmulator
from tests.batch_emulator._model import key

TIMINGS = LeaseTimings(duration=15, renew_deadline=10, retry_period=2)

MakeLease = Callable[..., AzureLease]


@pytest_asyncio.fixture
async def make_lease(emulator: BatchEmulator, clock: Clock) -> AsyncIterator[MakeLease]:
    made: list[AzureLease] = []

    def make(identity: str, fleet: str = "default") -> AzureLease:
        lease = AzureLease(
            settings_for(emulator), fleet=fleet, identity=identity, timings=TIMINGS, monotonic=clock
        )
        made.append(lease)
        return lease

    yield make
    for lease in made:
        await lease.close()


def job_exists(emulator: BatchEmulator, job_id: str) -> bool:
    return key(job_id) in emulator.state.world.jobs


def writes(emulator: BatchEmulator) -> int:
    return emulator.counters.count("Jobs_UpdateJob") + emulator.counters.count("Jobs_CreateJob")


async def test_the_first_candidate_creates_the_lease_and_the_second_stands_by(
    emulator: BatchEmulator, make_lease: MakeLease
) -> None:
    a, b = make_lease("a"), make_lease("b")
    assert (await a.round()).leading
    state = await b.round()
    assert not state.leading
    assert state.record is not None
    assert state.record.holder == "a"
    assert job_exists(emulator, lease_job_id("default"))
    assert a.valid()
    assert not b.valid()


async def test_a_standby_takes_over_only_once_the_record_stayed_unchanged_for_the_duration(
    make_lease: MakeLease, clock: Clock
) -> None:
    a, b = make_lease("a"), make_lease("b")
    await a.round()
    await b.round()  # b starts its own clock on a's record
    clock.now += 14.0
    assert not (await b.round()).leading
    await a.round()  # a renews: a new version
    assert not (await b.round()).leading  # b sees it: its clock starts again
    clock.now += 14.9
    assert not (await b.round()).leading
    clock.now += 0.1  # 15 s since b first saw a's last renewal
    state = await b.round()
    assert state.leading
    assert state.record is not None
    assert state.record.transitions == 1
    # a renews on a version that is gone: it is told at once and stops writing
    assert not (await a.round()).leading
    assert not a.valid()


async def test_two_candidates_racing_for_a_free_lease_cannot_both_win(
    make_lease: MakeLease,
) -> None:
    for round_ in range(5):
        fleet = f"race{round_}"
        candidates = [make_lease(f"c{i}", fleet) for i in range(4)]
        states = await asyncio.gather(*(c.round() for c in candidates))
        assert sum(s.leading for s in states) == 1, states


async def test_two_candidates_racing_for_an_expired_lease_cannot_both_win(
    make_lease: MakeLease, clock: Clock
) -> None:
    dead = make_lease("dead")
    await dead.round()
    candidates = [make_lease(f"c{i}") for i in range(4)]
    await asyncio.gather(*(c.round() for c in candidates))
    clock.now += 16
    states = await asyncio.gather(*(c.round() for c in candidates))
    assert sum(s.leading for s in states) == 1


async def test_a_released_lease_is_taken_at_the_next_round_without_waiting(
    make_lease: MakeLease,
) -> None:
    a, b = make_lease("a"), make_lease("b")
    await a.round()
    assert not (await b.round()).leading
    await a.release()
    assert not a.valid()
    state = await b.round()
    assert state.leading
    assert state.record is not None
    assert state.record.transitions == 1


async def test_a_holder_renews_with_one_request_per_round(
    emulator: BatchEmulator, make_lease: MakeLease
) -> None:
    a = make_lease("a")
    await a.round()
    before = emulator.counters.count()
    for _ in range(5):
        assert (await a.round(report=("d", "c"))).leading
    assert emulator.counters.count() - before == 5
    assert emulator.counters.count("Jobs_UpdateJob") == 5


async def test_the_holder_stops_being_valid_at_its_renew_deadline_on_its_own_clock(
    make_lease: MakeLease, clock: Clock
) -> None:
    """A process paused past its deadline (SIGSTOP) must not write when it resumes."""
    a = make_lease("a")
    await a.round()
    clock.now += 9.9
    assert a.valid()
    clock.now += 0.1
    assert not a.valid()


async def test_a_forced_takeover_writes_only_after_the_renew_deadline(
    make_lease: MakeLease, clock: Clock
) -> None:
    a, b = make_lease("a"), make_lease("b")
    await a.round()
    state = await b.round(force=True)
    assert state.leading
    assert not b.valid()  # a may still write for up to its renew deadline
    clock.now += 10
    await b.round()
    assert b.valid()
    assert not (await a.round()).leading


async def test_the_fence_keeps_every_write_of_a_lost_lease_from_being_sent(
    emulator: BatchEmulator, make_lease: MakeLease, clock: Clock
) -> None:
    lease = make_lease("a")
    backend = AzureBackend(settings_for(emulator), lease=lease)
    try:
        with pytest.raises(LeaseLostError, match="no longer holds the lease of fleet 'default'"):
            await backend.execute(CreateJob("sim", "sims"))  # never held
        await lease.round()
        await backend.execute(CreateJob("sim", "sims"))
        assert job_exists(emulator, "sim")
        clock.now += 10  # no renewal for the renew deadline
        sent = writes(emulator)
        with pytest.raises(LeaseLostError):
            await backend.execute(CreateJob("sim2", "sims"))
        assert writes(emulator) == sent
        assert not job_exists(emulator, "sim2")
        assert backend.request_counts()[("POST /jobs", "fenced")] == 2
        await backend.observe()  # reads still go out
    finally:
        await backend.close()


async def test_a_lease_job_that_vanished_is_created_again(
    emulator: BatchEmulator, make_lease: MakeLease
) -> None:
    a = make_lease("a")
    await a.round()
    emulator.state.jobs.delete(emulator.state.world.job(lease_job_id("default")))
    emulator.advance(60)  # the deletion completes
    assert (await a.round()).leading


async def test_a_holder_resumed_past_its_deadline_reads_before_it_writes(
    emulator: BatchEmulator, make_lease: MakeLease, clock: Clock
) -> None:
    """SIGSTOP past the lease, a takeover, SIGCONT: the old holder sends no write."""
    a, b = make_lease("a"), make_lease("b")
    await a.round()
    await b.round()
    clock.now += 15  # a is paused; b waits the lease out and takes it
    assert (await b.round()).leading
    sent = writes(emulator)
    state = await a.round()  # a resumes
    assert not state.leading
    assert state.record is not None
    assert state.record.holder == "b"
    assert writes(emulator) == sent


async def test_a_standby_knows_when_the_lease_it_read_runs_out(
    make_lease: MakeLease, clock: Clock
) -> None:
    """So it looks again right then, not up to a retry period later."""
    a, b = make_lease("a"), make_lease("b")
    await a.round()
    assert a.expires_in() is None  # its own lease: nothing to wait for
    await b.round()
    clock.now += 4
    assert b.expires_in() == 11
    await a.round()  # renewed: b's wait starts again when it sees it
    await b.round()
    assert b.expires_in() == 15
