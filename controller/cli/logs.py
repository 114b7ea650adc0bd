"""``simfleet logs``: a simulator's stdout or stderr, from either backend.

The slot's live simulator is shown when it has one, else its newest exited one (so the
output of a crash can be read while the slot waits out its back-off). ``--follow`` keeps
reading as the file grows and moves on to the slot's next simulator when one starts.
Output the backend no longer has (on Batch: the node that ran the task left the pool, or
its retention time ended) is said in one line; ``--follow`` then waits for the slot's
next simulator, or for the same one to run again after a requeue (new files, new node).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

import click

from controller.backends import Backend, BackendError, OutputGoneError, OutputStream
from controller.cli import _options
from controller.cli._backend import failure, opened
from controller.planner import ObservedTask, SimulatorState, whose

TAIL_WINDOW = 256 * 1024
RECHECK_SECONDS = 5.0


async def pick_task(backend: Backend, simulation: str, slot: int) -> ObservedTask:
    """The slot's live simulator, else its newest one; raises a usage error if none."""
    observed = await backend.observe()
    job = observed.jobs.get(simulation)
    if job is None:
        raise click.ClickException(f"no simulation named {simulation}")
    if not job.owned:  # its tasks are not listed, let alone read (another --fleet)
        raise click.ClickException(
            f"the job {simulation} {whose(job.owner)}; its output is not this fleet's to show"
        )
    tasks = sorted(
        (t for t in job.tasks if t.slot == slot),
        key=lambda t: (t.live, t.created_at, t.attempt),
    )
    if not tasks:
        raise click.ClickException(f"simulation {simulation} has no simulator in slot {slot}")
    return tasks[-1]


async def _show(
    backend: Backend,
    simulation: str,
    slot: int,
    stream: OutputStream,
    tail: int | None,
    follow: bool,
) -> None:
    task = await pick_task(backend, simulation, slot)
    offset, gone = 0, False
    try:
        if tail is None:
            chunk = await backend.read_output(simulation, task.id, stream)
        else:
            chunk = await backend.read_output(simulation, task.id, stream, offset=-TAIL_WINDOW)
            lines = chunk.data.splitlines(keepends=True)
            chunk = type(chunk)(b"".join(lines[-tail:]) if tail else b"", chunk.offset, chunk.size)
    except OutputGoneError as exc:
        if not follow:
            raise click.ClickException(_gone(simulation, slot, stream, exc)) from exc
        click.echo(f"--- {_gone(simulation, slot, stream, exc)} ---", err=True)
        gone = True
    else:
        sys.stdout.buffer.write(chunk.data)
        sys.stdout.flush()
        offset = chunk.size
    checked = time.monotonic()
    while follow:
        await asyncio.sleep(0.5)
        if not gone:
            try:
                more = await backend.read_output(simulation, task.id, stream, offset=offset)
            except OutputGoneError as exc:  # e.g. its node left the pool after it ended
                click.echo(f"--- {_gone(simulation, slot, stream, exc)} ---", err=True)
                gone = True
                continue
            if more.data:
                sys.stdout.buffer.write(more.data)
                sys.stdout.flush()
                offset = more.offset + len(more.data)
                continue
        if time.monotonic() - checked < RECHECK_SECONDS:
            continue
        # Idle for a while: has the slot moved on to a new simulator? (One observation,
        # which on Azure lists pools and jobs, so not every half second.)
        checked = time.monotonic()
        current = await pick_task(backend, simulation, slot)
        if current.id != task.id:
            click.echo(f"--- slot {slot} now runs {current.id} ---", err=True)
            task, offset, gone = current, 0, False
        elif (
            gone
            and current.state is SimulatorState.RUNNING
            and current.started_at != (task.started_at)
        ):  # requeued (its node was preempted or removed), now running on another node
            click.echo(f"--- {current.id} runs again, on another node ---", err=True)
            task, offset, gone = current, 0, False


def _gone(simulation: str, slot: int, stream: OutputStream, exc: OutputGoneError) -> str:
    """The one line that says why there is no output to show (expected on Batch)."""
    return f"no {stream} to show for {simulation} slot {slot}: {exc}"


@click.command()
@click.argument("simulation")
@click.argument("slot", type=click.IntRange(min=0), default=0)
@_options.option("--stderr", env="STDERR", is_flag=True, help="Show stderr instead of stdout.")
@_options.option(
    "--tail", env="TAIL", type=click.IntRange(min=0), default=None, help="Only the last N lines."
)
@_options.option("--follow", "-f", env="FOLLOW", is_flag=True, help="Keep printing new output.")
@_options.backend_options
@_options.fleet
def logs(
    simulation: str,
    slot: int,
    stderr: bool,
    tail: int | None,
    follow: bool,
    backend: str,
    runtime: str,
    state_dir: Path,
    fleet: str,
) -> None:
    """Print the output of SIMULATION's simulator in SLOT (default 0)."""
    stream = OutputStream.STDERR if stderr else OutputStream.STDOUT

    async def main() -> None:
        async with opened(
            backend, runtime=runtime, state_dir=state_dir, read_only=True, fleet=fleet
        ) as b:
            try:
                await _show(b, simulation, slot, stream, tail, follow)
            except BackendError as exc:
                raise failure(exc) from exc

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
