"""``simfleet schema``: the JSON Schema of spec documents, for editors."""

from __future__ import annotations

import json

import click

from controller.spec import json_schema


@click.command()
def schema() -> None:
    """Print the JSON Schema of spec files (point your editor's YAML plugin at it)."""
    click.echo(json.dumps(json_schema(), indent=2))
