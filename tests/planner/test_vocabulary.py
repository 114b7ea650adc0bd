"""The vocabulary answers for itself: every action names its object and describes itself.

Written out once on the action classes, so a caller (plan output, logs, reconcile
failures) needs no ``match`` over action types of its own.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import SecretStr

from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    NewTask,
    ObjectKind,
    Observed,
    ObservedJob,
    PoolPhase,
    ResizePool,
    SlotState,
    StopReason,
    StopTask,
    Verb,
    plan,
    subject,
    template_of,
)
from controller.testing import EPOCH, FakeBackend, FakeClock

from .conftest import desired, pool_spec, simulation, task

TEMPLATE = template_of(simulation(image="cartpole:1.1"))
MANY = tuple(NewTask(f"t{i}", i, "r", 0) for i in range(12))

CASES = [
    pytest.param(
        CreatePool("sims", pool_spec(), 2, 1),
        (ObjectKind.POOL, "sims"),
        "create pool sims (standard_d4s_v5, 2 dedicated + 1 spot)",
        id="create-pool",
    ),
    pytest.param(
        ResizePool("sims", 3, 0, 1, 2),
        (ObjectKind.POOL, "sims"),
        "resize pool sims 1+2 → 3+0 nodes",
        id="resize-pool",
    ),
    pytest.param(
        DeletePool("sims"), (ObjectKind.POOL, "sims"), "delete pool sims", id="delete-pool"
    ),
    pytest.param(
        CreateJob("cartpole", "sims"),
        (ObjectKind.SIMULATION, "cartpole"),
        "create simulation cartpole on pool sims",
        id="create-job",
    ),
    pytest.param(
        DeleteJob("cartpole"),
        (ObjectKind.SIMULATION, "cartpole"),
        "delete simulation cartpole and its simulators",
        id="delete-job",
    ),
    pytest.param(
        AddTasks("cartpole", TEMPLATE, MANY[:2]),
        (ObjectKind.SIMULATION, "cartpole"),
        "start 2 simulator(s) of cartpole (cartpole:1.1) in slot(s) 0, 1",
        id="add-tasks",
    ),
    pytest.param(
        AddTasks("cartpole", TEMPLATE, MANY),
        (ObjectKind.SIMULATION, "cartpole"),
        "start 12 simulator(s) of cartpole (cartpole:1.1) in slot(s) 0, 1, 2, 3, 4, 5, 6, 7, 8,"
        " 9, …",
        id="add-many-tasks",
    ),
    pytest.param(
        StopTask("cartpole", "t3", 3, StopReason.ROLLOUT),
        (ObjectKind.SIMULATION, "cartpole"),
        "stop simulator t3 of cartpole (slot 3, rollout)",
        id="stop-task",
    ),
    pytest.param(
        DeleteTask("cartpole", "t3"),
        (ObjectKind.SIMULATION, "cartpole"),
        "forget exited simulator t3 of cartpole",
        id="delete-task",
    ),
]


@pytest.mark.parametrize(("action", "kind_and_name", "words"), CASES)
def test_every_action_names_its_object_and_describes_itself(
    action: Action, kind_and_name: tuple[ObjectKind, str], words: str
) -> None:
    assert action.subject == kind_and_name
    assert subject(action) == kind_and_name
    assert action.describe() == words


def test_a_description_never_shows_a_secret() -> None:
    secret = "s3cr3t-value"
    sim = simulation(secretEnv={"TOKEN": {"fromEnv": "TOKEN"}})
    sim = replace(sim, secrets={"TOKEN": SecretStr(secret)})
    action = AddTasks(sim.name, template_of(sim), MANY[:1])
    assert secret not in action.describe()
    assert secret not in repr(action)


def test_states_in_status_and_changes_are_enums() -> None:
    """Status rows, pool rows and change lines carry enum members, not loose strings."""
    sim = simulation(simulators=2)
    fresh = plan(desired(sim), FakeBackend().snapshot(), EPOCH)
    assert fresh.status.pools[0].state is PoolPhase.CREATING
    assert [s.state for s in fresh.status.simulations[0].simulators] == [SlotState.PENDING] * 2
    assert {(c.kind, c.verb) for c in fresh.changes} == {
        (ObjectKind.POOL, Verb.CREATE),
        (ObjectKind.SIMULATION, Verb.CREATE),
    }
    clock = FakeClock()
    backend = FakeBackend(clock)
    for action in fresh.actions:
        backend.apply(action)
    observed = backend.snapshot()
    job = observed.jobs[sim.name]
    stopping = replace(job, tasks=(replace(job.tasks[0], stopping=True), *job.tasks[1:]))
    running = plan(desired(sim), replace(observed, jobs={sim.name: stopping}), clock())
    assert [s.state for s in running.status.simulations[0].simulators] == [
        SlotState.STOPPING,
        SlotState.RUNNING,
    ]
    assert running.status.pools[0].state is PoolPhase.STEADY


def test_a_slot_in_back_off_shows_waiting() -> None:
    sim = simulation(simulators=1, restartBackoff={"initial": "1m"})
    exited = task(sim, 0, state="exited", age=5, ran=2)
    observed = Observed(jobs={sim.name: ObservedJob(sim.name, "sims", True, tasks=(exited,))})
    result = plan(desired(sim), observed, EPOCH)
    assert result.status.simulations[0].simulators[0].state is SlotState.WAITING
