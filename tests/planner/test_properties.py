"""Properties of the planner, checked by driving :class:`FakeBackend` with random fleets.

Each example builds a random desired state, runs passes (plan, then apply every action)
with random simulator crashes in between, then changes the desired state and runs again.
The invariants must hold after every pass, and the fleet must converge.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.planner import (
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    Desired,
    DesiredSimulation,
    Observed,
    ObservedTask,
    Plan,
    PoolConfig,
    PoolMemory,
    Progress,
    ResizePool,
    ShrinkPool,
    SimulatorState,
    StopTask,
    plan,
    revision,
    template_of,
)
from controller.planner._fenceposts import resolve
from controller.testing import FakeBackend, FakeClock

from .conftest import pool_spec, simulation

NAMES = ["alpha", "beta", "gamma"]


@st.composite
def desired_states(draw: st.DrawFn, prune_allowed: bool | None = None) -> Desired:
    pool_names = ["sims", "sims2"] if draw(st.booleans()) else ["sims"]
    pools = {
        name: pool_spec(
            taskSlotsPerNode=draw(st.integers(1, 4)),
            # Fixed pools are roomy enough for every surge; a full pool stalls a rollout by
            # design (see the table test "rollout on a full pool").
            nodes=draw(
                st.sampled_from(
                    [
                        {"dedicated": 30},
                        {"dedicated": "auto", "max": 50},
                        {"dedicated": 1, "spot": "auto", "max": 50},
                    ]
                )
            ),
        )
        for name in pool_names
    }
    sims = {}
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3)):
        sims[name] = simulation(
            name,
            pool=draw(st.sampled_from(pool_names)),  # a second state may move it
            simulators=draw(st.integers(0, 8)),
            image=draw(st.sampled_from(["sim:1", "sim:2"])),
            restartPolicy=draw(st.sampled_from(["Always", "OnFailure", "Never"])),
            rollout=draw(
                st.sampled_from(
                    [
                        {"maxSurge": "25%", "maxUnavailable": 0},
                        {"maxSurge": 0, "maxUnavailable": 1},
                        {"maxSurge": 2, "maxUnavailable": "50%"},
                    ]
                )
            ),
        )
    allowed = draw(st.booleans()) if prune_allowed is None else prune_allowed
    return Desired(
        pools=pools,
        simulations=sims,
        prune_held_because="" if allowed else "held",
    )


def tasks_of(observed: Observed, name: str) -> list[tuple[str, ObservedTask]]:
    """Every task of a simulation with its job's id: a pool replacement gives it a job on
    each pool generation (see ``controller.planner._replacement``)."""
    return [
        (job.name, t)
        for job in observed.jobs.values()
        if (job.simulation or job.name) == name
        for t in job.tasks
    ]


def simulations_of(observed: Observed) -> set[str]:
    return {job.simulation or job.name for job in observed.jobs.values()}


def pairs_of(observed: Observed, name: str) -> int:
    """Slots holding two live simulators (an old one and its replacement)."""
    per_slot = Counter(t.slot for _, t in tasks_of(observed, name) if t.live)
    return sum(1 for n in per_slot.values() if n == 2)


def serving(observed: Observed, name: str) -> int:
    """Running simulators of a simulation (the FakeBackend's settle time is 0)."""
    return sum(1 for _, t in tasks_of(observed, name) if t.state.value == "running")


def finished(observed: Observed, sim: DesiredSimulation) -> int:
    """Slots whose current-template simulator ended successfully for good (not Always)."""
    if sim.spec.restart_policy.value == "Always":
        return 0
    current = revision(template_of(sim))
    return len(
        {
            t.slot
            for _, t in tasks_of(observed, sim.name)
            if t.revision == current
            and t.exit is not None
            and t.exit.reason.value == "succeeded"
            and t.slot < sim.spec.simulators
        }
    )


def check_invariants(desired: Desired, observed: Observed, allowed_pairs: dict[str, int]) -> None:
    """Never two live simulators of one template in a slot, never more than a pair, and
    never more pairs than maxSurge (or than a previous desired state left behind)."""
    for name in simulations_of(observed):
        live = [(j, t) for j, t in tasks_of(observed, name) if t.live]
        per_slot = Counter(t.slot for _, t in live)
        per_slot_rev = Counter((j, t.slot, t.revision) for j, t in live)
        assert max(per_slot_rev.values(), default=0) <= 1, f"duplicate in {name}"
        assert max(per_slot.values(), default=0) <= 2, f"more than a pair in {name}"
        if name in desired.simulations:
            assert pairs_of(observed, name) <= allowed_pairs[name], f"surge exceeded in {name}"


def crash_one(backend: FakeBackend, choice: int, spare: frozenset[str] = frozenset()) -> None:
    """Crash the running simulator ``choice`` picks (exit code ``choice % 3``), if any,
    outside the jobs in ``spare``."""
    live = sorted(
        (j, t.id)
        for j in backend.jobs
        if j not in spare
        for t in backend.live_tasks(j)
        if t.state is SimulatorState.RUNNING
    )
    if live:
        job, task = live[choice % len(live)]
        backend.crash(job, task, exit_code=choice % 3)


def allowed_pairs(desired: Desired, before: Observed) -> dict[str, int]:
    """Surge pairs each simulation may have after a pass: its maxSurge, or as many as it
    already had (a pass never adds to an excess, it may inherit one)."""
    return {
        name: max(resolve(sim.spec.rollout, sim.spec.simulators).surge, pairs_of(before, name))
        for name, sim in desired.simulations.items()
    }


def drive(
    backend: FakeBackend, desired: Desired, clock: FakeClock, crashes: list[int], passes: int = 60
) -> dict[str, Progress]:
    """Run passes until nothing is due; crash a simulator before some of them.

    Progress is handed from pass to pass, as the daemon does; it is returned at the end.
    """
    progress: dict[str, Progress] = {}
    sizing: dict[str, PoolMemory] = {}
    for number in range(passes):
        if number < len(crashes):
            crash_one(backend, crashes[number])
        before = backend.snapshot()
        allowed = allowed_pairs(desired, before)
        result = plan(desired, before, clock(), progress=progress, sizing=sizing)
        progress = dict(result.progress)
        sizing = dict(result.sizing)
        floor = {  # a pass never takes availability below what maxUnavailable allows
            name: min(
                serving(before, name),
                sim.spec.simulators
                - finished(before, sim)
                - resolve(sim.spec.rollout, sim.spec.simulators).unavailable,
            )
            for name, sim in desired.simulations.items()
        }
        for action in result.actions:  # real backends expose every intermediate state
            backend.apply(action)
            after = backend.snapshot()
            check_invariants(desired, after, allowed)
            for name, minimum in floor.items():
                if not any(
                    isinstance(a, StopTask) and a.reason.value == "scale-down" and a.job == name
                    for a in result.actions
                ):
                    assert serving(after, name) >= minimum, f"{name} below its floor"
        if not result.actions and number >= len(crashes):
            if result.requeue_after is None:
                return dict(progress)
            clock.current = max(clock.current, result.requeue_after)
        clock.advance(1)
    raise AssertionError("did not converge")


def done_slots(observed: Observed, name: str) -> set[int]:
    """Slots whose newest task ended by itself (under Never it is not replaced)."""
    newest: dict[int, ObservedTask] = {}
    for _, task in tasks_of(observed, name):
        if task.slot not in newest or task.created_at >= newest[task.slot].created_at:
            newest[task.slot] = task
    return {
        slot
        for slot, task in newest.items()
        if task.exit is not None and task.exit.reason.value != "stopped"
    }


def stalled(result: Plan, name: str) -> bool:
    sim = next(s for s in result.status.simulations if s.name == name)
    return any(c.type.value == "Stalled" and c.status for c in sim.conditions)


def assert_converged(
    desired: Desired, backend: FakeBackend, clock: FakeClock, progress: dict[str, Progress]
) -> None:
    """Nothing left to do; every simulation on its template, or stalled with its old
    simulators still serving (a new template that failed under restartPolicy Never)."""
    observed = backend.snapshot()
    again = plan(desired, observed, clock(), progress=progress)
    assert again.actions == ()
    for name, sim in desired.simulations.items():
        rev = revision(template_of(sim))
        live = [t for _, t in tasks_of(observed, name) if t.live]
        assert all(t.slot < sim.spec.simulators for t in live)
        if stalled(again, name):
            assert sim.spec.restart_policy.value == "Never"
            serving_slots = {t.slot for t in live}
            assert all(
                slot in serving_slots or slot in done_slots(observed, name)
                for slot in range(sim.spec.simulators)
            )
            continue
        assert all(t.revision == rev for t in live)
        if sim.spec.restart_policy.value == "Always":
            assert sorted(t.slot for t in live) == list(range(sim.spec.simulators))
    if desired.prune_allowed:
        assert simulations_of(observed) == set(desired.simulations)
        # A replaced pool's (or a moved simulation's) old job and pool are gone: one job
        # per simulation, the pools the specs name.
        # Except where a new simulator failed for good under restartPolicy Never: the old
        # one keeps serving its slot (as for a failed new template), so its job and pool
        # stay until the spec changes.
        kept = {
            name
            for name, sim in desired.simulations.items()
            if sim.spec.restart_policy.value == "Never" and done_slots(observed, name)
        }
        extra = len(observed.jobs) - len(desired.simulations)
        assert extra == 0 or (kept and extra <= len(kept)), sorted(observed.jobs)
        # Every pool in the specs exists as it says (its current generation); any other
        # pool is one such a kept old job runs on.
        current = {
            name
            for name, pool in observed.pools.items()
            if (spec := desired.pools.get(pool.spec_pool or name)) is not None
            and pool.config == PoolConfig.of(spec)
        }
        assert {observed.pools[n].spec_pool or n for n in current} == set(desired.pools)
        still_used = {j.pool for j in observed.jobs.values() if (j.simulation or j.name) in kept}
        assert set(observed.pools) - current <= still_used, sorted(observed.pools)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    first=desired_states(prune_allowed=True),
    second=desired_states(),
    crashes=st.lists(st.integers(0, 100), max_size=6),
)
def test_fleets_converge_and_replanning_does_nothing(
    first: Desired, second: Desired, crashes: list[int]
) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock)
    assert_converged(first, backend, clock, drive(backend, first, clock, crashes))
    assert_converged(second, backend, clock, drive(backend, second, clock, crashes))


@SETTINGS
@given(first=desired_states(prune_allowed=True), second=desired_states(prune_allowed=False))
def test_nothing_is_deleted_while_pruning_is_held(first: Desired, second: Desired) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock)
    drive(backend, first, clock, [])
    before = set(backend.jobs) | set(backend.pools)
    for _ in range(5):
        for action in plan(second, backend.snapshot(), clock()).actions:
            assert not isinstance(action, DeleteJob | DeletePool)
            backend.apply(action)
    assert before <= set(backend.jobs) | set(backend.pools)


@SETTINGS
@given(state=desired_states(prune_allowed=True), crashes=st.lists(st.integers(0, 100), max_size=4))
def test_objects_simfleet_did_not_create_are_never_touched(
    state: Desired, crashes: list[int]
) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock)
    backend.add_foreign_job("alpha", "sims")
    backend.add_foreign_job("outsider", "other")
    foreign = {"alpha", "outsider"}
    for _ in range(20):
        for action in plan(state, backend.snapshot(), clock()).actions:
            match action:
                case CreateJob(name=n) | DeleteJob(name=n):
                    assert n not in foreign
                case AddTasks(job=n) | StopTask(job=n) | DeleteTask(job=n):
                    assert n not in foreign
                case CreatePool() | ResizePool() | ShrinkPool() | DeletePool():
                    pass
            backend.apply(action)
        clock.advance(400)
    assert backend.jobs["alpha"].tasks == {}
    assert backend.jobs["outsider"].tasks == {}


def test_a_pass_repeated_after_a_crash_creates_no_duplicate() -> None:
    """Applying a plan twice (the controller died before it saw the result) is harmless."""
    state = Desired(
        pools={"sims": pool_spec(nodes={"dedicated": 2})},
        simulations={"alpha": simulation("alpha", simulators=5)},
    )
    clock = FakeClock()
    backend = FakeBackend(clock)
    first = plan(state, backend.snapshot(), clock())
    for action in first.actions + first.actions:
        backend.apply(action)
    assert len(backend.live_tasks("alpha")) == 5
    assert plan(state, backend.snapshot(), clock()).actions == ()


def test_sims_of_one_simulation_share_a_revision_and_ids_are_stable() -> None:
    sim: DesiredSimulation = simulation("alpha", simulators=2)
    a = plan(
        Desired(pools={"sims": pool_spec()}, simulations={"alpha": sim}), Observed(), FakeClock()()
    )
    b = plan(
        Desired(pools={"sims": pool_spec()}, simulations={"alpha": sim}),
        Observed(),
        FakeClock()() + timedelta(hours=1),
    )
    assert a.actions == b.actions
