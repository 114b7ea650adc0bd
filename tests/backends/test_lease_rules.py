"""The lease's rules (client-go's leader election), as a table: who may claim, when."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.backends import Claim, LeaseRecord, LeaseTimings, claim

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EARLIER = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
TIMINGS = LeaseTimings(duration=15, renew_deadline=10, retry_period=2)


def held_by(holder: str, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(holder, EARLIER, EARLIER, 15.0, transitions)


@pytest.mark.parametrize(
    ("current", "unchanged_for", "force", "expected"),
    [
        # nobody has ever held it: the first claim, no transition
        (None, 0.0, False, Claim(LeaseRecord("me", NOW, NOW, 15.0, 0))),
        # my own lease: renewed, acquired time and transitions kept
        (held_by("me"), 0.0, False, Claim(LeaseRecord("me", EARLIER, NOW, 15.0, 3))),
        # another holder renewing within its duration: wait
        (held_by("other"), 14.9, False, None),
        # another holder silent for its whole duration (on my clock): take it over
        (held_by("other"), 15.0, False, Claim(LeaseRecord("me", NOW, NOW, 15.0, 4))),
        # released by its holder: take it at once
        (held_by(""), 0.0, False, Claim(LeaseRecord("me", NOW, NOW, 15.0, 4))),
        # break-glass: taken from a live holder, and said so
        (
            held_by("other"),
            0.0,
            True,
            Claim(LeaseRecord("me", NOW, NOW, 15.0, 4), forced=True),
        ),
        # force on a lease that is free anyway is no forced takeover
        (held_by("other"), 20.0, True, Claim(LeaseRecord("me", NOW, NOW, 15.0, 4))),
    ],
)
def test_claim(
    current: LeaseRecord | None, unchanged_for: float, force: bool, expected: Claim | None
) -> None:
    assert (
        claim(
            current,
            me="me",
            unchanged_for=unchanged_for,
            now=NOW,
            timings=TIMINGS,
            force=force,
        )
        == expected
    )


def test_a_holder_waits_out_the_duration_it_wrote_not_the_candidates() -> None:
    """A holder with a 60 s lease is not taken over after a candidate's 15 s."""
    long = LeaseRecord("other", EARLIER, EARLIER, 60.0, 1)
    assert claim(long, me="me", unchanged_for=30.0, now=NOW, timings=TIMINGS) is None


def test_the_report_travels_with_every_claim() -> None:
    decided = claim(
        held_by("me"), me="me", unchanged_for=0, now=NOW, timings=TIMINGS, report=("d1", "c0")
    )
    assert decided is not None
    assert (decided.record.desired, decided.record.converged) == ("d1", "c0")


def test_a_record_survives_its_items_and_damage_reads_as_expired() -> None:
    record = LeaseRecord("me", EARLIER, NOW, 15.0, 7, "abc", "abd")
    assert LeaseRecord.from_items(record.as_items()) == record
    damaged = {
        **record.as_items(),
        "simfleet-lease-duration": "soon",
        "simfleet-lease-renewed": "x",
    }
    read = LeaseRecord.from_items(damaged)
    assert (read.duration, read.renewed) == (0.0, None)
    # a duration of 0 is over as soon as anyone looks
    assert claim(read, me="other", unchanged_for=0.0, now=NOW, timings=TIMINGS) is not None


@pytest.mark.parametrize(
    ("duration", "deadline", "period"), [(10, 10, 2), (15, 10, 10), (15, 10, 0), (5, 10, 2)]
)
def test_timings_must_leave_the_fence_a_margin(
    duration: float, deadline: float, period: float
) -> None:
    with pytest.raises(ValueError, match="retry period < renew deadline < duration"):
        LeaseTimings(duration, deadline, period)
