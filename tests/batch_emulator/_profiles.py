"""Emulator configurations with Azure Batch's own durations, scaled to run in seconds.

The defaults in `EmulatorConfig` are a few emulator seconds, so that unit tests step
through a pool's life with small `advance()` calls. Real Batch is slower by orders of
magnitude, and what a controller does while it waits (rollouts, progress deadlines,
`apply --wait`) only shows under realistic *proportions*: a pool that allocates for
minutes while a simulator's image pulls in one.

`time_scaled(scale)` keeps those proportions and divides every duration by `scale`: at
the default 60, one emulator second stands for a real minute, a pool allocates in 4 s
and boots its nodes in 3 s more. The emulator's clock still runs at wall speed (the
controller measures its deadlines in wall time too), so a test scales its own
durations (`progressDeadline`, back-offs) by the same factor.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._config import EmulatorConfig

#: Real Batch, in seconds: what a pool, a node and a task take (middle of the ranges).
REAL_DURATIONS: dict[str, float] = {
    "allocation_delay": 240.0,  # a pool allocates its VMs in 3–5 min
    "node_start_delay": 180.0,  # a node boots and its agent starts in 2–4 min
    "image_pull_delay": 60.0,  # a simulator image pulls in about a minute
    "task_prepare_delay": 5.0,  # creating the container of a pulled image
    "stop_resize_delay": 30.0,  # stopping a resize
    "deletion_delay": 120.0,  # a deleted pool takes minutes to go (jobs take less)
    "job_terminate_delay": 10.0,
    "task_counts_lag": 5.0,  # "may not always be up to date": a few seconds
}
DEFAULT_SCALE = 60.0
PROFILES = ("default", "realistic")


def scaled_durations(scale: float = DEFAULT_SCALE) -> dict[str, float]:
    """Batch's real durations divided by ``scale``, as `EmulatorConfig` fields (for the
    fixture: ``make_batch_emulator(**scaled_durations(60))``)."""
    if scale <= 0:
        raise ValueError("the time scale must be positive")
    return {name: seconds / scale for name, seconds in REAL_DURATIONS.items()}


def time_scaled(scale: float = DEFAULT_SCALE, **overrides: Any) -> EmulatorConfig:
    """An `EmulatorConfig` with Batch's real durations divided by ``scale``."""
    return dataclasses.replace(EmulatorConfig(), **{**scaled_durations(scale), **overrides})
