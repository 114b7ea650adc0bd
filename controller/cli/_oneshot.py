"""One pass from the command line, shared by ``plan`` and ``apply``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from controller.backends import Backend
from controller.daemon import utc_now
from controller.planner import PlannerConfig, Progress
from controller.reconcile import PassResult, desired_state, run_pass
from controller.spec import RunOptionsPolicy, SpecError, build_catalog, load_directory


async def one_pass(
    specs: Path,
    backend: Backend,
    *,
    execute: bool,
    allow_empty_prune: bool = False,
    settle: float = 5.0,
    progress: Mapping[str, Progress] | None = None,
    run_options: RunOptionsPolicy | None = None,
) -> tuple[PassResult, tuple[SpecError, ...]]:
    """Load the specs and run one pass (``execute=False``: plan only)."""
    catalog = build_catalog(load_directory(specs))
    desired, errors = desired_state(
        catalog,
        os.environ,
        allow_empty_prune=allow_empty_prune,
        run_options=run_options or RunOptionsPolicy(),
    )
    config = PlannerConfig(settle=timedelta(seconds=settle))
    result = await run_pass(
        desired, backend, utc_now, execute=execute, config=config, progress=progress
    )
    return result, errors
