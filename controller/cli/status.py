"""``simfleet status``: the fleet as the running daemon sees it (reads ``/status``)."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import click
from rich.console import Console
from rich.live import Live

from controller.cli import _options
from controller.cli._render import status_table


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


@click.command()
@_options.option(
    "--json", "as_json", env="JSON", is_flag=True, help="Print the /status document as JSON."
)
@_options.option("--watch", env="WATCH", is_flag=True, help="Refresh in place every second.")
@_options.listen
def status(as_json: bool, watch: bool, listen: str) -> None:
    """Show NAME, POOL, IMAGE, DESIRED, READY, UP-TO-DATE, RESTARTS, AGE, MESSAGE."""
    console = Console(width=None if sys.stdout.isatty() else 200)
    if as_json:
        click.echo(json.dumps(fetch(listen), indent=2))
        return
    if not watch:
        console.print(status_table(fetch(listen)))
        return
    with Live(status_table(fetch(listen)), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(1.0)
                live.update(status_table(fetch(listen)), refresh=True)
        except KeyboardInterrupt:
            pass
