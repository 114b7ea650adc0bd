"""``simfleet plan``: what a pass would change; nothing is done.

``--detailed-exitcode``: 0 no changes, 2 changes, 1 error (as terraform does). A change
still under way counts (a rollout waiting for new simulators to settle has no action this
instant, but the fleet does not match yet); "needs replacement" does not, since simfleet
never applies it. Objects held back (see :mod:`controller.cli._planview`) are listed with
their reasons but do not count as changes: no pass would change them as things stand.
A backend that cannot be reached or refuses ends the command with one line (exit 1).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from controller.backends import BackendError
from controller.cli import _options
from controller.cli._backend import failure, opened
from controller.cli._oneshot import PassSettings, reconciler, require_specs
from controller.cli._options import Delays
from controller.cli._planview import RENDERERS
from controller.daemon import git_revision
from controller.spec import RunOptionsPolicy


@click.command()
@_options.specs
@_options.backend_options
@_options.fleet
@_options.option(
    "--detailed-exitcode",
    env="DETAILED_EXITCODE",
    is_flag=True,
    help="Exit 0 no changes, 2 changes, 1 error.",
)
@_options.option(
    "--output",
    "-o",
    env="OUTPUT",
    type=click.Choice(sorted(RENDERERS)),
    default="text",
    show_default=True,
    help="Format of the plan.",
)
@_options.allow_empty_prune
@_options.settle
@_options.pass_policy
@_options.run_options
def plan(
    specs: Path,
    backend: str,
    runtime: str,
    state_dir: Path,
    fleet: str,
    detailed_exitcode: bool,
    output: str,
    allow_empty_prune: bool,
    settle: float,
    delays: Delays,
    allow_secret_env: tuple[str, ...],
    revision_key_file: Path | None,
    run_options: RunOptionsPolicy,
) -> None:
    """Show what one pass would do to make the fleet match the specs."""
    require_specs(specs, allow_empty_prune)
    _options.warn(run_options)
    settings = PassSettings(
        state_dir,
        allow_empty_prune,
        settle,
        delays,
        allow_secret_env,
        run_options,
        fleet=fleet,
        key_file=revision_key_file,
    )

    async def main() -> tuple[int, int]:
        async with opened(
            backend, runtime=runtime, state_dir=state_dir, fleet=fleet, read_only=True
        ) as b:
            try:
                result = await reconciler(specs, b, settings).step(execute=False)
            except BackendError as exc:
                raise failure(exc) from exc
        click.echo(RENDERERS[output](result.plan, result.errors, git_revision(specs)))
        pending = len(result.plan.actions) + sum(c.applies for c in result.plan.changes)
        return pending, len(result.errors)

    changes, errors = asyncio.run(main())
    if errors:
        raise SystemExit(1)
    if detailed_exitcode and changes:
        raise SystemExit(2)
