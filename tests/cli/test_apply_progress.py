"""``apply --wait``'s output: each action, failure and error once; progress on change.

The steps are stand-ins for :class:`~controller.reconcile.PassResult` carrying what the
reporter reads (errors, executed actions, failures, status).
"""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from controller.cli._progress import Reporter
from controller.planner import SimulationStatus, Status


def action(text: str) -> Any:
    return SimpleNamespace(describe=lambda: text)


def step(ready: int, up_to_date: int, *actions: str, failed: str = "") -> Any:
    sim = SimulationStatus("cartpole", "sims", "cartpole:1", 4, ready, up_to_date, 0, "", "r1")
    failures = [SimpleNamespace(action=action(failed), message="busy")] if failed else []
    return SimpleNamespace(
        errors=(),
        executed=tuple(action(a) for a in actions),
        failures=tuple(failures),
        status=Status(simulations=(sim,)),
    )


STEPS = [
    step(0, 4, "create pool sims", "start 4 simulator(s)", failed="resize pool sims"),
    step(0, 4, failed="resize pool sims"),
    step(0, 4),
    step(2, 4, "start 4 simulator(s)"),
    step(4, 4),
    step(4, 4),
]


def test_into_a_pipe_each_line_is_printed_once_and_progress_when_it_changes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with Reporter(console) as shown:
        for result in STEPS:
            shown.step(result)
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "create pool sims",
        "start 4 simulator(s)",
        "  cartpole: 0/4 ready, 4 up to date",
        "  cartpole: 2/4 ready, 4 up to date",
        "  cartpole: 4/4 ready, 4 up to date",
    ]
    assert err.splitlines() == ["failed: resize pool sims: busy"]


def test_on_a_terminal_progress_is_a_live_display_and_lines_print_once() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    with Reporter(console) as shown:
        for result in STEPS:
            shown.step(result)
    text = screen.getvalue()
    assert text.count("create pool sims") == 1
    assert text.count("start 4 simulator(s)") == 1
    assert "━" in text  # the bars
    assert text.count("2/4 ready, 4 up to date") == 1  # redrawn only when it changed
    assert "  cartpole: " not in text  # no plain progress lines on a terminal
