"""A pool's broken nodes in the log and in /metrics: one warning per change, one info line
when they are gone; node gauges per pool and state, dropped with the pool."""

from __future__ import annotations

from typing import Any

import structlog

from controller.daemon._metrics import Metrics
from controller.daemon._nodewatch import NodeWatch
from controller.planner import NodeStates, PoolPhase, PoolStatus, Status

ERROR = "ContainerInvalidImage: One or more container images could not be pulled"


def pool(nodes: NodeStates | None, errors: tuple[str, ...] = (), name: str = "sims") -> PoolStatus:
    return PoolStatus(name, 2, 0, 2, 0, PoolPhase.STEADY, "", nodes=nodes, node_errors=errors)


def said(watch: NodeWatch, *pools: PoolStatus) -> list[tuple[str, str]]:
    with structlog.testing.capture_logs() as logs:
        watch.observe(Status(pools=pools))
    return [(e["log_level"], e["event"]) for e in logs]


def test_broken_nodes_are_warned_about_once_per_change_and_recovery_is_said() -> None:
    watch = NodeWatch()
    broken = pool(NodeStates(usable=1, unusable=1), (ERROR,))
    with structlog.testing.capture_logs() as logs:
        watch.observe(Status(pools=(broken,)))
    [warning] = logs
    assert (warning["log_level"], warning["event"], warning["pool"]) == (
        "warning",
        "pool_nodes_broken",
        "sims",
    )
    assert (warning["unusable"], warning["nodes"], warning["errors"]) == (1, 2, [ERROR])
    assert [said(watch, broken) for _ in range(5)] == [[]] * 5  # every pass: said once
    assert said(watch, pool(None)) == []  # not counted this pass: nothing new
    worse = pool(NodeStates(unusable=2), (ERROR,))
    assert said(watch, worse) == [("warning", "pool_nodes_broken")]
    assert said(watch, pool(NodeStates(unusable=2), (ERROR, "other"))) == [
        ("warning", "pool_nodes_broken")
    ]
    assert said(watch, pool(NodeStates(usable=2))) == [("info", "pool_nodes_usable")]
    assert said(watch, pool(NodeStates(usable=2))) == []


def test_healthy_pools_say_nothing_and_a_gone_pool_is_forgotten() -> None:
    watch = NodeWatch()
    assert said(watch, pool(NodeStates(usable=2)), pool(None, name="other")) == []
    broken = pool(NodeStates(start_task_failed=1), ("start task, exit code 1: boom",))
    assert said(watch, broken) == [("warning", "pool_nodes_broken")]
    assert said(watch) == []  # the pool is gone
    assert said(watch, broken) == [("warning", "pool_nodes_broken")]  # back: news again


def gauges(metrics: Metrics) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for family in metrics.registry.collect():
        if family.name == "simfleet_pool_nodes":
            for sample in family.samples:
                labels: dict[str, Any] = sample.labels
                found[(labels["pool"], labels["state"])] = sample.value
    return found


def test_node_gauges_follow_the_counted_pools() -> None:
    metrics = Metrics()
    metrics._set_status(Status(pools=(pool(NodeStates(usable=1, unusable=2, preempted=1)),)))
    values = gauges(metrics)
    assert values[("sims", "usable")] == 1
    assert values[("sims", "unusable")] == 2
    assert values[("sims", "preempted")] == 1
    assert values[("sims", "starttaskfailed")] == 0
    assert len(values) == 7  # every state, so a dashboard sees zeros
    metrics._set_status(Status(pools=(pool(None), pool(NodeStates(usable=3), name="b"))))
    assert set(gauges(metrics)) == {("b", s) for _, s in values}  # uncounted: no stale series
