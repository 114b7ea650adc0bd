"""One view per simulation per pass: its tasks are sorted into slots once, not per phase.

The change words of ``simfleet plan`` used to group every simulation's tasks a second
time; now every phase, the status row and the words read the same view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

import pytest

from controller.planner import ObservedTask, plan
from controller.planner import _view as view_module
from controller.planner._slots import Slot
from controller.testing import FakeBackend, FakeClock

from .conftest import desired, simulation


@pytest.mark.parametrize("explain", [True, False], ids=["explained", "quiet"])
def test_each_simulation_is_grouped_into_slots_once_per_pass(
    explain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = desired(simulation("alpha", simulators=3), simulation("beta", simulators=2))
    clock = FakeClock()
    backend = FakeBackend(clock)
    for action in plan(first, backend.snapshot(), clock()).actions:
        backend.apply(action)
    edited = desired(  # a rollout and a scale-up: every phase has work to do
        simulation("alpha", simulators=3, image="cartpole:1.1"), simulation("beta", simulators=4)
    )
    grouped: list[str] = []
    real: Callable[..., Mapping[int, Slot]] = view_module.group

    def counting(
        tasks: Iterable[ObservedTask], revision: str, recycle_from: datetime | None = None
    ) -> Mapping[int, Slot]:
        tasks = tuple(tasks)
        grouped.append(tasks[0].id.split("-")[0] if tasks else "")
        return real(tasks, revision, recycle_from)

    monkeypatch.setattr(view_module, "group", counting)
    result = plan(edited, backend.snapshot(), clock(), explain=explain)
    assert result.actions
    assert sorted(grouped) == ["alpha", "beta"]
