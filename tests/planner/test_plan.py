"""Table-driven tests of ``plan``: rows of desired and observed state, and the actions expected.

Actions are compared as short tuples — ("add", job, slots), ("stop", job, slot, reason) —
so each row reads as a sentence about what one pass does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    Desired,
    JobState,
    Observed,
    ObservedJob,
    ObservedPool,
    ObservedTask,
    PlannerConfig,
    PoolConfig,
    PoolState,
    ResizePool,
    StopTask,
    plan,
)
from controller.testing import EPOCH

from .conftest import desired, pool_spec, rev, simulation, task

CART = simulation()
CART_V2 = simulation(image="cartpole:2.0")
NEVER = simulation(restartPolicy="Never")
ON_FAILURE = simulation(restartPolicy="OnFailure")
SUSPENDED = simulation(suspend=True)
SHORT_LIVED = simulation(maxLifetime="1h")
#: Scaled up 1 → 2 and rolled out under OnFailure (maxSurge 25%, maxUnavailable 0).
GROWN = simulation(simulators=2, image="cartpole:2.0", restartPolicy="OnFailure")


def summary(action: Action) -> tuple[Any, ...]:
    match action:
        case CreatePool(name, _, dedicated, spot):
            return ("create-pool", name, dedicated, spot)
        case ResizePool(name, dedicated, spot):
            return ("resize", name, dedicated, spot)
        case DeletePool(name):
            return ("delete-pool", name)
        case CreateJob(name, pool):
            return ("create-job", name, pool)
        case DeleteJob(name):
            return ("delete-job", name)
        case AddTasks(job, _, tasks):
            return ("add", job, tuple(t.slot for t in tasks))
        case StopTask(job, _, slot, reason):
            return ("stop", job, slot, str(reason))
        case DeleteTask(job, task_id):
            return ("forget", job, task_id)
    raise AssertionError(action)


def steady_pool(name: str = "sims", dedicated: int = 2, owned: bool = True) -> ObservedPool:
    return ObservedPool(
        name,
        owned,
        PoolConfig.of(pool_spec(nodes={"dedicated": dedicated})),
        target_dedicated=dedicated,
        current_dedicated=dedicated,
    )


def observed(*jobs: ObservedJob, pools: tuple[ObservedPool, ...] = (steady_pool(),)) -> Observed:
    return Observed(pools={p.name: p for p in pools}, jobs={j.name: j for j in jobs})


def job(
    *tasks: ObservedTask,
    name: str = "cartpole",
    owned: bool = True,
    state: JobState = JobState.ACTIVE,
    pool: str = "sims",
) -> ObservedJob:
    return ObservedJob(name, pool, owned, state, tasks)


@dataclass(frozen=True)
class Row:
    desired: Desired
    observed: Observed
    expected: list[tuple[Any, ...]]
    seconds_later: float = 0
    requeue_in: float | None = None
    messages: list[str] = field(default_factory=list)


def row(
    name: str, want: Desired, have: Observed, expected: list[tuple[Any, ...]], **extra: Any
) -> Any:
    return pytest.param(Row(want, have, expected, **extra), id=name)


def fleet(sim: Any = CART, n: int = 3, **kw: Any) -> list[ObservedTask]:
    return [task(sim, s, **kw) for s in range(n)]


CRASHED_2 = task(CART, 2, state="exited", ran=5, age=5)
AUTO_5 = {"sims": pool_spec(nodes={"dedicated": "auto", "max": 5})}
RESIZING = ObservedPool("sims", True, PoolConfig.of(pool_spec()), PoolState.RESIZING, 1, 0, 0, 0)
OLD = "0123456789"

ROWS = [
    row(
        "from nothing: pool, job, then every slot in one bulk add",
        desired(CART),
        Observed(),
        [
            ("create-pool", "sims", 2, 0),
            ("create-job", "cartpole", "sims"),
            ("add", "cartpole", (0, 1, 2)),
        ],
    ),
    row("converged: nothing to do", desired(CART), observed(job(*fleet())), []),
    row(
        "scale up fills the new slots",
        desired(simulation(simulators=5)),
        observed(job(*fleet())),
        [("add", "cartpole", (3, 4))],
    ),
    row(
        "scale down stops the highest slots first",
        desired(simulation(simulators=1)),
        observed(job(*fleet())),
        [("stop", "cartpole", 2, "scale-down"), ("stop", "cartpole", 1, "scale-down")],
    ),
    row(
        "scale down: a simulator already stopping is not stopped again",
        desired(simulation(simulators=2)),
        observed(job(*fleet(n=2), task(CART, 2, stopping=True))),
        [],
    ),
    row(
        "rollout: a stopping old simulator counts as gone, so nothing else may retire yet",
        desired(CART_V2),
        observed(job(task(CART, 0, stopping=True), *fleet(CART, 3)[1:], task(CART_V2, 1, age=30))),
        [],
    ),
    row(
        "two live simulators in one slot: the older goes",
        desired(CART),
        observed(job(*fleet(), task(CART, 2, attempt=1, age=10))),
        [("stop", "cartpole", 2, "duplicate")],
    ),
    row(
        "crash: waits the initial back-off",
        desired(CART),
        observed(job(*fleet(n=2), CRASHED_2)),
        [],
        requeue_in=10,
        messages=["1/3 simulators failing: exited with code 1"],
    ),
    row(
        "crash: restarts once the back-off passed",
        desired(CART),
        observed(job(*fleet(n=2), CRASHED_2)),
        [("add", "cartpole", (2,))],
        seconds_later=10,
    ),
    row(
        "fourth failure in a row waits 10s × 2³",
        desired(CART),
        observed(
            job(
                *fleet(n=2),
                task(CART, 2, state="exited", ran=5, age=5, failures=3, attempt=3, restarts=3),
            )
        ),
        [],
        requeue_in=80,
    ),
    row(
        "a run longer than resetAfter resets the back-off",
        desired(CART),
        observed(
            job(*fleet(n=2), task(CART, 2, state="exited", ran=900, age=900, failures=5, attempt=5))
        ),
        [],
        requeue_in=10,
    ),
    row(
        "back-off is capped at max",
        desired(CART),
        observed(
            job(*fleet(n=2), task(CART, 2, state="exited", ran=5, age=5, failures=20, attempt=20))
        ),
        [],
        requeue_in=300,
    ),
    row(
        "a simulator simfleet stopped is replaced at once",
        desired(CART),
        observed(job(*fleet(n=2), task(CART, 2, state="exited", stopped=True, age=5))),
        [("add", "cartpole", (2,))],
    ),
    row(
        "restartPolicy Never leaves a failed slot empty",
        desired(NEVER),
        observed(job(*fleet(NEVER, 2), task(NEVER, 2, state="exited", age=5))),
        [],
        messages=["1/3 simulators failed and are not restarted"],
    ),
    row(
        "restartPolicy OnFailure leaves a succeeded slot empty",
        desired(ON_FAILURE),
        observed(
            job(*fleet(ON_FAILURE, 2), task(ON_FAILURE, 2, state="exited", exit_code=0, age=5))
        ),
        [],
    ),
    row(
        "restartPolicy OnFailure restarts a failure",
        desired(ON_FAILURE),
        observed(
            job(
                *fleet(ON_FAILURE, 2),
                task(ON_FAILURE, 2, state="exited", exit_code=2, age=30, ran=5),
            )
        ),
        [("add", "cartpole", (2,))],
    ),
    row(
        "suspend: left exactly as it is",
        desired(SUSPENDED),
        observed(job(task(SUSPENDED, 0))),
        [],
        messages=["suspended"],
    ),
    row(
        "a job simfleet did not create is never touched",
        desired(CART),
        observed(job(owned=False)),
        [],
        messages=["not created by simfleet"],
    ),
    row(
        "a job still being deleted is waited for",
        desired(CART),
        observed(job(state=JobState.DELETING)),
        [],
    ),
    row(
        "a job terminated behind simfleet's back is replaced",
        desired(CART),
        observed(job(*fleet(state="exited", stopped=True), state=JobState.COMPLETED)),
        [("delete-job", "cartpole")],
        messages=["job was terminated; replacing it"],
    ),
    row(
        "a disabled job is left as it is, and status says how to resume",
        desired(CART),
        observed(job(*fleet(), state=JobState.DISABLED)),
        [],
        messages=["job is disabled"],
    ),
    row(
        "a simulation on an undefined pool waits",
        desired(CART, pools={}),
        Observed(),
        [],
        messages=["pool sims is not defined"],
    ),
    row(
        "prune: a removed spec deletes its job and unused pool",
        desired(pools={}),
        observed(job(task(CART, 0))),
        [("delete-job", "cartpole"), ("delete-pool", "sims")],
    ),
    row(
        "prune keeps a pool a kept simulation still runs on while it moves to its new one",
        desired(simulation(pool="sims2"), pools={"sims2": pool_spec(nodes={"dedicated": 2})}),
        observed(job(*fleet())),
        [
            ("create-pool", "sims2", 2, 0),
            ("create-job", "cartpole-pa2a4dec450", "sims2"),
            ("add", "cartpole-pa2a4dec450", (0,)),
        ],
        messages=["moving to pool sims2: 3 simulator(s) still on the old pool"],
    ),
    row(
        "prune held: nothing deleted while a spec fails",
        desired(pools={}, prune_allowed=False),
        observed(job(task(CART, 0))),
        [],
    ),
    row(
        "prune never deletes what simfleet did not create",
        desired(pools={}),
        observed(job(task(CART, 0), owned=False), pools=(steady_pool(owned=False),)),
        [],
    ),
    row(
        "rollout: surge one new simulator (25% of 3 rounds up)",
        desired(CART_V2),
        observed(job(*fleet())),
        [("add", "cartpole", (0,))],
        messages=["rolling out: 0/3"],
    ),
    row(
        "rollout: once the new one runs, the old one retires; the next pair waits for it",
        desired(CART_V2),
        observed(job(*fleet(), task(CART_V2, 0, age=30))),
        [("stop", "cartpole", 0, "rollout")],
    ),
    row(
        "rollout: nothing old retires while the new one is not available",
        desired(CART_V2),
        observed(job(*fleet(), task(CART_V2, 0, state="pending", age=30))),
        [],
    ),
    row(
        "rollout: a crashing new image backs off and the old simulators stay",
        desired(CART_V2),
        observed(job(*fleet(), task(CART_V2, 0, state="exited", ran=3, age=3))),
        [],
        requeue_in=10,
        messages=["failing"],
    ),
    row(
        "rollout on a full pool: the surge waits, nothing old retires",
        desired(CART_V2),
        observed(job(*fleet(), task(CART_V2, 0, state="pending", age=30))),
        [],
        messages=["1 waiting for a free slot on the pool", "rolling out: 1/3"],
    ),
    row(
        "rollout with maxSurge 0: retire one, replace it next pass",
        desired(simulation(rollout={"maxSurge": 0, "maxUnavailable": 1})),
        observed(job(*fleet(revision_=OLD))),
        [("stop", "cartpole", 2, "rollout")],
    ),
    row(
        # Regression (hypothesis): slot 0's new simulator succeeded for good, slot 1's
        # crashed and backs off; 1 of 2 must serve, and the old one in slot 0 is that one.
        "rollout: a finished slot's old simulator stays while it is all that serves",
        desired(GROWN),
        observed(
            job(
                task(GROWN, 0, revision_=OLD),
                task(GROWN, 0, state="exited", exit_code=0, age=2, ran=1),
                task(GROWN, 1, state="exited", exit_code=2, age=2, ran=1),
            )
        ),
        [],
        requeue_in=9,
    ),
    row(
        "rollout: a finished slot's old simulator retires once another serves",
        desired(GROWN),
        observed(
            job(
                task(GROWN, 0, revision_=OLD),
                task(GROWN, 0, state="exited", exit_code=0, age=2, ran=1),
                task(GROWN, 1, attempt=1, age=1),
            )
        ),
        [("stop", "cartpole", 0, "rollout")],
    ),
    row(
        "recycling: a simulator past maxLifetime gets a fresh one beside it",
        desired(SHORT_LIVED),
        observed(job(task(SHORT_LIVED, 0, age=7200), *fleet(SHORT_LIVED, 3, age=60)[1:])),
        [("add", "cartpole", (0,))],
    ),
    row(
        "recycling: once the fresh one is available the expired one retires",
        desired(SHORT_LIVED),
        observed(
            job(
                task(SHORT_LIVED, 0, age=7200),
                task(SHORT_LIVED, 0, attempt=1, age=30),
                *fleet(SHORT_LIVED, 3, age=60)[1:],
            )
        ),
        [("stop", "cartpole", 0, "recycle")],
    ),
    row(
        "recycling never takes the whole fleet at once (25% of 3 → one at a time)",
        desired(SHORT_LIVED),
        observed(job(*fleet(SHORT_LIVED, 3, age=7200))),
        [("add", "cartpole", (0,))],
    ),
    row(
        "an edit during a rollout keeps the old simulator that serves",
        desired(CART_V2),
        observed(
            job(
                task(CART, 0, revision_=OLD, age=600),
                task(CART, 0, revision_="abcdefabcd", state="pending", age=5),
                *fleet(CART, 3)[1:],
            )
        ),
        # the duplicate goes first; pairing now would run three in slot 0, over maxSurge
        [("stop", "cartpole", 0, "duplicate")],
    ),
    row(
        "a duplicate still being stopped holds the surge; once it is gone the slot pairs",
        desired(CART_V2),
        observed(
            job(
                task(CART, 0, revision_=OLD, age=600),
                task(CART, 0, revision_="abcdefabcd", state="running", age=5, stopping=True),
                *fleet(CART, 3)[1:],
            )
        ),
        [],
    ),
    row(
        "the duplicate has exited: the slot pairs with the current template",
        desired(CART_V2),
        observed(
            job(
                task(CART, 0, revision_=OLD, age=600),
                task(CART, 0, revision_="abcdefabcd", state="exited", age=5, stopped=True),
                *fleet(CART, 3)[1:],
            )
        ),
        [("add", "cartpole", (0,))],
    ),
    row(
        "history: exited simulators beyond 3 per slot are forgotten",
        desired(CART),
        observed(
            job(
                *fleet(),
                *(task(CART, 2, attempt=a, state="exited", age=1000 - a) for a in range(5)),
            )
        ),
        [
            ("forget", "cartpole", task(CART, 2, attempt=1).id),
            ("forget", "cartpole", task(CART, 2, attempt=0).id),
        ],
    ),
    row(
        "auto pool: 9 simulators on 4 slots per node need 3 nodes",
        desired(simulation(simulators=9), pools=AUTO_5),
        observed(pools=(steady_pool(dedicated=1),)),
        [
            ("resize", "sims", 3, 0),
            ("create-job", "cartpole", "sims"),
            ("add", "cartpole", tuple(range(9))),
        ],
    ),
    row(
        "auto pool: bounded by max",
        desired(simulation(simulators=100), pools=AUTO_5),
        observed(job(), pools=(steady_pool(dedicated=5),)),
        [("add", "cartpole", tuple(range(100)))],
    ),
    row(
        "auto pool: down to zero only after the scale-down delay (10 minutes)",
        desired(pools={"sims": pool_spec(nodes={"dedicated": "auto"})}),
        observed(pools=(steady_pool(dedicated=2),)),
        [],
        requeue_in=600,
    ),
    row(
        "auto pool awaiting replacement is sized by the slots its nodes really have",
        desired(
            simulation(simulators=9),
            pools={
                "sims": pool_spec(
                    taskSlotsPerNode=8, nodes={"dedicated": "auto"}, replacement="Hold"
                )
            },
        ),
        observed(job(*fleet(simulation(simulators=9), 9)), pools=(steady_pool(dedicated=3),)),
        [],
    ),
    row(
        "a changed vmSize held by replacement: Hold is reported, not applied",
        desired(
            CART,
            pools={
                "sims": pool_spec(
                    vmSize="standard_d8s_v5", nodes={"dedicated": 2}, replacement="Hold"
                )
            },
        ),
        observed(job(*fleet())),
        [],
    ),
    row(
        "no resize while the pool is resizing",
        desired(CART),
        observed(job(*fleet()), pools=(RESIZING,)),
        [],
    ),
]


@pytest.mark.parametrize("row", ROWS)
def test_plan(row: Row) -> None:
    now = EPOCH + timedelta(seconds=row.seconds_later)
    result = plan(row.desired, row.observed, now)
    assert [summary(a) for a in result.actions] == row.expected
    deadline = now + timedelta(minutes=10, milliseconds=1)  # the progress deadline's wake
    if row.requeue_in is None:
        assert result.requeue_after in (None, deadline)
    else:
        assert result.requeue_after == now + timedelta(seconds=row.requeue_in)
    text = " | ".join(s.message for s in result.status.simulations)
    for fragment in row.messages:
        assert fragment in text


def test_a_changed_vm_size_held_says_needs_replacement() -> None:
    spec = pool_spec(vmSize="standard_d8s_v5", nodes={"dedicated": 2}, replacement="Hold")
    result = plan(desired(CART, pools={"sims": spec}), observed(job()), EPOCH)
    assert "needs replacement: vmSize standard_d4s_v5 → standard_d8s_v5" in (
        result.status.pools[0].message
    )


def test_status_counts_ready_up_to_date_and_restarts() -> None:
    tasks = (
        task(CART, 0, restarts=2, attempt=2),
        task(CART, 1, state="pending"),
        task(CART, 2, state="exited", age=5, ran=5, restarts=1, attempt=1),
    )
    status = plan(desired(CART), observed(job(*tasks)), EPOCH).status.simulations[0]
    assert (status.desired, status.ready, status.up_to_date, status.restarts) == (3, 1, 2, 3)
    assert [row.state for row in status.simulators] == ["running", "pending", "waiting"]
    assert status.simulators[2].last_exit is not None
    assert status.simulators[2].last_exit.exit_code == 1


@pytest.mark.parametrize(
    ("observed_task", "available"),
    [
        pytest.param(task(CART, 0, age=10), True, id="running-past-the-settle-time"),
        pytest.param(task(CART, 0, age=2), False, id="running-but-settling"),
        pytest.param(task(CART, 0, age=10, stopping=True), False, id="being-stopped"),
        pytest.param(task(CART, 0, state="pending"), False, id="pending"),
        pytest.param(task(CART, 0, state="exited", age=5, ran=5), False, id="backing-off"),
    ],
)
def test_a_slot_row_says_whether_its_simulator_is_available(
    observed_task: ObservedTask, available: bool
) -> None:
    """The status page tells settling simulators from serving ones by this flag."""
    one = simulation(simulators=1)
    config = PlannerConfig(settle=timedelta(seconds=5))
    result = plan(desired(one), observed(job(observed_task)), EPOCH, config)
    assert result.status.simulations[0].simulators[0].available is available


def test_a_restart_carries_its_counts_forward() -> None:
    tasks = (
        task(CART, 0),
        task(CART, 1),
        task(CART, 2, state="exited", ran=5, age=5, attempt=4, restarts=4, failures=2),
    )
    result = plan(desired(CART), observed(job(*tasks)), EPOCH + timedelta(seconds=60))
    (add,) = result.actions
    assert isinstance(add, AddTasks)
    (new,) = add.tasks
    assert (new.attempt, new.restarts, new.failures, new.revision) == (5, 5, 3, rev(CART))


class TestRecycling:
    def test_the_backstop_limit_sits_a_margin_above_max_lifetime_and_below_180_days(
        self,
    ) -> None:
        from controller.planner import wall_clock_limit

        assert wall_clock_limit(timedelta(days=150)) == timedelta(days=165)
        assert wall_clock_limit(timedelta(days=170)) == timedelta(days=180)
        assert wall_clock_limit(timedelta(seconds=10)) == timedelta(seconds=70)


class TestConditions:
    """Available / Progressing / Stalled, with progress carried from pass to pass."""

    @staticmethod
    def conditions(result: Any) -> dict[str, tuple[bool, str, str]]:
        sim = result.status.simulations[0]
        return {str(c.type): (c.status, str(c.reason), c.message) for c in sim.conditions}

    def test_a_converged_simulation_is_available_and_complete(self) -> None:
        result = plan(desired(CART), observed(job(*fleet())), EPOCH)
        conditions = self.conditions(result)
        assert conditions["Available"][:2] == (True, "MinimumSimulatorsAvailable")
        assert conditions["Progressing"][:2] == (True, "RolloutComplete")
        assert conditions["Stalled"][:2] == (False, "RolloutComplete")
        assert result.progress == {}

    def test_a_broken_rollout_stalls_after_the_deadline_naming_the_failure(self) -> None:
        broken = observed(job(*fleet(), task(CART_V2, 0, state="exited", ran=2, age=3)))
        first = plan(desired(CART_V2), broken, EPOCH)
        assert self.conditions(first)["Stalled"][0] is False
        assert self.conditions(first)["Progressing"][1] == "RollingOut"
        later = EPOCH + timedelta(minutes=11)
        # attempt 9 of the new template crashed a second ago (11 min after the first pass)
        crashed = task(CART_V2, 0, attempt=9, failures=1, state="exited", ran=2, age=-657)
        still = observed(job(*fleet(), crashed))
        second = plan(desired(CART_V2), still, later, progress=first.progress)
        stalled, reason, message = self.conditions(second)["Stalled"]
        assert (stalled, reason) == (True, "ProgressDeadlineExceeded")
        assert "no progress for 10m: 1/3 simulators failing: exited with code 1" in message
        assert self.conditions(second)["Available"][0] is True  # the old ones still serve
        assert second.status.simulations[0].message.startswith("stalled: no progress for 10m")

    def test_progress_resets_the_deadline(self) -> None:
        first = plan(desired(CART_V2), observed(job(*fleet())), EPOCH)
        later = EPOCH + timedelta(minutes=11)
        moved = observed(job(*fleet(), task(CART_V2, 0, age=60)))
        second = plan(desired(CART_V2), moved, later, progress=first.progress)
        assert self.conditions(second)["Stalled"][0] is False
        assert second.progress["cartpole"].since == later

    def test_a_flapping_simulator_is_no_progress(self) -> None:
        crashing = observed(job(*fleet(n=2), task(CART, 2, state="exited", ran=2, age=3)))
        first = plan(desired(CART), crashing, EPOCH)
        # restarted a second before the second pass; with a 5 s settle it is not available
        running_again = observed(job(*fleet(n=2), task(CART, 2, attempt=1, age=-299)))
        with_settle = PlannerConfig(settle=timedelta(seconds=5))
        second = plan(
            desired(CART),
            running_again,
            EPOCH + timedelta(minutes=5),
            with_settle,
            progress=first.progress,
        )
        assert second.progress["cartpole"].since == EPOCH  # not settled yet: no progress

    def test_suspended_is_never_stalled(self) -> None:
        result = plan(desired(SUSPENDED), observed(job()), EPOCH)
        assert self.conditions(result)["Stalled"][:2] == (False, "Suspended")


def test_old_simulators_that_have_not_settled_yet_are_not_retired_for_free() -> None:
    """Regression: a rollout right after a fleet came up stopped every old simulator,
    because not-yet-settled ones counted as unavailable and were retired at no cost."""
    fresh = observed(job(*fleet(age=0.1)))
    result = plan(desired(CART_V2), fresh, EPOCH, PlannerConfig(settle=timedelta(seconds=5)))
    assert [summary(a) for a in result.actions] == [("add", "cartpole", (0,))]


def test_slots_finished_successfully_need_no_server_to_be_available() -> None:
    finished = [task(ON_FAILURE, s, state="exited", exit_code=0, age=60) for s in range(2)]
    result = plan(desired(ON_FAILURE), observed(job(*finished, task(ON_FAILURE, 2))), EPOCH)
    (status,) = result.status.simulations
    available = next(c for c in status.conditions if c.type.value == "Available")
    assert available.status is True
    assert result.converged


def test_a_simulation_held_back_is_not_converged() -> None:
    """Regression: a typo in ``pool`` made ``apply --wait`` report "converged" at 0/3."""
    result = plan(desired(simulation(pool="simz")), observed(), EPOCH)
    assert result.actions == ()
    assert not result.converged
    assert result.requeue_after == EPOCH + timedelta(minutes=10, milliseconds=1)
    later = plan(
        desired(simulation(pool="simz")),
        observed(),
        EPOCH + timedelta(minutes=11),
        progress=result.progress,
    )
    (status,) = later.status.simulations
    stalled = next(c for c in status.conditions if c.type.value == "Stalled")
    assert stalled.status is True
    assert "pool simz is not defined" in stalled.message
    suspended = plan(desired(SUSPENDED), observed(job()), EPOCH)
    assert suspended.converged  # suspended on purpose: nothing is owed


def test_a_finished_slot_does_not_let_an_extra_old_simulator_go() -> None:
    """4 desired, maxUnavailable 1, slot 0 finished at the new template, slots 1-3 old and
    not settled: Kubernetes' bound allows retiring slot 0's old one and one more."""
    sim = simulation(
        simulators=4,
        restartPolicy="OnFailure",
        rollout={"maxSurge": 1, "maxUnavailable": 1},
        image="cartpole:2.0",
    )
    old = "0123456789"
    tasks = [task(sim, s, revision_=old, age=3) for s in range(4)]
    tasks.append(task(sim, 0, state="exited", exit_code=0, age=2, ran=1))  # newest in slot 0
    result = plan(
        desired(sim), observed(job(*tasks)), EPOCH, PlannerConfig(settle=timedelta(seconds=5))
    )
    stops = [a.slot for a in result.actions if isinstance(a, StopTask)]
    assert sorted(stops) == [0, 1]


EXIT_WORDING = [
    pytest.param(
        [task(CART, 2, state="exited", ran=5, age=5, exit_code=0)],
        ["1/3 simulators exited with code 0, restarting in 10s"],
        ["failing"],
        id="a clean exit under Always is exited, not failing, and waits the same back-off",
    ),
    pytest.param(
        [task(CART, 2, state="exited", ran=5, age=5, exit_code=3)],
        ["1/3 simulators failing: exited with code 3 (next restart in 10s)"],
        ["code 0"],
        id="an exit with a failure code is failing",
    ),
    pytest.param(
        [
            task(CART, 1, state="exited", ran=5, age=5, exit_code=0),
            task(CART, 2, state="exited", ran=5, age=8, exit_code=3),
        ],
        [
            "1/3 simulators failing: exited with code 3 (next restart in 7s)",
            "1/3 simulators exited with code 0, restarting in 10s",
        ],
        [],
        id="both at once: each counted under its own words, failures first",
    ),
]


@pytest.mark.parametrize(("exits", "said", "unsaid"), EXIT_WORDING)
def test_exits_waiting_for_a_restart_are_described_by_how_they_ended(
    exits: list[ObservedTask], said: list[str], unsaid: list[str]
) -> None:
    exited = {t.slot for t in exits}
    tasks = [t for t in fleet() if t.slot not in exited] + exits
    result = plan(desired(CART), observed(job(*tasks)), EPOCH)
    assert result.actions == ()  # every exit still waits out its back-off
    (sim,) = result.status.simulations
    for fragment in said:
        assert fragment in sim.message
    assert sim.message.index(said[0]) == 0
    for fragment in unsaid:
        assert fragment not in sim.message
