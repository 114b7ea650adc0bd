"""Rate limits on what the daemon says: repeated log lines are folded into a count, and a
failing or stalled simulation gets one warning per minute, or when its trouble changes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import structlog

from controller.daemon._crashloops import CrashLoops
from controller.daemon._throttling import LogThrottle, RateLimit
from controller.planner import (
    Condition,
    ConditionType,
    ExitInfo,
    ExitReason,
    Reason,
    SimulationStatus,
    SimulatorStatus,
    Status,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestRateLimit:
    def test_lets_a_burst_through_then_counts_what_it_drops(self) -> None:
        clock = Clock()
        limit = RateLimit(2, 10.0, clock=clock)
        assert [limit.allow("k") for _ in range(5)] == [0, 0, None, None, None]
        assert limit.allow("other") == 0  # keys are independent
        clock.now = 10.0
        assert limit.allow("k") == 3  # the next one let through carries the count
        assert limit.allow("k") == 0

    def test_forgets_the_oldest_keys_beyond_its_bound(self) -> None:
        limit = RateLimit(1, 10.0, clock=Clock(), keys=3)
        for key in range(10):
            assert limit.allow(key) == 0
        assert limit.allow(9) is None
        assert limit.allow(0) == 0  # forgotten, so new again


def log(throttle: LogThrottle, **event: Any) -> dict[str, Any] | None:
    try:
        return dict(throttle(None, "info", dict(event)))
    except structlog.DropEvent:
        return None


class TestLogThrottle:
    def test_a_crash_loop_is_folded_into_a_count(self) -> None:
        throttle = LogThrottle(burst=3, window=60.0)
        lines = [
            log(throttle, event="action", action=f"forget exited simulator alpha-s0-a{n}")
            for n in range(100)
        ]
        assert sum(line is not None for line in lines) == 3

    def test_different_lines_are_not_folded(self) -> None:
        throttle = LogThrottle(burst=1, window=60.0)
        assert log(throttle, event="action", action="create pool sims") is not None
        assert log(throttle, event="action", action="create simulation alpha") is not None
        assert log(throttle, event="spec_error", file="a.yaml") is not None

    def test_the_count_rides_on_the_next_line_let_through(self) -> None:
        clock = Clock()
        throttle = LogThrottle(burst=1, window=10.0)
        throttle.limit = RateLimit(1, 10.0, clock=clock)
        assert log(throttle, event="pass", executed=1) is not None
        for _ in range(7):
            assert log(throttle, event="pass", executed=1) is None
        clock.now = 11.0
        line = log(throttle, event="pass", executed=2)
        assert line is not None
        assert line["suppressed"] == 7


def failing_sim(
    name: str = "alpha",
    restarts: int = 1,
    state: str = "waiting",
    exit_code: int = 1,
    failure_code: str | None = None,
) -> SimulationStatus:
    info = ExitInfo(ExitReason.FAILED, exit_code, failure_code, f"exited with code {exit_code}")
    return SimulationStatus(
        name=name,
        pool="sims",
        image="sim:1",
        desired=1,
        ready=0 if state == "waiting" else 1,
        up_to_date=1,
        restarts=restarts,
        message="",
        revision="r",
        simulators=(SimulatorStatus(0, "t", state, restarts, True, last_exit=info),),
    )


def healthy_sim(name: str = "alpha", restarts: int = 1) -> SimulationStatus:
    return dataclasses.replace(
        failing_sim(name, restarts),
        ready=1,
        simulators=(SimulatorStatus(0, "t", "running", restarts, True),),
    )


@pytest.fixture
def watched() -> tuple[CrashLoops, Clock]:
    clock = Clock()
    return CrashLoops(every=60.0, clock=clock), clock


def warnings(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["log_level"] == "warning"]


class TestCrashLoops:
    def test_a_crash_loop_warns_once_a_minute_with_exit_code_and_reason(
        self, watched: tuple[CrashLoops, Clock]
    ) -> None:
        loops, clock = watched
        with structlog.testing.capture_logs() as logs:
            for n in range(1, 120):  # a restart every half second for a minute
                clock.now = n * 0.5
                loops.observe(Status(simulations=(failing_sim(restarts=n),)))
        said = warnings(logs)
        assert len(said) == 1
        assert said[0]["event"] == "simulation_failing"
        assert said[0]["simulation"] == "alpha"
        assert said[0]["exit_code"] == 1
        assert said[0]["reason"] == "failed"
        clock.now = 61.0
        with structlog.testing.capture_logs() as logs:
            loops.observe(Status(simulations=(failing_sim(restarts=200),)))
        assert len(warnings(logs)) == 1  # still failing a minute later: said again

    def test_a_changed_reason_is_said_at_once(self, watched: tuple[CrashLoops, Clock]) -> None:
        loops, clock = watched
        with structlog.testing.capture_logs() as logs:
            loops.observe(Status(simulations=(failing_sim(exit_code=1),)))
            clock.now = 1.0
            loops.observe(Status(simulations=(failing_sim(exit_code=137),)))
        assert [e["exit_code"] for e in warnings(logs)] == [1, 137]

    def test_each_simulation_is_said_once(self, watched: tuple[CrashLoops, Clock]) -> None:
        loops, _ = watched
        with structlog.testing.capture_logs() as logs:
            for _ in range(5):
                loops.observe(Status(simulations=(failing_sim("a"), failing_sim("b"))))
        assert sorted(e["simulation"] for e in warnings(logs)) == ["a", "b"]

    def test_a_stalled_simulation_warns_with_the_condition_message(
        self, watched: tuple[CrashLoops, Clock]
    ) -> None:
        loops, _ = watched
        stalled = Condition(
            ConditionType.STALLED, True, Reason.DEADLINE_EXCEEDED, "no progress for 10m"
        )
        sim = dataclasses.replace(healthy_sim(), conditions=(stalled,))
        with structlog.testing.capture_logs() as logs:
            loops.observe(Status(simulations=(sim,)))
            loops.observe(Status(simulations=(sim,)))
        assert [(e["event"], e["message"]) for e in warnings(logs)] == [
            ("simulation_stalled", "no progress for 10m")
        ]

    def test_recovery_is_said_after_a_quiet_minute(self, watched: tuple[CrashLoops, Clock]) -> None:
        loops, clock = watched
        with structlog.testing.capture_logs() as logs:
            loops.observe(Status(simulations=(failing_sim(restarts=1),)))
            clock.now = 5.0
            loops.observe(Status(simulations=(healthy_sim(restarts=1),)))  # up between crashes
            clock.now = 70.0
            loops.observe(Status(simulations=(healthy_sim(restarts=1),)))
        assert [e["event"] for e in logs] == ["simulation_failing", "simulation_recovered"]

    def test_a_clean_exit_is_no_trouble(self, watched: tuple[CrashLoops, Clock]) -> None:
        loops, _ = watched
        done = ExitInfo(ExitReason.SUCCEEDED, 0)
        sim = dataclasses.replace(
            healthy_sim(),
            simulators=(SimulatorStatus(0, "t", "succeeded", 0, True, last_exit=done),),
        )
        with structlog.testing.capture_logs() as logs:
            loops.observe(Status(simulations=(sim,)))
        assert logs == []
