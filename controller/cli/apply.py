"""``simfleet apply``: one pass; with ``--wait``, passes until the fleet converged.

Converged is the planner's own verdict (``Plan.converged``): nothing left to do, and every
slot served on the current template or finished for good under its restart policy.
A simulation whose Stalled condition turns true (no progress for its
``rollout.progressDeadline``) ends the wait with exit code 1. With the local backend the
simulators keep running after ``apply`` exits; a later ``simfleet run`` adopts them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import click

from controller.backends import BackendError, TransientBackendError, UnreachableBackendError
from controller.cli import _options
from controller.cli._backend import failure, opened
from controller.cli._oneshot import PassSettings, reconciler, require_specs
from controller.planner import Status
from controller.reconcile import PassResult, Verdict, converge, stalled
from controller.spec import RunOptionsPolicy, SpecError


def report(result: PassResult, errors: Sequence[SpecError]) -> None:
    """What one pass did, and what went wrong, one line each."""
    for error in errors:
        click.echo(str(error), err=True)
    for action in result.executed:
        click.echo(action.describe())
    for failed in result.failures:
        click.echo(f"failed: {failed.action.describe()}: {failed.message}", err=True)


def held_back(result: PassResult) -> None:
    """What the pass reports but does not do (a prune still inside its delay, …)."""
    for change in result.plan.changes:
        if not change.applies:
            click.echo(f"held back: {change}", err=True)


def progress_lines(status: Status) -> str:
    """One line per simulation: ready and up-to-date counts against desired."""
    return "\n".join(
        f"  {s.name}: {s.ready}/{s.desired} ready, {s.up_to_date} up to date"
        + (f" — {s.message}" if s.message else "")
        for s in status.simulations
    )


def retrying(exc: TransientBackendError, pause: float) -> None:
    """One line while ``--wait`` waits for a backend that is busy or out of reach."""
    unreachable = isinstance(exc, UnreachableBackendError)
    what = "cannot reach the backend" if unreachable else "backend busy"
    click.echo(f"{what} ({exc}); retrying in {pause:g}s", err=True)


def waited(result: PassResult) -> None:
    """What ``--wait`` shows after each step."""
    report(result, result.errors)
    click.echo(progress_lines(result.status))


@click.command()
@_options.specs
@_options.backend_options
@_options.option("--wait", env="WAIT", is_flag=True, help="Keep going until converged.")
@_options.option(
    "--timeout",
    env="TIMEOUT",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds --wait may take before giving up (exit 1).",
)
@_options.allow_empty_prune
@_options.settle
@_options.pass_policy
@_options.max_in_flight
@_options.run_options
def apply(
    specs: Path,
    backend: str,
    runtime: str,
    state_dir: Path,
    fleet: str,
    wait: bool,
    timeout: float,
    allow_empty_prune: bool,
    settle: float,
    prune_delay: float,
    allow_secret_env: tuple[str, ...],
    max_in_flight: int,
    run_options: RunOptionsPolicy,
) -> None:
    """Run one pass now (with --wait: until the fleet matches the specs).

    Objects no spec defines are pruned only once their absence has held for
    ``--prune-delay``: a single ``apply`` reports them, ``apply --wait`` waits it out,
    ``--prune-delay 0`` prunes at once.
    """
    require_specs(specs, allow_empty_prune)
    _options.warn(run_options)
    settings = PassSettings(
        state_dir,
        allow_empty_prune,
        settle,
        prune_delay,
        allow_secret_env,
        run_options,
        max_in_flight,
        fleet,
    )

    async def main() -> bool:
        async with opened(
            backend, runtime=runtime, state_dir=state_dir, fleet=fleet, run_options=run_options
        ) as b:
            steps = reconciler(specs, b, settings)
            try:
                if not wait:
                    result = await steps.step()
                    report(result, result.errors)
                    held_back(result)
                    return not result.errors and not result.failures
                verdict, last = await converge(
                    steps, within=timeout, on_step=waited, on_retry=retrying
                )
            except BackendError as exc:
                raise failure(exc) from exc
        errors = last.errors if last is not None else ()
        if verdict is Verdict.CONVERGED:
            click.echo("converged")
            return not errors
        if verdict is Verdict.STALLED and last is not None:
            stuck = stalled(last.status)
            click.echo("stalled:\n" + "\n".join(f"  {line}" for line in stuck), err=True)
            return False
        click.echo(f"not converged after {timeout:g}s", err=True)
        return False

    if not asyncio.run(main()):
        raise SystemExit(1)
