"""``simfleet validate [PATH…]``: check spec files; exit 1 with ``file:line:col:`` errors.

Runs without a backend or network, so it fits a pre-commit hook or a CI step.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from controller.spec import build_catalog, load_paths


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check spec files (default: the specs directory) and print every error."""
    targets = list(paths) or [Path(os.environ.get("SIMFLEET_SPECS", "specs"))]
    catalog = build_catalog(load_paths(targets))
    for error in catalog.errors:
        click.echo(str(error), err=True)
    if catalog.errors:
        raise SystemExit(1)
    click.echo(
        f"ok: {len(catalog.files)} file(s), {len(catalog.pools)} pool(s), "
        f"{len(catalog.simulations)} simulation(s)"
    )
