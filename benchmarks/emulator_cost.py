"""The emulator's own cost per request at 0 ms injected latency, so that no figure
measures the emulator instead of simfleet (``_lower_bound.request_cost``: one request
after another on a kept-alive connection; a response split across two writes would cost
~40 ms there, Nagle's algorithm waiting for a delayed ACK)."""

from __future__ import annotations

import _lower_bound
from _processes import emulator, fleet
from _table import Row

NAGLE = 0.040


def figure(requests: int) -> Row:
    with fleet(1, 1) as specs, emulator() as emu:
        _lower_bound.cold_writes(emu, specs, 1)
        costs = _lower_bound.request_cost(emu, specs.pool, specs.jobs[0], requests)
    small = costs["get pool"]
    detail = "; ".join(
        f"{name}: {c.round_trip * 1000:.2f} ms round trip, {c.handler * 1000:.2f} ms in the "
        "emulator's handler"
        for name, c in costs.items()
    )
    return Row(
        "emulator",
        "emulator per request at 0 ms (get pool, kept-alive)",
        f"{small.round_trip * 1000:.2f} ms round trip",
        f"{small.handler * 1000:.2f} ms in the handler",
        None,
        "≪ 40 ms (no Nagle stall)",
        small.round_trip < NAGLE / 4,
        f"medians of {requests} sequential requests through the SDK; {detail}",
    )
