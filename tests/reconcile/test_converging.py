"""``apply --wait`` as reconciler steps: back-off, pools-only polling while no node is up,
never inside a Retry-After window — checked by counting the fake backend's observations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from controller.backends import TransientBackendError
from controller.planner import Observed
from controller.reconcile import (
    ActionFailure,
    Backoff,
    Clock,
    PassResult,
    Reconciler,
    Settings,
    Verdict,
    converge,
    waiting_for_nodes,
)
from controller.testing import FakeBackend, FakeClock
from tests.daemon.conftest import POOL, simulation


class Sleeper:
    """A sleep that moves the fake clock and remembers every pause; it can run a hook
    before a given pause returns (nodes arriving while the command waits)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.pauses: list[float] = []
        self.hooks: dict[int, list[object]] = {}

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.clock.advance(seconds)
        for hook in self.hooks.pop(len(self.pauses), []):
            assert callable(hook)
            hook()


def setup(tmp_path: Path, backend: FakeBackend, clock: FakeClock) -> Reconciler:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(POOL)
    (specs / "a.yaml").write_text(simulation("alpha", 2))
    (specs / "b.yaml").write_text(simulation("beta", 1))
    settings = Settings(specs=specs, revision_key=b"k" * 32, environ={})
    return Reconciler(settings, backend, clock=Clock(wall=clock, monotonic=clock.monotonic))


def ignore(*_: object) -> None:
    """Nothing to show in these tests."""


async def test_while_no_node_is_up_only_the_pools_are_polled_with_back_off(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, nodes_arrive=False)
    sleep = Sleeper(clock)
    sleep.hooks[8] = [lambda: backend.grant_nodes("sims")]
    steps: list[PassResult] = []
    verdict, _ = await converge(
        setup(tmp_path, backend, clock),
        within=600,
        on_step=steps.append,
        on_retry=ignore,
        sleep=sleep,
    )
    assert verdict is Verdict.CONVERGED
    full = [i for i, jobs in enumerate(backend.observations) if jobs is None]
    # one full step creates everything and leaves the new pool without nodes; pools alone
    # until the nodes came (after the 8th pause; the bench saw a second full step, a
    # listing of every new job, before this); one full step once they are up, to converge
    assert full == [0, len(backend.observations) - 1]
    assert all(jobs == frozenset() for jobs in backend.observations[1:-1])
    # the poll that finds the nodes up is followed by the full step at once (no pause):
    # waiting out one more back-off would only delay the simulators (the bench saw 15 s)
    assert sleep.pauses == [1, 1, 2, 4, 8, 15, 15, 15, 0]
    assert len(backend.observations) <= sum(sleep.pauses)  # at most one request a second


async def test_waiting_gives_up_after_its_time(tmp_path: Path) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, nodes_arrive=False)
    sleep = Sleeper(clock)
    verdict, last = await converge(
        setup(tmp_path, backend, clock),
        within=100,
        on_step=ignore,
        on_retry=ignore,
        sleep=sleep,
    )
    assert verdict is Verdict.TIMED_OUT
    assert last is not None
    assert sum(sleep.pauses) <= 100


class ThrottledOnce(FakeBackend):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.throttle = True

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        if self.throttle:
            self.throttle = False
            raise TransientBackendError("429", code="429", retry_after=30.0)
        return await super().observe(jobs)


async def test_nothing_is_sent_inside_a_retry_after_window(tmp_path: Path) -> None:
    clock = FakeClock()
    backend = ThrottledOnce(clock)
    sleep = Sleeper(clock)
    retries: list[float] = []
    verdict, _ = await converge(
        setup(tmp_path, backend, clock),
        within=600,
        on_step=ignore,
        on_retry=lambda _exc, pause: retries.append(pause),
        sleep=sleep,
    )
    assert verdict is Verdict.CONVERGED
    assert retries == [30.0]
    assert sleep.pauses[0] == 30.0


def test_back_off_doubles_to_its_cap_and_resets_on_change() -> None:
    backoff = Backoff()
    pauses = [1.0]
    for changed in (False, False, False, False, False, True, False):
        pauses.append(backoff.next(pauses[-1], changed))
    assert pauses == [1, 2, 4, 8, 15, 15, 1, 2]


async def test_a_step_with_failed_actions_is_followed_by_a_full_one(tmp_path: Path) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, nodes_arrive=False)
    result = await setup(tmp_path, backend, clock).step()
    assert waiting_for_nodes(result)  # the pool it created has no node yet
    failed = ActionFailure(result.executed[-1], "busy", "ServerBusy", transient=True)
    assert not waiting_for_nodes(dataclasses.replace(result, failures=(failed,)))
