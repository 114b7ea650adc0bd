"""Adapters between the planner's vocabulary and the places simulators run.

``local`` runs simulators on this machine; ``azure`` drives Azure Batch through the
official SDK. Both satisfy :class:`Backend`; the same scenario tests run against each.
"""

from controller.backends._errors import (
    BackendError,
    OutputGoneError,
    PermanentBackendError,
    TransientBackendError,
    UnreachableBackendError,
)
from controller.backends._fleets import DEFAULT_FLEET, MAX_FLEET_LENGTH, check_fleet_name
from controller.backends._lease import (
    Claim,
    Lease,
    LeaseLostError,
    LeaseRecord,
    LeaseState,
    LeaseTimings,
    claim,
)
from controller.backends._protocol import (
    TAIL_BYTES,
    TAIL_LINES,
    Backend,
    OutputChunk,
    OutputStream,
    byte_range,
)
from controller.backends._redaction import (
    MASK,
    MIN_SECRET_LENGTH,
    Redactor,
    redact,
    redacted_tail,
    too_short,
)

__all__ = [
    "DEFAULT_FLEET",
    "MASK",
    "MAX_FLEET_LENGTH",
    "MIN_SECRET_LENGTH",
    "TAIL_BYTES",
    "TAIL_LINES",
    "Backend",
    "BackendError",
    "Claim",
    "Lease",
    "LeaseLostError",
    "LeaseRecord",
    "LeaseState",
    "LeaseTimings",
    "OutputChunk",
    "OutputGoneError",
    "OutputStream",
    "PermanentBackendError",
    "Redactor",
    "TransientBackendError",
    "UnreachableBackendError",
    "byte_range",
    "check_fleet_name",
    "claim",
    "redact",
    "redacted_tail",
    "too_short",
]
