"""Fleets on one Batch account: real daemons and a real ``apply`` against one emulator.

"No request modified the other fleet's objects" is shown per object: every write the
emulator's log holds names an object (or creates one), and each object gets only the
writes its own fleet makes in these scenarios (its creation, tasks added to its own job,
renewals of its own lease job). A controller acting on the other fleet's objects would
show as a resize, a deletion, a task stopped or added on them, or a creation refused
because the id was taken. Where the log also names the sender (``User-Agent``), each
write to a named object is traced to the daemon of the object's own fleet.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.batch_emulator._writes import is_write, object_of, writes

from .conftest import EmulatorDriver, Fleet, wait_until

CREATES = ("Pools_CreatePool", "Jobs_CreateJob")
SIMULATION = {"a": "alpha", "b": "beta"}
SENDER = re.compile(r"simfleet-holder/\S*-(\d+)-[0-9a-f]+")


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[EmulatorDriver]:
    emulator = EmulatorDriver(tmp_path, "--request-log")
    yield emulator
    emulator.stop()


@pytest.fixture
def fleets(tmp_path: Path, driver: EmulatorDriver) -> Iterator[dict[str, Fleet]]:
    """Two controllers' directories (``a``, ``b``) on the one emulator."""
    made = {}
    for name in ("a", "b"):
        fleet = Fleet(root=tmp_path / name, driver=driver)
        fleet.specs.mkdir(parents=True)
        made[name] = fleet
    yield made
    for fleet in made.values():
        fleet.cleanup()  # stops the daemon; the emulator is stopped once, by ``driver``


def logged(driver: EmulatorDriver, since: int = 0) -> list[list[Any]]:
    """The emulator's request log from entry ``since``: [arrived, answered, operation,
    path, outcome, …]."""
    entries: list[list[Any]] = driver.control("GET", f"requests?since={since}")["requests"]
    return entries


def written(entries: list[list[Any]]) -> Counter[tuple[str, str, str]]:
    return writes((e[2], e[3]) for e in entries)


def converged(fleet: Fleet, name: str, count: int) -> None:
    fleet.wait_sim(name, lambda s: s["ready"] == s["upToDate"] == count, timeout=90)


def test_two_fleets_run_side_by_side_and_never_write_to_each_other(
    fleets: dict[str, Fleet], driver: EmulatorDriver
) -> None:
    a, b = fleets["a"], fleets["b"]
    a.write("pool.yaml", a.pool("pool-a", nodes=1))
    a.write("alpha.yaml", a.simulation("alpha", 2, pool="pool-a"))
    b.write("pool.yaml", b.pool("pool-b", nodes=1))
    b.write("beta.yaml", b.simulation("beta", 3, pool="pool-b"))
    a.start("--fleet", "a", "--resync", "1")
    b.start("--fleet", "b", "--resync", "1")
    converged(a, "alpha", 2)
    converged(b, "beta", 3)
    tasks = {"alpha": a.running("alpha"), "beta": b.running("beta")}

    # Several resyncs of each (a pass publishes a new updatedAt), converged throughout.
    passes: dict[str, set[str]] = {"a": set(), "b": set()}

    def resynced() -> bool:
        for name, fleet in fleets.items():
            document = fleet.status()
            assert document["fleet"] == name
            assert [s["name"] for s in document["simulations"]] == [SIMULATION[name]]
            passes[name].add(document["updatedAt"])
        return all(len(seen) >= 6 for seen in passes.values())

    wait_until(resynced, timeout=120, what="5 resyncs of each daemon")
    for fleet, name in ((a, "alpha"), (b, "beta")):
        (sim,) = fleet.status()["simulations"]
        assert sim["ready"] == sim["upToDate"] == sim["desired"], sim
        assert fleet.running(name) == tasks[name]  # the same simulators all along
        assert [p["name"] for p in fleet.status()["pools"]] == [f"pool-{fleet.root.name}"]

    entries = logged(driver)
    counts = written(entries)
    simulations = {name for kind, name, op in counts if op == "Tasks_CreateTaskCollection"}
    assert simulations == {"alpha", "beta"}, counts
    leases = {name for kind, name, op in counts if op == "Jobs_UpdateJob"}
    assert leases <= {"simfleet-lease-a", "simfleet-lease-b"}, counts  # each renews its own
    named = {name for _, name, _ in counts if name}
    assert named <= simulations | leases, counts  # nothing else was written to, by anyone
    assert counts[("pool", "", "Pools_CreatePool")] == 2
    assert counts[("job", "", "Jobs_CreateJob")] <= 4  # alpha, beta and the two leases
    assert all(e[4] == 201 for e in entries if e[2] in CREATES), "a creation met a taken id"
    # Where the log names the sender (User-Agent: simfleet-holder/<host>-<pid>-<hex>),
    # every write to a named object came from its own fleet's daemon.
    owner = {"alpha": a, "simfleet-lease-a": a, "beta": b, "simfleet-lease-b": b}
    attributed = 0
    for entry in entries:
        _, name = object_of(entry[3])
        sender = SENDER.search(entry[6]) if len(entry) > 6 else None
        if sender is not None and name and is_write(entry[2]):
            process = owner[name].process
            assert process is not None
            assert int(sender[1]) == process.pid, f"{entry[2]} {entry[3]} from {entry[6]}"
            attributed += 1
    assert attributed >= len(simulations) + len(leases)
    print(  # the figures for a closing note (pytest -s)
        f"passes seen: a {len(passes['a'])}, b {len(passes['b'])}; requests logged "
        f"{len(entries)}; writes by object {sorted(counts.items())}; writes traced to "
        f"their own fleet's daemon {attributed}; to the other fleet's objects: 0"
    )


def simfleet(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        check=False,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_subset_apply_of_another_fleet_prunes_nothing_outside_it(
    fleets: dict[str, Fleet], driver: EmulatorDriver
) -> None:
    """Fleet ``default``'s daemon runs alpha and beta on pool sims. From a laptop, fleet
    ``other`` applies a subset: alpha and pool sims (default's ids) and its own gamma, with
    no prune delay. Nothing of default's is written to; the conflicts are named in plan."""
    main, laptop = fleets["a"], fleets["b"]
    main.write("pool.yaml", main.pool("sims", nodes=1))
    main.write("alpha.yaml", main.simulation("alpha", 2))
    main.write("beta.yaml", main.simulation("beta", 1))
    main.start()  # no --fleet: the default fleet
    converged(main, "alpha", 2)
    converged(main, "beta", 1)
    before = main.running("alpha") | main.running("beta")
    since = driver.control("GET", "requests?since=0")["next"]

    subset = laptop.root / "subset"
    subset.mkdir()
    (subset / "pool.yaml").write_text(main.pool("sims", nodes=3) + "---\n" + main.pool("own"))
    (subset / "alpha.yaml").write_text(main.simulation("alpha", 4))
    (subset / "gamma.yaml").write_text(main.simulation("gamma", 1, pool="own"))
    options = ("--specs", "subset", "--backend", "azure", "--fleet", "other")
    applied = simfleet(laptop.root, driver.env(), "apply", *options, "--prune-delay", "0")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "alpha" not in applied.stdout  # no action on default's job

    planned = simfleet(laptop.root, driver.env(), "plan", *options, "--prune-delay", "0")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    text = planned.stdout
    assert "simulation alpha: a job named alpha belongs to fleet 'default'; leaving it alone" in (
        text
    )
    assert "pool sims: a pool named sims belongs to fleet 'default'; leaving it alone" in text
    assert "No changes: the fleet matches the specs." not in text
    assert "beta" not in text  # another fleet's object is neither pruned nor reported

    counts = written(logged(driver, since))
    allowed = {("job", "gamma"), ("job", "simfleet-lease-other"), ("job", "simfleet-lease-default")}
    assert {(kind, name) for kind, name, _ in counts if name} <= allowed, counts
    assert counts[("pool", "", "Pools_CreatePool")] == 1  # own
    assert counts[("job", "", "Jobs_CreateJob")] <= 2  # gamma, and other's lease
    assert main.running("alpha") | main.running("beta") == before
    assert {s["name"] for s in main.status()["simulations"]} == {"alpha", "beta"}
    assert {p["name"] for p in main.status()["pools"]} == {"sims"}
