"""Non-atomic writes and ``git checkout`` never disrupt anything (issue 7, item 2).

A file that is briefly empty, half-written by a generator, or a simulation moved from one
file to another by a checkout, used to prune what it defined: pool and job deleted, every
simulator killed. Now an empty file is a load error that holds its objects, and an object
whose definition vanished is pruned only after the absence held for ``--prune-delay``.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from .conftest import Fleet, wait_until

DELAY = "6"


def identities(fleet: Fleet, name: str) -> set[str]:
    return fleet.running(name)


def hold_steady(fleet: Fleet, name: str, before: set[str], seconds: float) -> None:
    """Sample for ``seconds``: the same simulators really run, none stopped or pruned."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sim = fleet.sim(name)
        assert sim is not None, f"{name} vanished from /status"
        assert "deleting" not in sim["message"], sim["message"]
        assert fleet.simulators() >= before, "a simulator was stopped"
        time.sleep(0.1)


def back_to_normal(fleet: Fleet, name: str, before: set[str]) -> None:
    """The definition is back: the very same simulators serve it, nothing restarted."""
    sim = fleet.wait_sim(name, lambda s: "pruned" not in s["message"] and s["ready"] == 3)
    assert identities(fleet, name) == before
    assert sim["restarts"] == 0


@pytest.mark.slow
class TestNonAtomicWrites:
    def test_a_briefly_empty_file_prunes_nothing(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        good = fleet.simulation("alpha", 3)
        fleet.write("alpha.yaml", good)
        fleet.start("--prune-delay", DELAY)
        fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
        before = identities(fleet, "alpha")

        path = fleet.specs / "alpha.yaml"
        path.write_text("")  # `: > alpha.yaml`
        errors = wait_until(lambda: fleet.status()["errors"], what="the empty-file error")
        assert "delete the file" in errors[0]["message"]
        hold_steady(fleet, "alpha", before, 1.0)
        path.write_text(good)
        wait_until(lambda: fleet.status()["errors"] == [], what="the error to clear")
        back_to_normal(fleet, "alpha", before)

    def test_a_generator_writing_the_file_in_pieces_prunes_nothing(self, fleet: Fleet) -> None:
        pool, sim = fleet.pool(), fleet.simulation("alpha", 3)
        fleet.write("fleet.yaml", f"{pool}\n---\n{sim}")
        fleet.start("--prune-delay", DELAY)
        fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
        before = identities(fleet, "alpha")

        path = fleet.specs / "fleet.yaml"
        path.write_text(pool)  # `gen > fleet.yaml`: the first document has arrived
        msg = fleet.wait_sim("alpha", lambda s: "will be pruned in" in s["message"])["message"]
        assert "not in any spec" in msg
        hold_steady(fleet, "alpha", before, 1.5)
        path.write_text(f"{pool}\n---\n{sim}")
        back_to_normal(fleet, "alpha", before)

    def test_a_vanished_definition_is_pruned_once_the_delay_passed(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 1))
        fleet.write("beta.yaml", fleet.simulation("beta", 2))
        fleet.start("--prune-delay", "2")
        fleet.wait_sim("beta", lambda s: s["ready"] == 2)
        (fleet.specs / "beta.yaml").unlink()
        fleet.wait_sim("beta", lambda s: "will be pruned in" in s["message"])
        wait_until(lambda: fleet.sim("beta") is None, timeout=30, what="beta to be pruned")


@pytest.mark.slow
def test_a_git_checkout_moving_a_simulation_between_files_disrupts_nothing(
    fleet: Fleet,
) -> None:
    if shutil.which("git") is None:
        pytest.fail("git is needed for this test (.ci/run installs it)")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=fleet.specs,
            check=True,
            capture_output=True,
        )

    sim = fleet.simulation("alpha", 3)
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("a.yaml", sim)
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "alpha in a.yaml")
    (fleet.specs / "a.yaml").unlink()
    fleet.write("b.yaml", sim)
    git("add", "-A")
    git("commit", "-qm", "alpha moves to b.yaml")
    git("checkout", "-q", "HEAD~1")

    fleet.start("--prune-delay", DELAY)
    fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
    before = identities(fleet, "alpha")
    for revision in ("main", "HEAD~1", "main"):
        git("checkout", "-q", revision)
        hold_steady(fleet, "alpha", before, 1.5)
        back_to_normal(fleet, "alpha", before)
    assert fleet.status()["errors"] == []
