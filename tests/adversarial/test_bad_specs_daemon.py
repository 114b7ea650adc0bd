"""Every bad spec input, dropped into a running daemon, touches nothing else.

The inputs are the ones ``simfleet validate`` must refuse (:mod:`.bad_specs`). All of them
land at once, each in a file of its own, beside a healthy simulation: the healthy one
keeps its very simulators, an edit to it is still applied, every bad file shows as an
error with its line and column, and the log holds no traceback.
"""

from __future__ import annotations

import pytest

from tests.scenarios.conftest import Fleet, wait_until

from .bad_specs import BAD_SPECS

pytestmark = pytest.mark.slow


def test_bad_inputs_in_a_running_daemon_leave_the_rest_of_the_fleet_alone(fleet: Fleet) -> None:
    fleet.write("pool.yaml", fleet.pool(nodes=2, slots=4))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
    fleet.start()
    fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
    before = fleet.running("alpha")

    names = {f"bad/{index:03d}.yaml" for index in range(len(BAD_SPECS))}
    (fleet.specs / "bad").mkdir()
    for index, (_, text) in enumerate(BAD_SPECS):
        fleet.write(f"bad/{index:03d}.yaml", text)

    def failing_files() -> set[str]:
        return {e["file"].split("specs/", 1)[-1] for e in fleet.status()["errors"]}

    wait_until(lambda: names <= failing_files(), timeout=30, what="an error for every bad file")
    for error in fleet.status()["errors"]:
        assert error["line"] >= 1
        assert error["column"] >= 1
    assert fleet.sim("bad") is None  # nothing of the bad files was created

    fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
    fleet.wait_sim("alpha", lambda s: s["ready"] == 3, timeout=30)
    assert before <= fleet.running("alpha")  # the first two were never restarted
    assert fleet.doubled_slots("alpha") == []
    assert "Traceback" not in fleet.log()
