"""One pass from the command line, shared by ``plan`` and ``apply``."""

from __future__ import annotations

import os
from pathlib import Path

from controller.backends import Backend
from controller.daemon import utc_now
from controller.reconcile import PassResult, desired_state, run_pass
from controller.spec import SpecError, build_catalog, load_directory


async def one_pass(
    specs: Path, backend: Backend, *, execute: bool, allow_empty_prune: bool = False
) -> tuple[PassResult, tuple[SpecError, ...]]:
    """Load the specs and run one pass (``execute=False``: plan only)."""
    catalog = build_catalog(load_directory(specs))
    desired, errors = desired_state(catalog, os.environ, allow_empty_prune=allow_empty_prune)
    result = await run_pass(desired, backend, utc_now, execute=execute)
    return result, errors
