"""The ``simfleet`` command group: one table of commands, each imported only when it runs.

``simfleet --help`` lists every command with its short help from :data:`COMMANDS`
without importing any of them, and a command imports only what it needs: ``status``
reads HTTP with the standard library, ``validate`` loads specs; aiohttp, the Docker SDK
and the Azure SDK arrive only with the commands (and ``--backend``) that use them. That
keeps ``--help``, ``status`` and ``validate`` well under 150 ms
(``benchmarks/startup.py`` measures it; ``tests/cli/test_startup.py`` checks that
``--help`` imports none of them).

A command ``NAME`` is the click command ``NAME`` of the module ``controller.cli.NAME``
(``-`` in a name becomes ``_``); adding one is one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib

import click

from controller import __version__

#: Every command with its short help, in the order ``--help`` lists them. The short help
#: lives here, not in the command, so listing them imports nothing.
COMMANDS = {
    "run": "Watch the specs and keep the fleet as they say (the daemon).",
    "validate": "Check spec files and print every error.",
    "plan": "Show what one pass would do to make the fleet match the specs.",
    "apply": "Run one pass now (with --wait: until the fleet matches the specs).",
    "status": "Show the fleet, or one simulation and its slots (from the daemon).",
    "logs": "Print the output of a simulator.",
    "schema": "Print the JSON Schema of spec files.",
    "image": "Make and publish simulator images (Docker Engine API).",
    "version": "Print simfleet's version.",
}

#: Commands that never log: they skip the log set-up, and the daemon package it lives in.
LOGLESS = frozenset({"validate", "status", "schema", "version"})


class LazyGroup(click.Group):
    """A group whose commands are imported when they run (or their own help is asked)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"controller.cli.{cmd_name.replace('-', '_')}")
        command: click.Command = getattr(module, cmd_name.replace("-", "_"))
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table, without importing a command."""
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="simfleet", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Keep fleets of containerized simulators running on Azure Batch (or this machine)."""
    if ctx.invoked_subcommand in LOGLESS:
        return
    import logging

    from controller.daemon import configure

    # One-shot commands print what they did themselves; their log says only what went
    # wrong, on stderr, so `plan -o json` stays JSON. `run` configures its own log.
    configure(level=logging.WARNING)
