"""The ``simfleet`` command group: parse options, hand over, decide exit codes."""

from __future__ import annotations

import logging

import click

from controller import __version__
from controller.cli.apply import apply
from controller.cli.delete import delete
from controller.cli.image import image
from controller.cli.logs import logs
from controller.cli.plan import plan
from controller.cli.run import run
from controller.cli.schema import schema
from controller.cli.status import status
from controller.cli.validate import validate
from controller.daemon import configure


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="simfleet")
def main() -> None:
    """Keep fleets of containerized simulators running on Azure Batch (or this machine)."""
    # One-shot commands print what they did themselves; their log says only what went
    # wrong, on stderr, so `plan -o json` stays JSON. `run` configures its own log.
    configure(level=logging.WARNING)


for command in (run, validate, plan, apply, status, logs, schema, image, delete):
    main.add_command(command)
