"""Unit tests of the emulator's building blocks: clock, timeline, OData, durations, signing."""

from __future__ import annotations

import pytest
from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from tests.batch_emulator.__main__ import _config, _parse
from tests.batch_emulator._auth import sign, string_to_sign
from tests.batch_emulator._clock import EmulatorClock, Timeline
from tests.batch_emulator._config import cores_of
from tests.batch_emulator._odata import FilterError, parse_filter
from tests.batch_emulator._profiles import time_scaled
from tests.batch_emulator._wire import format_duration, parse_duration


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_clock_speed_advance_and_freeze() -> None:
    wall = FakeMonotonic()
    clock = EmulatorClock(start=1000.0, speed=2.0, monotonic=wall)
    wall.now += 5
    assert clock.now() == 1010.0
    clock.advance(30)
    assert clock.now() == 1040.0
    clock.set_speed(0)
    wall.now += 100
    assert clock.now() == 1040.0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_timeline_replays_events_in_order_at_their_own_time() -> None:
    clock = EmulatorClock(start=0.0, speed=0.0)
    timeline = Timeline(clock)
    seen: list[tuple[str, float]] = []
    timeline.at(5, lambda: seen.append(("five", timeline.now)))
    late = timeline.at(9, lambda: seen.append(("nine", timeline.now)))
    timeline.at(2, lambda: timeline.after(1, lambda: seen.append(("chained", timeline.now))))
    late.cancel()
    timeline.run_until(10, lambda: None)
    assert seen == [("chained", 3.0), ("five", 5.0)]
    assert timeline.now == 10.0


ITEM = {
    "id": "sim-042",
    "state": "completed",
    "executionInfo": {"exitCode": 3, "result": "failure", "endTime": "2025-06-01T12:00:00.000Z"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state eq 'completed'", True),
        ("state ne 'completed'", False),
        ("state eq 'Completed'", False),  # case-sensitive
        ("startswith(id,'sim-')", True),
        ("endswith(id, '042')", True),
        ("executionInfo/exitCode gt 0 and executionInfo/result eq 'failure'", True),
        ("(state eq 'running' or state eq 'completed') and not startswith(id,'x')", True),
        ("executionInfo/endTime ge datetime'2025-06-01T11:00:00Z'", True),
        ("executionInfo/startTime eq null", True),
        ("id eq 'it''s'", False),
    ],
)
def test_filters(text: str, expected: bool) -> None:
    assert parse_filter(text)(ITEM) is expected


@pytest.mark.parametrize(
    "text", ["state eq", "state 'x'", "startswith(id)", "(state eq 'a'", "state eq 'a' junk"]
)
def test_bad_filters(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


def test_filter_reports_its_property_paths() -> None:
    assert parse_filter("state eq 'a' or startswith(executionInfo/result,'f')").paths == {
        "state",
        "executionInfo/result",
    }


def test_durations() -> None:
    assert parse_duration("PT01M30S") == 90  # what the SDK sends
    assert parse_duration("P1DT2H") == 93600
    assert parse_duration("PT0.5S") == 0.5
    assert format_duration(90) == "PT1M30S"
    assert format_duration(10**12) == "P10675199DT2H48M5.4775807S"
    for bad in ("", "P", "PT", "90s", "PT1H30"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_cores_from_vm_size() -> None:
    assert [cores_of(s) for s in ("Standard_D2s_v3", "Standard_NC24ads_A100_v4", "odd")] == [
        2,
        24,
        1,
    ]


def test_string_to_sign_matches_the_sdk_layout() -> None:
    text = string_to_sign(
        "POST",
        "/jobs/j%201/tasks",
        "api-version=2025-06-01&$filter=state%20eq%20'active'&empty=",
        {"Content-Type": "application/json", "ocp-date": "Sun, 01 Jun 2025 00:00:00 GMT"},
        "acct",
    )
    assert text == (
        "POST\n\n\n0\n\napplication/json\n\n\n\n\n\n\n"
        "ocp-date:Sun, 01 Jun 2025 00:00:00 GMT\n"
        "/acct/jobs/j%201/tasks\n$filter:state eq 'active'\napi-version:2025-06-01"
    )


def test_signature_equals_the_sdk_policy() -> None:
    """Sign a request with azure-batch's own policy and recompute it server-side."""
    request = HttpRequest(
        "PATCH",
        "http://127.0.0.1:1/pools/p%2F1?api-version=2025-06-01&timeOut=30",
        json={"metadata": []},
        headers={"If-Match": '"0x1"', "content-type": "application/json; odata=minimalmetadata"},
    )
    policy = BatchSharedKeyAuthPolicy(AzureNamedKeyCredential("acct", "a2V5a2V5"))
    policy.on_request(PipelineRequest(request, PipelineContext(None)))
    scheme, _, credentials = request.headers["Authorization"].partition(" ")
    text = string_to_sign(
        "PATCH", "/pools/p%2F1", "api-version=2025-06-01&timeOut=30", request.headers, "acct"
    )
    assert (scheme, credentials) == ("SharedKey", f"acct:{sign('a2V5a2V5', text)}")


def test_the_realistic_profile_keeps_batchs_proportions_at_any_scale() -> None:
    minute = time_scaled(60)
    assert (minute.allocation_delay, minute.node_start_delay, minute.image_pull_delay) == (
        4.0,
        3.0,
        1.0,
    )
    slower = time_scaled(6, allocation_delay=7.0)
    assert (slower.allocation_delay, slower.node_start_delay) == (7.0, 30.0)
    with pytest.raises(ValueError, match="must be positive"):
        time_scaled(0)


def test_the_standalone_realistic_profile_takes_single_delays_over_it() -> None:
    args = ["--profile", "realistic", "--time-scale", "30", "--node-start-delay", "1"]
    config = _config(_parse(args))
    assert (config.allocation_delay, config.node_start_delay) == (8.0, 1.0)
    default = _config(_parse([]))
    assert default.allocation_delay == 5.0  # EmulatorConfig's own
