"""``simfleet apply``: one pass; with ``--wait``, passes until the fleet converged.

Converged is the planner's own verdict (``Plan.converged``): nothing left to do, and every
slot served on the current template or finished for good under its restart policy.
A simulation whose Stalled condition turns true (no progress for its
``rollout.progressDeadline``) ends the wait with exit code 1. With the local backend the
simulators keep running after ``apply`` exits; a later ``simfleet run`` adopts them.

With ``--wait`` each action is printed once and progress only when it changes (a live
display on a terminal, plain lines otherwise: :mod:`controller.cli._progress`).

``apply`` writes only while it holds its fleet's lease, like any leader. When a daemon
(or another ``apply``) leads the fleet, it changes nothing and says who leads; with
``--wait`` it waits instead until the leader reports these very specs converged (the
digest of the desired state, published in the lease), and takes over itself if the
leader goes away. ``--take-lease`` takes the lease from a live leader (break-glass): it
writes only after the renew deadline, when the old leader has certainly stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import click

from controller.backends import (
    LeaseTimings,
)
from controller.cli import _leading, _options
from controller.cli._oneshot import PassSettings, reconciler, require_specs
from controller.cli._options import Delays
from controller.cli._planview import held_back as held_objects
from controller.cli._progress import Reporter
from controller.daemon import Leadership
from controller.reconcile import (
    PassResult,
    Reconciler,
    Verdict,
    converge,
    desired_digest,
    stalled,
)
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
    """What the pass reports but does not do (a prune still inside its delay, …), and
    every object it leaves as it is although it differs from the specs (a conflict with
    another fleet's object, a suspended simulation, …), as ``plan`` lists them."""
    for change in result.plan.changes:
        if not change.applies:
            click.echo(f"held back: {change}", err=True)
    for held in held_objects(result.plan):
        click.echo(f"held back: {held}", err=True)


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
@_options.option(
    "--take-lease",
    env="TAKE_LEASE",
    is_flag=True,
    help="Break-glass: take the fleet's lease even from a live leader (it stops writing "
    "within its renew deadline; this apply writes only after it).",
)
@_options.fleet
@_options.max_in_flight
@_options.run_options
@_options.lease_timings
def apply(
    specs: Path,
    backend: str,
    runtime: str,
    state_dir: Path,
    wait: bool,
    timeout: float,
    allow_empty_prune: bool,
    settle: float,
    delays: Delays,
    allow_secret_env: tuple[str, ...],
    revision_key_file: Path | None,
    take_lease: bool,
    fleet: str,
    max_in_flight: int,
    run_options: RunOptionsPolicy,
    lease_timings: LeaseTimings,
) -> None:
    """Run one pass now (with --wait: until the fleet matches the specs).

    It writes only while it holds the fleet's lease: beside a running daemon it changes
    nothing and says who leads (with --wait: waits until the leader converged these
    specs).

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
        delays,
        allow_secret_env,
        run_options,
        max_in_flight,
        revision_key_file,
        fleet=fleet,
    )

    async def main() -> bool:
        started = time.monotonic()  # --timeout covers following a leader, then applying
        async with _leading.session(
            backend,
            runtime=runtime,
            state_dir=state_dir,
            fleet=fleet,
            timings=lease_timings,
            run_options=run_options,
        ) as (b, leadership):
            steps = reconciler(specs, b, settings)
            if not await _leading.lead(leadership, take_lease, wait=wait, within=timeout):
                if not wait:
                    raise click.ClickException(
                        f"{leadership.describe()}; apply changed nothing. Use --wait "
                        "to wait until it has converged these specs, or --take-lease "
                        "to take the fleet over (break-glass)"
                    )
                if await _follow(leadership, steps, within=timeout):
                    return True
            left = max(0.0, timeout - (time.monotonic() - started))
            return await _leading.while_leading(
                leadership, b, lambda: _apply(steps, wait=wait, within=left)
            )

    if not asyncio.run(main()):
        raise SystemExit(1)


async def _follow(leadership: Leadership, steps: Reconciler, *, within: float) -> bool:
    """Wait until the leader reports these specs converged (True), or until this
    controller leads itself (False: it applies them now). Ends the command otherwise."""
    desired, errors = steps.load()
    for error in errors:
        click.echo(str(error), err=True)
    digest = desired_digest(desired)
    click.echo(f"{leadership.describe()}; waiting for it to converge these specs ({digest})")
    clock = steps.clock
    deadline = clock.monotonic() + within
    told = ""
    while clock.monotonic() < deadline:
        await asyncio.sleep(leadership.lease.timings.retry_period)
        if await leadership.round():
            click.echo(f"fleet {leadership.lease.fleet!r} has no leader any more; applying")
            return False
        record = leadership.record
        if record is None:
            continue
        if record.converged == digest:
            click.echo(f"converged (by {record.holder})")
            return True
        working = "these specs" if record.desired == digest else f"other specs ({record.desired})"
        if working != told:
            click.echo(f"  {record.holder} works on {working}")
            told = working
    raise click.ClickException(
        f"not converged after {within:g}s: {leadership.describe()}, which has not reported "
        f"these specs ({digest}) converged"
    )


async def _apply(steps: Reconciler, *, wait: bool, within: float) -> bool:
    """The pass (or passes) of a leading ``apply``; True when it ended well."""
    if not wait:
        result = await steps.step()
        report(result, result.errors)
        held_back(result)
        return not result.errors and not result.failures
    with Reporter() as shown:
        verdict, last = await converge(
            steps, within=within, on_step=shown.step, on_retry=_leading.retrying
        )
    errors = last.errors if last is not None else ()
    if verdict is Verdict.CONVERGED:
        click.echo("converged")
        return not errors
    if verdict is Verdict.STALLED and last is not None:
        stuck = stalled(last.status)
        click.echo("stalled:\n" + "\n".join(f"  {line}" for line in stuck), err=True)
        return False
    click.echo(f"not converged after {within:g}s", err=True)
    return False
