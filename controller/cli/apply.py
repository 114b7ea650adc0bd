"""``simfleet apply``: one pass; with ``--wait``, passes until the fleet converged.

Converged means the planner has nothing left to do and every simulation has as many
ready, up-to-date simulators as it asks for. A simulation whose Stalled condition turns
true (no progress for its ``rollout.progressDeadline``) ends the wait with exit code 1.
With the local backend the simulators keep running after ``apply`` exits; a later
``simfleet run`` adopts them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path

import click

from controller.cli import _options
from controller.cli._backend import opened
from controller.cli._oneshot import one_pass
from controller.planner import ConditionType, Progress, Status
from controller.reconcile import describe


def stalled(status: Status) -> list[str]:
    """``name: why`` for every simulation whose Stalled condition holds."""
    return [
        f"{s.name}: {c.message}"
        for s in status.simulations
        for c in s.conditions
        if c.type is ConditionType.STALLED and c.status
    ]


def converged(status: Status) -> bool:
    """Every simulation ready and up to date (suspended ones excepted)."""
    return all(
        s.suspended or (s.ready >= s.desired and s.up_to_date >= s.desired)
        for s in status.simulations
        if s.revision  # rows of objects being pruned have no revision
    )


def progress_lines(status: Status) -> str:
    """One line per simulation: ready and up-to-date counts against desired."""
    return "\n".join(
        f"  {s.name}: {s.ready}/{s.desired} ready, {s.up_to_date} up to date"
        + (f" — {s.message}" if s.message else "")
        for s in status.simulations
    )


@click.command()
@_options.specs
@_options.backend_options
@click.option("--wait", is_flag=True, help="Keep going until the fleet converged.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds --wait may take before giving up (exit 1).",
)
@_options.allow_empty_prune
@_options.settle
def apply(
    specs: Path,
    backend: str,
    runtime: str,
    state_dir: Path,
    wait: bool,
    timeout: float,
    allow_empty_prune: bool,
    settle: float,
) -> None:
    """Run one pass now (with --wait: until the fleet matches the specs)."""

    async def main() -> bool:
        deadline = time.monotonic() + timeout
        progress: Mapping[str, Progress] = {}
        async with opened(backend, runtime=runtime, state_dir=state_dir) as b:
            while True:
                result, errors = await one_pass(
                    specs,
                    b,
                    execute=True,
                    allow_empty_prune=allow_empty_prune,
                    settle=settle,
                    progress=progress,
                )
                progress = result.plan.progress
                for error in errors:
                    click.echo(str(error), err=True)
                for action in result.executed:
                    click.echo(describe(action))
                for failure in result.failures:
                    click.echo(f"failed: {describe(failure.action)}: {failure.message}", err=True)
                done = not result.plan.actions and converged(result.status)
                if not wait:
                    return not errors and not result.failures
                click.echo(progress_lines(result.status))
                if done:
                    click.echo("converged")
                    return not errors
                if stuck := stalled(result.status):
                    click.echo("stalled:\n" + "\n".join(f"  {line}" for line in stuck), err=True)
                    return False
                if time.monotonic() > deadline:
                    click.echo(f"not converged after {timeout:g}s", err=True)
                    return False
                await asyncio.sleep(1.0)

    if not asyncio.run(main()):
        raise SystemExit(1)
