"""``simfleet version``: the version, as kubectl has it (``--version`` says the same)."""

from __future__ import annotations

import click

from controller import __version__


@click.command()
def version() -> None:
    """Print simfleet's version."""
    click.echo(f"simfleet {__version__}")
