"""Open the backend a command asked for, close it the way the command needs, and turn a
backend's refusal into the one line a command ends with.

Commands never construct adapters themselves; they call :func:`opened` with their
options. The Azure SDK is imported only when ``--backend azure`` is chosen. A command
that starts simulators with ``--runtime docker`` first makes sure a Docker Engine
answers, and ends with one line if none does.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import click

from controller.backends import (
    DEFAULT_FLEET,
    Backend,
    BackendError,
    Lease,
    LeaseTimings,
    TransientBackendError,
    UnreachableBackendError,
)
from controller.spec import RunOptionsPolicy


def failure(exc: BackendError) -> click.ClickException:
    """The one-line error a command ends with when the backend failed it.

    A backend that cannot be reached (DNS, a refused connection) is said to be
    unreachable, never "busy": only throttling and server errors are the service's doing.
    """
    if isinstance(exc, UnreachableBackendError):
        return click.ClickException(f"cannot reach the backend: {exc}")
    if isinstance(exc, TransientBackendError):
        return click.ClickException(f"backend busy, try again later: {exc}")
    return click.ClickException(str(exc))


@asynccontextmanager
async def opened(
    kind: str,
    *,
    runtime: str,
    state_dir: Path,
    fleet: str = DEFAULT_FLEET,
    read_only: bool = False,
    stop_simulators: Callable[[], bool] | None = None,
    run_options: RunOptionsPolicy | None = None,
    lease: Lease | None = None,
    open_local: bool = True,
) -> AsyncIterator[Backend]:
    """Yield an open backend; close it on the way out.

    A failure inside the block (any exception) closes the backend *without* stopping
    simulators: a controller that failed leaves the fleet running for the next one to
    adopt. Only a clean exit asks ``stop_simulators``.

    Args:
        kind: ``local`` or ``azure``.
        runtime: the local runtime (``process`` or ``docker``).
        state_dir: the local backend's state directory.
        fleet: the fleet the controller acts for (``--fleet``).
        read_only: observe and read logs only (no lock, nothing started).
        stop_simulators: asked on a clean exit; True ends every simulator (the daemon
            after SIGTERM, SIGINT or SIGHUP).
        run_options: the policy the docker runtime checks again before each start.
        lease: the fleet's lease, held (or to be held) by this controller: the Azure
            backend sends no write while it is not, and names its holder in every request.
        open_local: open the local backend now; False leaves it to the caller (the
            daemon opens it once it leads).
    """
    backend: Backend
    if kind == "local":
        from controller.backends.local import (
            DockerRuntime,
            LocalBackend,
            ProcessRuntime,
            check_fleet,
        )

        chosen = DockerRuntime(run_options) if runtime == "docker" else ProcessRuntime()
        local = LocalBackend(state_dir, read_only=read_only, runtime=chosen, fleet=fleet)
        try:
            check_fleet(state_dir, fleet)  # now, not once it leads: it could never use it
            if isinstance(chosen, DockerRuntime) and not read_only:
                await asyncio.to_thread(chosen.check)  # no engine: one line, not a crash loop
            if open_local:
                await local.open()
        except BackendError as exc:
            raise failure(exc) from exc
        backend = local
    else:
        from controller.backends.azure import AzureBackend, AzureSettings

        try:
            backend = AzureBackend(AzureSettings.from_environ(os.environ), fleet=fleet, lease=lease)
        except BackendError as exc:
            raise failure(exc) from exc
    try:
        yield backend
    except BaseException:
        await backend.close(stop_simulators=False)
        raise
    await backend.close(stop_simulators=stop_simulators is not None and stop_simulators())


def on_lead(backend: Backend) -> Callable[[], Awaitable[None]] | None:
    """What to await once this controller leads, for a backend ``opened(open_local=False)``
    left closed: the local backend's ``open`` (its lock and recovery are the leader's
    alone); None for a backend with nothing to open (Azure)."""
    opener: Callable[[], Awaitable[None]] | None = getattr(backend, "open", None)
    return opener


def new_identity() -> str:
    """A controller's name in its fleet's lease: host, process and a random part (two
    containers can share a host name and a pid)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def make_lease(
    kind: str, *, fleet: str, identity: str, timings: LeaseTimings, state_dir: Path
) -> Lease:
    """The fleet's lease on the backend ``kind``: a Batch job's metadata (azure) or a lock
    in the state directory (local). Nothing is sent or locked before its first round."""
    if kind == "local":
        from controller.backends.local import LocalLease

        return LocalLease(state_dir, fleet=fleet, identity=identity, timings=timings)
    from controller.backends.azure import AzureLease, AzureSettings

    try:
        settings = AzureSettings.from_environ(os.environ)
    except BackendError as exc:
        raise failure(exc) from exc
    return AzureLease(settings, fleet=fleet, identity=identity, timings=timings)
