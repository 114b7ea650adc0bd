"""``simfleet run``: the daemon, until SIGTERM, SIGINT or SIGHUP.

Start-up goes in an order that cannot hurt the fleet: options are checked (``--listen``
syntax, and a non-loopback address only with ``--listen-public``), the HTTP port is
bound, and only then is the backend opened (the local backend takes its lock and adopts
the simulators a previous controller left). A port in use therefore ends the command
with one line before anything touched a simulator.

The daemon leads its fleet only while it holds the fleet's lease (in Batch, or the state
directory's lock locally); until then it serves its endpoints as a standby and takes
over when the leader dies or lets go. On the way out it releases the lease once the
backend is closed, so a standby takes over at its next round.

Only a stop signal stops the simulators: SIGTERM, SIGINT and SIGHUP (a hung-up terminal
or ``kill -HUP``: the same clean, logged stop; simfleet re-reads its specs continuously,
so there is nothing for a reload to do). Every other way out — a backend that cannot be
opened, a failure of the daemon itself — closes the backend *without* stopping the
simulators, so the next ``simfleet run`` adopts them, and ends with one line.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import click
import structlog

from controller.backends import LeaseTimings
from controller.cli import _options
from controller.cli._backend import make_lease, new_identity, on_lead, opened
from controller.cli._oneshot import PassSettings
from controller.cli._options import Delays
from controller.daemon import (
    Controller,
    DaemonConfig,
    Leadership,
    ListenError,
    bind,
    configure,
    is_loopback,
    origin,
    shown,
)
from controller.spec import RunOptionsPolicy

log = structlog.get_logger("simfleet.daemon")


@click.command()
@_options.specs
@_options.backend_options
@_options.fleet
@_options.option(
    "--resync",
    env="RESYNC",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds between full passes when nothing happens.",
)
@_options.listen
@_options.listen_public
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
@_options.max_in_flight
@_options.run_options
@_options.lease_timings
def run(
    specs: Path,
    backend: str,
    runtime: str,
    state_dir: Path,
    fleet: str,
    resync: float,
    listen: str,
    listen_public: bool,
    log_format: str,
    allow_empty_prune: bool,
    settle: float,
    delays: Delays,
    allow_secret_env: tuple[str, ...],
    revision_key_file: Path | None,
    max_in_flight: int,
    run_options: RunOptionsPolicy,
    lease_timings: LeaseTimings,
) -> None:
    """Watch the specs directory and keep the fleet as it says (the daemon).

    It acts only while it leads the fleet; a second `simfleet run` for the same fleet
    stands by and takes over when the leader dies or stops.

    SIGTERM, SIGINT and SIGHUP stop it and its simulators. If it fails instead, the
    simulators keep running and the next `simfleet run` adopts them.
    """
    host, port = _options.split_listen(listen)
    if not is_loopback(host) and not listen_public:
        raise click.BadParameter(
            f"{shown(host, port)} is not a loopback address, and /status shows simulators' "
            "output to anyone who can connect; pass --listen-public "
            "(SIMFLEET_LISTEN_PUBLIC=1) to serve it there anyway",
            param_hint="--listen",
        )
    configure(log_format)
    if run_options.warning:
        log.warning("unsafe_run_options", detail=run_options.warning)
    try:
        sock = bind(host, port)
    except ListenError as exc:
        raise click.ClickException(str(exc)) from None
    if not is_loopback(host):
        log.warning("listening_publicly", listen=shown(host, port))
    settings = PassSettings(
        state_dir,
        allow_empty_prune,
        settle,
        delays,
        allow_secret_env,
        key_file=revision_key_file,
        fleet=fleet,
    )
    try:
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
            state_dir=state_dir,
            max_in_flight=max_in_flight,
            fleet=fleet,
        )
        asyncio.run(_serve(config, backend, runtime, state_dir, sock, lease_timings))
    except click.ClickException:
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.error("failed", error=error, at=origin(exc))
        raise click.ClickException(
            f"the daemon failed ({error}); its simulators keep running "
            "and the next `simfleet run` adopts them"
        ) from None
    finally:
        sock.close()


def stop_signals() -> list[signal.Signals]:
    """SIGTERM, SIGINT and SIGHUP — unless SIGHUP is ignored (``nohup``): then it stays so."""
    signals = [signal.SIGTERM, signal.SIGINT]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signals.append(signal.SIGHUP)
    return signals


async def _serve(
    config: DaemonConfig,
    kind: str,
    runtime: str,
    state_dir: Path,
    sock: socket.socket,
    timings: LeaseTimings,
) -> None:
    """Open the backend, run the controller while it leads; stop simulators only after
    a stop signal; release the lease last."""
    loop = asyncio.get_running_loop()
    asked: list[str] = []
    controller: Controller | None = None

    def on_signal(sig: signal.Signals) -> None:
        if not asked:
            log.info("stopping", signal=sig.name)
        asked.append(sig.name)
        if controller is not None:
            controller.stop()

    for sig in stop_signals():
        loop.add_signal_handler(sig, on_signal, sig)
    lease = make_lease(
        kind, fleet=config.fleet, identity=new_identity(), timings=timings, state_dir=state_dir
    )
    leadership = Leadership(lease)
    try:
        async with opened(
            kind,
            runtime=runtime,
            state_dir=state_dir,
            fleet=config.fleet,
            stop_simulators=lambda: bool(asked),
            run_options=config.run_options,
            lease=lease,
            open_local=False,
        ) as backend:
            controller = Controller(
                config, backend, leadership=leadership, on_lead=on_lead(backend)
            )
            if asked:  # a signal arrived while the backend was being made
                controller.stop()
            await controller.run(sock)
    finally:
        await leadership.release()
        await lease.close()
