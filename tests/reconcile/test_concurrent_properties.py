"""The planner's safety properties hold with concurrent execution, after every action.

The planner's own property tests (tests/planner/test_properties.py) apply a plan's actions
one by one in order. Here the same random fleets go through the concurrent
:class:`~controller.reconcile.Executor` instead — random in-flight limits, random chunk
sizes, every request taking a random number of event-loop turns, so requests finish in
random interleavings — and after *every* executed action: no duplicate live simulator in
a slot, at most ``maxSurge`` pairs, the availability floor of ``maxUnavailable``, and
nothing simfleet did not create touched.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.planner import Action, Desired, PoolMemory, Progress, StopTask, plan, subject
from controller.planner._fenceposts import resolve
from controller.reconcile import Executor
from controller.testing import FakeBackend, FakeClock
from tests.planner.test_properties import (
    allowed_pairs,
    check_invariants,
    crash_one,
    desired_states,
    finished,
    serving,
)

FOREIGN = frozenset({"outsider"})


class Interleaved(FakeBackend):
    """Each request waits a random number of loop turns, then takes effect at once and
    the invariants are checked on the state it leaves."""

    def __init__(self, clock: FakeClock, rng: random.Random, tasks_per_request: int) -> None:
        super().__init__(clock)
        self.rng = rng
        self.tasks_per_request = tasks_per_request
        self.check: Callable[[], None] = lambda: None

    async def execute(self, action: Action) -> None:
        for _ in range(self.rng.randint(0, 6)):
            await asyncio.sleep(0)
        kind, name = subject(action)
        assert not (kind == "simulation" and name in FOREIGN), f"touched {name}"
        self.apply(action)
        self.check()


def checker(
    backend: FakeBackend, desired: Desired, allowed: dict[str, int], floor: dict[str, int]
) -> Callable[[], None]:
    """The invariants of one pass, to check on every state the backend passes through."""

    def check() -> None:
        after = backend.snapshot()
        check_invariants(desired, after, allowed)
        for name, minimum in floor.items():
            assert serving(after, name) >= minimum, f"{name} below its floor"

    return check


async def drive(
    backend: Interleaved,
    desired: Desired,
    clock: FakeClock,
    crashes: list[int],
    limit: int,
    passes: int = 60,
) -> dict[str, Progress]:
    """Passes until nothing is due, executed concurrently; crashes before some of them."""
    progress: dict[str, Progress] = {}
    sizing: dict[str, PoolMemory] = {}
    executor = Executor(backend, max_in_flight=limit)
    for number in range(passes):
        if number < len(crashes):
            crash_one(backend, crashes[number], spare=FOREIGN)
        before = backend.snapshot()
        allowed = allowed_pairs(desired, before)
        result = plan(desired, before, clock(), progress=progress, sizing=sizing)
        progress = dict(result.progress)
        sizing = dict(result.sizing)
        scaled_down = {
            a.job
            for a in result.actions
            if isinstance(a, StopTask) and a.reason.value == "scale-down"
        }
        floor = {
            name: min(
                serving(before, name),
                sim.spec.simulators
                - finished(before, sim)
                - resolve(sim.spec.rollout, sim.spec.simulators).unavailable,
            )
            for name, sim in desired.simulations.items()
            if name not in scaled_down
        }
        backend.check = checker(backend, desired, allowed, floor)
        execution = await executor.run(result.actions)
        assert execution.failures == ()
        if not result.actions and number >= len(crashes):
            if result.requeue_after is None:
                return progress
            clock.current = max(clock.current, result.requeue_after)
        clock.advance(1)
    raise AssertionError("did not converge")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=desired_states(prune_allowed=True),
    second=desired_states(),
    crashes=st.lists(st.integers(0, 100), max_size=6),
    seed=st.integers(0, 2**32 - 1),
    limit=st.integers(1, 16),
    chunk=st.integers(1, 4),
)
def test_concurrent_passes_keep_every_invariant_after_every_action(
    first: Desired, second: Desired, crashes: list[int], seed: int, limit: int, chunk: int
) -> None:
    clock = FakeClock()
    backend = Interleaved(clock, random.Random(seed), tasks_per_request=chunk)
    backend.add_foreign_job("outsider", "sims")

    async def scenario() -> None:
        for desired in (first, second):
            done = await drive(backend, desired, clock, crashes, limit)
            assert plan(desired, backend.snapshot(), clock(), progress=done).actions == ()

    asyncio.run(scenario())
    assert backend.jobs["outsider"].tasks == {}
