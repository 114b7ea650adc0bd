"""What simfleet tells every simulator about itself, on every backend alike.

A simulator learns its simulation, its slot and its task id from its environment, the
same way on this machine and on Batch, so one simulator image runs unchanged on both. A
spec's own ``env`` wins over these names (a simulator that wants its own value keeps it);
``PYTHONUNBUFFERED`` makes Python simulators' output reach ``logs`` as it is printed.
"""

from __future__ import annotations

#: The names, in the order they are set.
SIMFLEET_VARIABLES = (
    "SIMFLEET_SIMULATION",
    "SIMFLEET_SLOT",
    "SIMFLEET_TASK_ID",
    "PYTHONUNBUFFERED",
)


def simulator_variables(simulation: str, slot: int, task_id: str) -> dict[str, str]:
    """The variables simfleet sets for the simulator of ``slot`` in task ``task_id``."""
    values = (simulation, str(slot), task_id, "1")
    return dict(zip(SIMFLEET_VARIABLES, values, strict=True))
