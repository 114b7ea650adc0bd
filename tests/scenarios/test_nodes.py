"""Node health end to end: every backend reports a pool's nodes in ``/status`` with the same
shape; on Batch, nodes that never become usable are named with their errors, in the
pool's status, its condition, the waiting simulation's message and one log warning."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import EmulatorDriver, Fleet, wait_until


def pool_row(fleet: Fleet, name: str = "sims") -> dict[str, Any] | None:
    return next((p for p in fleet.status()["pools"] if p["name"] == name), None)


def test_every_backend_reports_usable_nodes_in_the_same_shape(fleet: Fleet) -> None:
    fleet.write("pool.yaml", fleet.pool(nodes=2, slots=2))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
    fleet.start()

    def usable() -> dict[str, Any] | None:
        row = pool_row(fleet)
        return row if row is not None and (row["nodes"] or {}).get("usable") == 2 else None

    row = wait_until(usable, timeout=30, what="two usable nodes in /status")
    assert row["nodes"]["total"] == 2
    assert row["nodeErrors"] == []
    assert [(c["type"], c["status"]) for c in row["conditions"]] == [("NodesUsable", "True")]


def test_a_prefetch_image_that_cannot_be_pulled_is_named_not_left_pending(fleet: Fleet) -> None:
    if not isinstance(fleet.driver, EmulatorDriver):
        pytest.skip("local nodes pull nothing in advance: nothing to break")
    fleet.driver.control("POST", "broken-images", {"imageContains": "sim:bad"})
    fleet.write(
        "pool.yaml",
        fleet.pool(nodes=2, slots=2).replace("}}\n", "}, prefetchImages: true}\n"),
    )
    fleet.write("alpha.yaml", fleet.simulation("alpha", 2, image="scenario/sim:bad"))
    fleet.start()

    def broken() -> dict[str, Any] | None:
        row = pool_row(fleet)
        return row if row is not None and (row["nodes"] or {}).get("unusable") == 2 else None

    row = wait_until(broken, timeout=30, what="two unusable nodes in /status")
    assert row["message"].startswith("2 of 2 nodes unusable: ContainerInvalidImage: ")
    assert "scenario/sim:bad" in row["nodeErrors"][0]
    [condition] = row["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "NodesUnusable")
    sim = fleet.wait_sim("alpha", lambda s: "nodes unusable" in s["message"])
    assert "2 pending on pool sims: 2 of 2 nodes unusable" in sim["message"]
    passes = fleet.status()["updatedAt"]
    wait_until(lambda: fleet.status()["updatedAt"] != passes, what="another pass")
    warnings = [
        line
        for line in fleet.log().splitlines()
        if line.startswith("{") and json.loads(line).get("event") == "pool_nodes_broken"
    ]
    assert len(warnings) == 1, warnings  # said once, not every pass
    assert json.loads(warnings[0])["unusable"] == 2
