"""The listing memory's rule: what one job's fresh task counts call for (no I/O here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.backends.azure._listings import Listed, ListingCache, Step, TaskCounts
from controller.planner import (
    AddTasks,
    CreateJob,
    DeleteJob,
    DeleteTask,
    ObservedTask,
    ResizePool,
    SimulatorState,
    StopReason,
    StopTask,
    TaskTemplate,
)

from .conftest import Clock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
COUNTS = TaskCounts(active=0, running=2, completed=1, succeeded=1, failed=0)


def task(slot: int, state: SimulatorState = SimulatorState.RUNNING) -> ObservedTask:
    return ObservedTask(f"j-s{slot}-r0123456789-a0", slot, "0123456789", 0, state, T0)


@pytest.fixture
def cache(clock: Clock) -> ListingCache:
    listings = ListingCache(max_age=600.0, clock=clock)
    listings.listed("j", COUNTS, Listed((task(0), task(1))), listings.ticket())
    return listings


def test_a_job_never_listed_is_listed(clock: Clock) -> None:
    assert ListingCache(max_age=600.0, clock=clock).step("j", COUNTS) is Step.LIST


def test_equal_counts_reuse_the_listing_until_it_is_too_old(
    cache: ListingCache, clock: Clock
) -> None:
    clock.now = 599.0
    assert cache.step("j", COUNTS) is Step.REUSE
    assert [t.slot for t in cache.remembered("j")] == [0, 1]
    clock.now = 600.0
    assert cache.step("j", COUNTS) is Step.LIST


@pytest.mark.parametrize(
    "moved",
    [
        pytest.param(COUNTS._replace(running=3), id="running"),
        pytest.param(COUNTS._replace(completed=2, succeeded=2), id="completed"),
        pytest.param(COUNTS._replace(failed=1, succeeded=0), id="failed instead of succeeded"),
    ],
)
def test_any_move_among_started_tasks_lists_the_job(cache: ListingCache, moved: TaskCounts) -> None:
    assert cache.step("j", moved) is Step.LIST


def test_a_move_of_the_queue_alone_refreshes_the_pending_tasks(cache: ListingCache) -> None:
    assert cache.step("j", COUNTS._replace(active=1)) is Step.REFRESH


def test_a_listing_holding_a_preparing_task_is_refreshed_even_with_equal_counts(
    cache: ListingCache,
) -> None:
    # Batch counts "preparing" under running: a start after an image pull moves nothing.
    preparing = task(1, SimulatorState.PENDING)
    cache.listed("j", COUNTS, Listed((task(0), preparing), frozenset({preparing.id})), 0)
    assert cache.step("j", COUNTS) is Step.REFRESH


def test_a_listing_holding_only_queued_tasks_is_reused_while_counts_stand_still(
    cache: ListingCache,
) -> None:
    # A queued task cannot start without moving "active" and "running".
    cache.listed("j", COUNTS, Listed((task(0), task(1, SimulatorState.PENDING))), 0)
    assert cache.step("j", COUNTS) is Step.REUSE


def test_a_refresh_replaces_pending_tasks_and_adds_new_ones(cache: ListingCache) -> None:
    cache.listed("j", COUNTS, Listed((task(0), task(1, SimulatorState.PENDING))), 0)
    counts = COUNTS._replace(active=2)
    queued = Listed((task(1, SimulatorState.PENDING), task(2, SimulatorState.PENDING)))
    tasks = cache.refreshed("j", counts, queued, 0)
    assert tasks is not None
    assert [(t.slot, t.state) for t in tasks] == [
        (0, SimulatorState.RUNNING),
        (1, SimulatorState.PENDING),
        (2, SimulatorState.PENDING),
    ]
    assert cache.step("j", counts) is Step.REUSE  # queued: only a count can tell a start


def test_a_pending_task_missing_from_a_refresh_calls_for_a_full_listing(
    cache: ListingCache,
) -> None:
    cache.listed("j", COUNTS, Listed((task(0), task(1, SimulatorState.PENDING))), 0)
    assert cache.refreshed("j", COUNTS, Listed(()), cache.ticket()) is None


def test_a_refresh_keeps_the_age_of_the_last_full_listing(
    cache: ListingCache, clock: Clock
) -> None:
    clock.now = 500.0
    assert cache.refreshed("j", COUNTS._replace(active=1), Listed(()), 0) is not None
    clock.now = 600.0
    assert cache.step("j", COUNTS._replace(active=1)) is Step.LIST


TEMPLATE = TaskTemplate("i", "c", (), (), "", timedelta(days=1))


@pytest.mark.parametrize(
    ("action", "step"),
    [
        pytest.param(AddTasks("j", TEMPLATE, ()), Step.REFRESH, id="added: refresh"),
        pytest.param(StopTask("j", "t", 0, StopReason.SCALE_DOWN), Step.LIST, id="stopped"),
        pytest.param(DeleteTask("j", "t"), Step.LIST, id="deleted a task"),
        pytest.param(DeleteJob("j"), Step.LIST, id="deleted the job"),
        pytest.param(CreateJob("j", "p"), Step.LIST, id="created the job"),
        pytest.param(ResizePool("p", 1, 0), Step.REUSE, id="a pool change: nothing"),
        pytest.param(StopTask("other", "t", 0, StopReason.SCALE_DOWN), Step.REUSE, id="other"),
    ],
)
def test_simfleets_own_changes_are_seen_even_if_counts_lag(
    cache: ListingCache, action: AddTasks, step: Step
) -> None:
    cache.changed(action)
    assert cache.step("j", COUNTS) is step


def test_a_change_made_while_a_listing_was_in_flight_is_not_covered_by_it(
    cache: ListingCache,
) -> None:
    ticket = cache.ticket()  # a listing starts...
    cache.changed(StopTask("j", "t", 0, StopReason.SCALE_DOWN))  # ...a stop is sent meanwhile
    cache.listed("j", COUNTS, Listed((task(0), task(1))), ticket)  # ...the listing lands
    assert cache.step("j", COUNTS) is Step.LIST
    cache.listed("j", COUNTS, Listed((task(0),)), cache.ticket())
    assert cache.step("j", COUNTS) is Step.REUSE


def test_gone_jobs_are_forgotten(cache: ListingCache) -> None:
    cache.changed(StopTask("j", "t", 0, StopReason.SCALE_DOWN))
    cache.forget_except({"other"})
    assert cache.step("j", COUNTS) is Step.LIST
    cache.listed("j", COUNTS, Listed(()), cache.ticket())
    assert cache.step("j", COUNTS) is Step.REUSE  # the old stop went with the job
