"""One stateless pass over a desired state already built: for backend tests, benchmarks
and anything else that has no specs directory. It is one step of a fresh
:class:`~controller.reconcile.Reconciler`, so it plans and executes exactly as the daemon does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from controller.backends import Backend
from controller.planner import Desired, PlannerConfig, PoolMemory, Progress
from controller.reconcile._clock import Clock
from controller.reconcile._executor import MAX_IN_FLIGHT
from controller.reconcile._reconciler import Reconciler, Settings
from controller.reconcile._result import PassResult


async def run_pass(
    desired: Desired,
    backend: Backend,
    clock: Callable[[], datetime],
    *,
    execute: bool = True,
    config: PlannerConfig | None = None,
    progress: Mapping[str, Progress] | None = None,
    absent: Mapping[tuple[str, str], datetime] | None = None,
    sizing: Mapping[str, PoolMemory] | None = None,
    max_in_flight: int = MAX_IN_FLIGHT,
) -> PassResult:
    """Observe the backend, plan, and (unless ``execute`` is False) carry the plan out.

    Args:
        desired: what the specs ask for.
        backend: where simulators run.
        clock: the source of "now".
        execute: False: observe and plan only.
        config: planner tuning.
        progress / absent / sizing: the previous pass's ``plan.progress``, ``plan.absent``
            and ``plan.sizing``.
        max_in_flight: requests in flight at once.

    Returns:
        The pass's result; it never raises for backend errors of single actions.
    """
    settings = Settings(
        specs=Path(), planner=config or PlannerConfig(), max_in_flight=max_in_flight
    )
    reconciler = Reconciler(
        settings,
        backend,
        clock=Clock(wall=clock),
        progress=progress or {},
        absent=absent,
        sizing=sizing,
    )
    return await reconciler.reconcile(desired, execute=execute)
