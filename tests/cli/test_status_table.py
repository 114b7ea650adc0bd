"""``simfleet status``: the table people read, rendered from a ``/status`` document."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from controller.cli._render import COLUMNS, age, status_table

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DOCUMENT = {
    "simulations": [
        {
            "name": "cartpole",
            "pool": "sims",
            "image": "cartpole:1.1",
            "desired": 8,
            "ready": 7,
            "upToDate": 3,
            "restarts": 2,
            "createdAt": "2026-01-01T09:00:00Z",
            "message": "stalled: no progress for 10m; 1/8 simulators failing: exited with code 3",
        },
    ],
    "pools": [{"name": "sims", "message": "needs replacement: vmSize a → b"}],
    "errors": [
        {
            "file": "specs/b.yaml",
            "line": 7,
            "column": 16,
            "message": "spec.simulators: must be >= 0",
        }
    ],
    "revision": "0123456789abcdef",
}


def render(document: dict[str, object]) -> str:
    console = Console(width=220, record=True, color_system=None)
    console.print(status_table(document, NOW))
    return console.export_text()


def test_the_table_has_the_contract_columns_and_the_row() -> None:
    text = render(DOCUMENT)
    header = text.splitlines()[0].split()
    assert header == list(COLUMNS)
    row = text.splitlines()[1].split()
    assert row[:8] == ["cartpole", "sims", "cartpole:1.1", "8", "7", "3", "2", "3h"]
    assert "stalled: no progress for 10m" in text


def test_pools_errors_and_revision_follow_the_table() -> None:
    text = render(DOCUMENT)
    assert "pool sims: needs replacement: vmSize a → b" in text
    assert "specs/b.yaml:7:16: spec.simulators: must be >= 0" in text
    assert "revision 0123456789abcdef" in text


def test_age_reads_like_kubectl() -> None:
    assert [
        age(t, NOW)
        for t in ("2026-01-01T11:59:50Z", "2026-01-01T11:55:00Z", "2025-12-29T12:00:00Z", None)
    ] == ["10s", "5m", "3d", "-"]


def test_a_standby_says_so_and_who_leads() -> None:
    lease = {"fleet": "default", "role": "standby", "leader": {"holder": "vm-1-ab"}}
    text = render({"simulations": [], "lease": lease})
    assert "standby: fleet 'default' is led by vm-1-ab; ask the leader for its fleet" in text
    leader = render({"simulations": [], "lease": {**lease, "role": "leader"}})
    assert "standby" not in leader
