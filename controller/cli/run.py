"""``simfleet run``: the daemon, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click
import structlog

from controller.cli import _options
from controller.cli._backend import opened
from controller.cli._oneshot import PassSettings
from controller.daemon import Controller, DaemonConfig, configure
from controller.spec import RunOptionsPolicy


@click.command()
@_options.specs
@_options.backend_options
@_options.option(
    "--resync",
    env="RESYNC",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds between full passes when nothing happens.",
)
@_options.listen
@_options.option(
    "--log-format",
    env="LOG_FORMAT",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
    help="Log lines for people or for machines.",
)
@_options.allow_empty_prune
@_options.settle
@_options.pass_policy
@_options.run_options
def run(
    specs: Path,
    backend: str,
    runtime: str,
    state_dir: Path,
    resync: float,
    listen: str,
    log_format: str,
    allow_empty_prune: bool,
    settle: float,
    prune_delay: float,
    allow_secret_env: tuple[str, ...],
    run_options: RunOptionsPolicy,
) -> None:
    """Watch the specs directory and keep the fleet as it says (the daemon)."""
    configure(log_format)
    if run_options.warning:
        structlog.get_logger("simfleet.cli").warning(
            "unsafe_run_options", detail=run_options.warning
        )
    host, port = _options.split_listen(listen)
    settings = PassSettings(state_dir, allow_empty_prune, settle, prune_delay, allow_secret_env)
    config = DaemonConfig(
        specs=specs,
        host=host,
        port=port,
        resync=resync,
        allow_empty_prune=allow_empty_prune,
        planner=settings.planner(),
        revision_key=settings.key(),
        access=settings.access(),
        run_options=run_options,
    )
    asyncio.run(_serve(config, backend, runtime, state_dir))


async def _serve(config: DaemonConfig, kind: str, runtime: str, state_dir: Path) -> None:
    async with opened(
        kind,
        runtime=runtime,
        state_dir=state_dir,
        stop_simulators=True,
        run_options=config.run_options,
    ) as backend:
        controller = Controller(config, backend)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, controller.stop)
        await controller.run()
