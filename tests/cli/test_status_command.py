"""``simfleet status``: one simulation by NAME, ``-o json`` (and ``--json``), ``-w``.

A small HTTP server on loopback stands in for the daemon's ``/status``; it serves the
documents it is given in turn, then refuses, which ends a watch with exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from controller.cli import main
from controller.cli import status as status_module
from controller.testing import status_endpoint


def document(state: str = "running", ready: int = 2) -> dict[str, Any]:
    slot: dict[str, Any] = {
        "slot": 0,
        "id": "cartpole-0-abc-1",
        "state": "running",
        "restarts": 0,
        "upToDate": True,
        "lastExit": None,
        "pid": 4242,
        "startedAt": None,
    }
    waiting = {
        **slot,
        "slot": 1,
        "id": "cartpole-1-abc-3",
        "state": state,
        "restarts": 2,
        "pid": None,
        "lastExit": {"reason": "failed", "exitCode": 3, "message": "exited with code 3"},
    }
    return {
        "simulations": [
            {
                "name": "cartpole",
                "pool": "sims",
                "image": "cartpole:1.1",
                "desired": 2,
                "ready": ready,
                "upToDate": 2,
                "restarts": 2,
                "message": "",
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "Ready", "message": ""}
                ],
                "simulators": [slot, waiting],
            },
            {
                "name": "other",
                "pool": "sims",
                "image": "other:1",
                "desired": 0,
                "ready": 0,
                "upToDate": 0,
                "restarts": 0,
                "message": "",
                "simulators": [],
            },
        ],
        "pools": [],
        "errors": [],
        "revision": None,
    }


@pytest.fixture
def daemon() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``(listen, documents)``: each GET serves the next document, then 503s."""
    served: list[dict[str, Any]] = []
    with status_endpoint(lambda: served.pop(0) if served else None) as listen:
        yield listen, served


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["status", *args])


def test_status_name_shows_one_simulation_with_a_row_per_slot(daemon: Any) -> None:
    listen, served = daemon
    served.append(document("waiting"))
    result = invoke("cartpole", "--listen", listen)
    assert result.exit_code == 0, result.output
    assert "Name: cartpole" in result.output
    assert "Condition: Available=True Ready" in result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith(("0 ", "1 "))]
    assert rows[0][:6] == ["0", "running", "0", "yes", "-", "4242"]
    assert rows[1][:6] == ["1", "waiting", "2", "yes", "-", "-"]
    assert "exited with code 3" in result.output
    assert "other" not in result.output


def test_an_unknown_name_is_one_line_naming_the_simulations(daemon: Any) -> None:
    listen, served = daemon
    served.append(document())
    result = invoke("nope", "--listen", listen)
    assert result.exit_code == 1
    assert "no simulation 'nope' in this fleet (simulations: cartpole, other)" in result.output


@pytest.mark.parametrize("flag", [["-o", "json"], ["--output", "json"], ["--json"]])
def test_json_output_is_the_document(daemon: Any, flag: list[str]) -> None:
    listen, served = daemon
    served.append(document())
    result = invoke(*flag, "--listen", listen)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == document()


def test_json_output_of_one_name_is_that_simulation(daemon: Any) -> None:
    listen, served = daemon
    served.append(document())
    result = invoke("cartpole", "-o", "json", "--listen", listen)
    assert json.loads(result.output) == document()["simulations"][0]


@pytest.mark.parametrize("output", ["text", "json"])
def test_watching_into_a_pipe_prints_each_change_once(
    daemon: Any, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    listen, served = daemon
    monkeypatch.setattr(status_module, "WATCH_INTERVAL", 0.0)
    served += [document(ready=1), document(ready=1), document(ready=2), document(ready=2)]
    result = invoke("-w", "-o", output, "--listen", listen)
    assert result.exit_code == 1  # the stand-in daemon stops answering
    assert "no simfleet daemon answers" in result.output
    if output == "json":
        lines = [json.loads(line) for line in result.output.splitlines()[:-1]]
        assert [d["simulations"][0]["ready"] for d in lines] == [1, 2]
    else:
        assert result.output.count("NAME") == 2
        rows = [line.split() for line in result.output.splitlines() if line.startswith("cartpole")]
        assert [row[4] for row in rows] == ["1", "2"]
