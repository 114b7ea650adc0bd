"""The reconcile layer: where spec, backend and planner meet.

A reader's map:

- :mod:`._reconciler` — the :class:`Reconciler`, which owns the loop's state (last good
  catalog, the fleet as last seen, rollout progress, prune-delay clocks, the
  ``Retry-After`` window, the clock) and runs a step: read specs, observe, plan, execute;
- :mod:`._desired` — specs to the planner's desired state (secrets resolved);
- :mod:`._scope` — which simulations a spec edit changed (what a step must look at);
- :mod:`._snapshot` — the cached view of the fleet: scoped observations merged into it,
  executed actions' effects applied to it;
- :mod:`._planning` — where a step is planned (its plan, and its status after execution);
- :mod:`._executor` — where a step is executed (phases, chains, the in-flight limit);
- :mod:`._result` — what a step saw, decided and did;
- :mod:`._converging` — ``apply --wait``: steps until converged, with back-off;
- :mod:`._progress_file`, :mod:`._window`, :mod:`._clock` — the state that outlives a
  step: progress on disk, the ``Retry-After`` window, wall and monotonic time;
- :mod:`._pass` — one stateless pass, for callers without a specs directory.
"""

from controller.reconcile._clock import Clock, utc_now
from controller.reconcile._converging import (
    UNREACHABLE_PAUSE,
    Backoff,
    Verdict,
    converge,
    stalled,
    waiting_for_nodes,
)
from controller.reconcile._desired import desired_digest, desired_state
from controller.reconcile._executor import MAX_IN_FLIGHT, Execution, Executor
from controller.reconcile._pass import run_pass
from controller.reconcile._progress_file import ProgressFile
from controller.reconcile._reconciler import Reconciler, Settings
from controller.reconcile._result import ActionFailure, PassResult, with_failures
from controller.reconcile._window import RetryWindow

__all__ = [
    "MAX_IN_FLIGHT",
    "UNREACHABLE_PAUSE",
    "ActionFailure",
    "Backoff",
    "Clock",
    "Execution",
    "Executor",
    "PassResult",
    "ProgressFile",
    "Reconciler",
    "RetryWindow",
    "Settings",
    "Verdict",
    "converge",
    "desired_digest",
    "desired_state",
    "run_pass",
    "stalled",
    "utc_now",
    "waiting_for_nodes",
    "with_failures",
]
