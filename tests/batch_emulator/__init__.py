"""An emulator of the Azure Batch REST API (api-version 2025-06-01) for simfleet's tests.

simfleet's Azure backend is tested through the real `azure-batch` SDK over real HTTP
against this server, because Azure is unreachable from the test machines and canned
mocks would not notice a wrong status code, header or body shape. The emulator is built
from the official specification (`spec/BatchService.json`): it routes by the spec's
path templates, validates request bodies against the spec's definitions, and in test mode
checks every answer against them too.

Start it in-process with `BatchEmulator` (or the pytest fixtures in `fixtures.py`), or
standalone with `python -m tests.batch_emulator --port 8999`.
"""

from ._behaviour import Outcome, TaskRule
from ._config import API_VERSION, EmulatorConfig
from ._conformance import Violation
from ._counters import RequestCounters
from ._emulator import BatchEmulator
from ._faults import EarlyArrival, Fault, FaultInjector

__all__ = [
    "API_VERSION",
    "BatchEmulator",
    "EarlyArrival",
    "EmulatorConfig",
    "Fault",
    "FaultInjector",
    "Outcome",
    "RequestCounters",
    "TaskRule",
    "Violation",
]
