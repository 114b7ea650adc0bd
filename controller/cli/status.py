"""``simfleet status [NAME]``: the fleet as the running daemon sees it (reads ``/status``).

kubectl's habits: ``NAME`` shows one simulation with a row per slot, ``-o json`` prints
the document (``--json`` still does), ``-w`` keeps watching. Watching redraws in place on
a terminal; into a pipe or a file it prints the view again only when it changed (JSON: one
compact document per line), so a log of ``status -w`` holds each change once.

It imports no more than HTTP from the standard library and rich: it must start fast
(``benchmarks/startup.py``).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.console import Console, RenderableType

from controller.cli import _options
from controller.cli._render import simulation_view, status_table

#: Seconds between two looks at ``/status`` while watching.
WATCH_INTERVAL = 1.0


def fetch(listen: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET the daemon's ``/status`` document."""
    host, port = _options.split_listen(listen)
    url = f"http://{host}:{port}/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document: dict[str, Any] = json.load(response)
            return document
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(
            f"no simfleet daemon answers at {host}:{port} ({exc}); start one with `simfleet run`"
        ) from exc


def simulation(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The simulation ``name`` of a ``/status`` document; one clear line if there is none."""
    for sim in document.get("simulations", []):
        if sim["name"] == name:
            found: dict[str, Any] = sim
            return found
    known = ", ".join(sorted(s["name"] for s in document.get("simulations", []))) or "none"
    raise click.ClickException(f"no simulation {name!r} in this fleet (simulations: {known})")


def _as_json(document: dict[str, Any], name: str | None, *, compact: bool) -> str:
    shown = simulation(document, name) if name else document
    return json.dumps(shown, separators=(",", ":")) if compact else json.dumps(shown, indent=2)


def _as_text(document: dict[str, Any], name: str | None) -> RenderableType:
    return simulation_view(simulation(document, name)) if name else status_table(document)


def _documents(listen: str, watch: bool) -> Iterator[dict[str, Any]]:
    """The ``/status`` document once, or every second while watching."""
    yield fetch(listen)
    while watch:
        time.sleep(WATCH_INTERVAL)
        yield fetch(listen)


def _changes(views: Iterator[str]) -> Iterator[str]:
    """Each view that differs from the one before it."""
    last = None
    for view in views:
        if view != last:
            yield view
            last = view


@click.command()
@click.argument("name", required=False)
@_options.option(
    "--output",
    "-o",
    env="OUTPUT",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="A table for people, or the /status document (of NAME only, with NAME) as JSON.",
)
@_options.option("--json", "as_json", env="JSON", is_flag=True, help="The same as -o json.")
@_options.option(
    "--watch", "-w", env="WATCH", is_flag=True, help="Keep watching: redraw on every change."
)
@_options.listen
def status(name: str | None, output: str, as_json: bool, watch: bool, listen: str) -> None:
    """Show NAME, POOL, IMAGE, DESIRED, READY, UP-TO-DATE, RESTARTS, AGE, MESSAGE; or, for
    one simulation NAME, its conditions and a row per slot."""
    documents = _documents(listen, watch)
    try:
        if as_json or output == "json":
            for text in _changes(_as_json(d, name, compact=watch) for d in documents):
                click.echo(text)
        elif watch and sys.stdout.isatty():
            _redraw(documents, lambda d: _as_text(d, name))
        else:
            console = Console(width=None if sys.stdout.isatty() else 200)
            for text in _changes(_rendered(console, _as_text(d, name)) for d in documents):
                click.echo(text, nl=False)
    except KeyboardInterrupt:
        pass


def _rendered(console: Console, view: RenderableType) -> str:
    with console.capture() as captured:
        console.print(view)
    return captured.get()


def _redraw(
    documents: Iterator[dict[str, Any]], render: Callable[[dict[str, Any]], RenderableType]
) -> None:
    """Redraw the view in place on a terminal, for every document."""
    from rich.live import Live  # only a terminal watching needs it

    with Live(render(next(documents)), auto_refresh=False) as live:
        for document in documents:
            live.update(render(document), refresh=True)
