"""The ``simfleet`` command group: one table of commands, each imported only when it runs.

``simfleet --help`` lists every command with its short help from :data:`COMMANDS`
without importing any of them, and a command imports only what it needs: ``status``
reads HTTP with the standard library, ``validate`` loads specs; aiohttp, the Docker SDK
and the Azure SDK arrive only with the commands (and ``--backend``) that use them. That,
and :func:`program`, keep ``--help``, ``status`` and ``validate`` under 150 ms
(``benchmarks/startup.py`` measures it; ``tests/cli/test_commands.py`` checks what each
imports).

A command ``NAME`` is the click command ``NAME`` of the module ``controller.cli.NAME``
(``-`` in a name becomes ``_``); adding one is one line in :data:`COMMANDS`.

The ``simfleet`` program is :func:`program`: :data:`main` with Python's garbage collector
held off while the command imports, and without pydantic's plugin search (see there).
"""

from __future__ import annotations

import gc
import importlib
import sys
import types

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
    "delete": "Tear down the fleet, or some simulations (only what the fleet owns).",
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
    if not gc.isenabled():  # held off by program() while the command was imported
        gc.freeze()  # what the imports made lives to the end: never scan it again
        gc.enable()  # what the command makes is collected as usual
    if ctx.invoked_subcommand in LOGLESS:
        return
    import logging

    from controller.daemon import configure

    # One-shot commands print what they did themselves; their log says only what went
    # wrong, on stderr, so `plan -o json` stays JSON. `run` configures its own log.
    configure(level=logging.WARNING)


#: Where pydantic (2.x) keeps ``get_plugins()``, which finds plugins by entry points.
_PLUGIN_LOADER = "pydantic.plugin._loader"


def program() -> None:
    """The ``simfleet`` console script (and ``python -m controller``): :data:`main`, made
    quicker to start and to end (``benchmarks/startup.py`` measures it).

    - Importing a command (pydantic's models, click, YAML) makes tens of thousands of
      objects that all live until the process ends: the collections they trigger on the
      way find nothing, and so would every full collection after them. So the collector
      is off until the command is imported; :data:`main`'s callback then freezes what
      exists (never scanned again) and turns it back on for what the command does. An
      exit before that (``--help``, a usage error) leaves it all frozen, for the same
      reason: the interpreter's last collection would only walk it once more.
    - Pydantic looks for plugins (other packages' entry points that watch every
      validation) when it builds a model, and importing the standard library's package
      metadata reader to do so costs more than building all of simfleet's models. Nothing
      in simfleet's models is meant to be watched, so the program runs without them.
    """
    gc.disable()
    _without_pydantic_plugins()
    try:
        main()
    finally:
        if not gc.isenabled():
            gc.freeze()


def _without_pydantic_plugins() -> None:
    """Pydantic with no plugins, without their search: its plugin loader, replaced before
    pydantic imports it by one that finds none (what ``PYDANTIC_DISABLE_PLUGINS=__all__``
    makes the real one answer, after the import this avoids). A pydantic that no longer
    has that module only ignores this and searches as before."""
    loader = types.ModuleType(_PLUGIN_LOADER, "No pydantic plugins: see program().")
    loader.get_plugins = tuple  # type: ignore[attr-defined]
    sys.modules.setdefault(_PLUGIN_LOADER, loader)
