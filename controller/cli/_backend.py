"""Open the backend a command asked for, and close it the way the command needs.

Commands never construct adapters themselves; they call :func:`opened` with their
options. The Azure SDK is imported only when ``--backend azure`` is chosen.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import click

from controller.backends import Backend, BackendError
from controller.spec import RunOptionsPolicy


@asynccontextmanager
async def opened(
    kind: str,
    *,
    runtime: str,
    state_dir: Path,
    read_only: bool = False,
    stop_simulators: bool = False,
    run_options: RunOptionsPolicy | None = None,
) -> AsyncIterator[Backend]:
    """Yield an open backend; close it on the way out.

    Args:
        kind: ``local`` or ``azure``.
        runtime: the local runtime (``process`` or ``docker``).
        state_dir: the local backend's state directory.
        read_only: observe and read logs only (no lock, nothing started).
        stop_simulators: end every simulator when closing (the daemon's SIGTERM).
        run_options: the policy the docker runtime checks again before each start.
    """
    backend: Backend
    if kind == "local":
        from controller.backends.local import DockerRuntime, LocalBackend, ProcessRuntime

        chosen = DockerRuntime(run_options) if runtime == "docker" else ProcessRuntime()
        local = LocalBackend(state_dir, read_only=read_only, runtime=chosen)
        try:
            await local.open()
        except BackendError as exc:
            raise click.ClickException(str(exc)) from exc
        backend = local
    else:
        from controller.backends.azure import AzureBackend, AzureSettings

        try:
            backend = AzureBackend(AzureSettings.from_environ(os.environ))
        except BackendError as exc:
            raise click.ClickException(str(exc)) from exc
    try:
        yield backend
    finally:
        await backend.close(stop_simulators=stop_simulators)
