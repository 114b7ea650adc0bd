"""``simfleet apply``: one pass; with ``--wait``, passes until the fleet converged.

Converged is the planner's own verdict (``Plan.converged``): nothing left to do, and every
slot served on the current template or finished for good under its restart policy.
A simulation whose Stalled condition turns true (no progress for its
``rollout.progressDeadline``) ends the wait with exit code 1. With the local backend the
simulators keep running after ``apply`` exits; a later ``simfleet run`` adopts them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import click

from controller.backends import BackendError, TransientBackendError, UnreachableBackendError
from controller.cli import _options
from controller.cli._backend import failure, opened
from controller.cli._oneshot import PassMemory, PassSettings, one_pass, require_specs
from controller.daemon import utc_now
from controller.planner import ConditionType, Status
from controller.reconcile import PassResult, describe
from controller.spec import RunOptionsPolicy, SpecError


def stalled(status: Status) -> list[str]:
    """``name: why`` for every simulation whose Stalled condition holds."""
    return [
        f"{s.name}: {c.message}"
        for s in status.simulations
        for c in s.conditions
        if c.type is ConditionType.STALLED and c.status
    ]


def report(result: PassResult, errors: Sequence[SpecError]) -> None:
    """What one pass did, and what went wrong, one line each."""
    for error in errors:
        click.echo(str(error), err=True)
    for action in result.executed:
        click.echo(describe(action))
    for failed in result.failures:
        click.echo(f"failed: {describe(failed.action)}: {failed.message}", err=True)


def held_back(result: PassResult) -> None:
    """What the pass reports but does not do (a prune still inside its delay, …)."""
    for change in result.plan.changes:
        if not change.applies:
            click.echo(f"held back: {change}", err=True)


def next_pause(result: PassResult) -> float:
    """A second between passes, or longer: never inside a Retry-After window."""
    if result.retry_after is None:
        return 1.0
    return max(1.0, (result.retry_after - utc_now()).total_seconds())


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
@_options.run_options
def apply(
    specs: Path,
    backend: str,
    runtime: str,
    state_dir: Path,
    wait: bool,
    timeout: float,
    allow_empty_prune: bool,
    settle: float,
    prune_delay: float,
    allow_secret_env: tuple[str, ...],
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
        state_dir, allow_empty_prune, settle, prune_delay, allow_secret_env, run_options
    )

    async def main() -> bool:
        deadline = time.monotonic() + timeout
        memory = PassMemory()
        async with opened(
            backend, runtime=runtime, state_dir=state_dir, run_options=run_options
        ) as b:
            while True:
                try:
                    result, errors = await one_pass(specs, b, settings, execute=True, memory=memory)
                except TransientBackendError as exc:  # throttled or unreachable: wait, retry
                    pause = exc.retry_after if exc.retry_after is not None else 2.0
                    if not wait or time.monotonic() + pause > deadline:
                        raise failure(exc) from exc
                    what = (
                        "cannot reach the backend"
                        if isinstance(exc, UnreachableBackendError)
                        else "backend busy"
                    )
                    click.echo(f"{what} ({exc}); retrying in {pause:g}s", err=True)
                    await asyncio.sleep(pause)
                    continue
                except BackendError as exc:
                    raise failure(exc) from exc
                report(result, errors)
                if not wait:
                    held_back(result)
                    return not errors and not result.failures
                click.echo(progress_lines(result.status))
                if result.plan.converged:
                    click.echo("converged")
                    return not errors
                if stuck := stalled(result.status):
                    click.echo("stalled:\n" + "\n".join(f"  {line}" for line in stuck), err=True)
                    return False
                pause = next_pause(result)
                if time.monotonic() + pause > deadline:
                    click.echo(f"not converged after {timeout:g}s", err=True)
                    return False
                await asyncio.sleep(pause)

    if not asyncio.run(main()):
        raise SystemExit(1)
