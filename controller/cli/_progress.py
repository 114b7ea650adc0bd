"""What ``apply --wait`` shows while it works: each line once, progress only when it changes.

A wait takes many steps, and most of them change nothing a person needs to read again:
the same action failing on every pass, the same "0/4 ready". So every action, failure and
spec error is printed the first time it is seen only, and progress is shown when it
differs from what was last shown. On a terminal, progress is a rich display redrawn in
place (a bar per simulation: running and up to date against desired, with its counts
and message) and the lines scroll above it; into a pipe or a file it is one plain line per
simulation, printed again only when one of them changed, so a CI log reads as a story.
"""

from __future__ import annotations

from types import TracebackType

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from controller.planner import SimulationStatus, Status
from controller.reconcile import PassResult

BAR_WIDTH = 30


def progress_line(sim: SimulationStatus) -> str:
    """``  cartpole: 3/4 ready, 4 up to date — 1 waiting for a free slot on the pool``."""
    message = f" — {sim.message}" if sim.message else ""
    return f"  {sim.name}: {sim.ready}/{sim.desired} ready, {sim.up_to_date} up to date{message}"


def done(sim: SimulationStatus) -> int:
    """How much of a simulation is there: simulators both running and up to date, at most
    (``up_to_date`` alone counts a slot whose new simulator has not started yet)."""
    return min(sim.ready, sim.up_to_date)


def progress_table(status: Status) -> RenderableType:
    """The terminal's display: a bar per simulation (:func:`done` against desired)."""
    table = Table.grid(padding=(0, 1))
    for sim in status.simulations:
        table.add_row(
            Text(sim.name, style="bold"),
            ProgressBar(total=max(sim.desired, 1), completed=done(sim), width=BAR_WIDTH),
            f"{sim.ready}/{sim.desired} ready, {sim.up_to_date} up to date",
            Text(sim.message, style="yellow"),
        )
    return Group(table)


class Reporter:
    """Prints the steps of a wait; a context manager (the terminal's display lives in it).

    Args:
        console: where progress goes (stdout by default); a terminal gets the live display.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._seen: set[tuple[bool, str]] = set()
        self._shown: tuple[str, ...] | None = None
        self._live: Live | None = None

    def __enter__(self) -> Reporter:
        if self.console.is_terminal:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def once(self, text: str, *, err: bool = False) -> None:
        """Print ``text`` unless it was printed before (on the same stream)."""
        if (err, text) in self._seen:
            return
        self._seen.add((err, text))
        if self._live is not None and not err:
            self._live.console.print(text, markup=False, highlight=False)
        else:
            click.echo(text, err=err)

    def step(self, result: PassResult) -> None:
        """One step of the wait: its new errors, actions and failures, then progress."""
        for error in result.errors:
            self.once(str(error), err=True)
        for action in result.executed:
            self.once(action.describe())
        for failed in result.failures:
            self.once(f"failed: {failed.action.describe()}: {failed.message}", err=True)
        self.progress(result.status)

    def progress(self, status: Status) -> None:
        """Show progress if it changed since it was last shown."""
        lines = tuple(progress_line(sim) for sim in status.simulations)
        if lines == self._shown:
            return
        self._shown = lines
        if self._live is not None:
            self._live.update(progress_table(status), refresh=True)
        elif lines:
            click.echo("\n".join(lines))
