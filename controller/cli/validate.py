"""``simfleet validate [PATH…]``: check spec files; exit 1 with ``file:line:col:`` errors.

Runs without a backend or network, so it fits a pre-commit hook or a CI step. It applies
the operator's run-options policy, as ``plan`` and the daemon do (``--backend`` only
chooses that policy's default).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from controller.cli import _options
from controller.spec import RunOptionsPolicy, build_catalog, load_paths, policy_errors


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@_options.backend
@_options.run_options
def validate(paths: tuple[Path, ...], backend: str, run_options: RunOptionsPolicy) -> None:
    """Check spec files (default: the specs directory) and print every error."""
    _options.warn(run_options)
    targets = list(paths) or [Path(os.environ.get("SIMFLEET_SPECS", "specs"))]
    catalog = build_catalog(load_paths(targets))
    errors = sorted({*catalog.errors, *policy_errors(catalog, run_options)})
    for error in errors:
        click.echo(str(error), err=True)
    if errors:
        raise SystemExit(1)
    click.echo(
        f"ok: {len(catalog.files)} file(s), {len(catalog.pools)} pool(s), "
        f"{len(catalog.simulations)} simulation(s)"
    )
