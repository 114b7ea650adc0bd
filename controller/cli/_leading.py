"""The one-shot commands that write (``apply``, ``delete``): lead the fleet, then act.

Both open the fleet's lease before the backend (so the backend fences every write on it),
open the backend without touching local state until they lead, take the lease (or learn
who holds it), and do their work while a task keeps renewing it; whatever happens, the
lease is released and closed at the end. This module is that sequence, written once:
:func:`session` opens and closes, :func:`lead` decides, :func:`while_leading` acts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import click

from controller.backends import (
    Backend,
    BackendError,
    LeaseTimings,
    TransientBackendError,
    UnreachableBackendError,
)
from controller.cli._backend import failure, make_lease, new_identity, on_lead, opened
from controller.daemon import Leadership
from controller.reconcile import UNREACHABLE_PAUSE
from controller.spec import RunOptionsPolicy

T = TypeVar("T")


@asynccontextmanager
async def session(
    kind: str,
    *,
    runtime: str,
    state_dir: Path,
    fleet: str,
    timings: LeaseTimings,
    run_options: RunOptionsPolicy | None = None,
) -> AsyncIterator[tuple[Backend, Leadership]]:
    """The open backend and the fleet's leadership (not yet taken); a backend error in
    the block ends the command in one line, and the lease is released on the way out."""
    lease = make_lease(
        kind, fleet=fleet, identity=new_identity(), timings=timings, state_dir=state_dir
    )
    leadership = Leadership(lease)
    try:
        async with opened(
            kind,
            runtime=runtime,
            state_dir=state_dir,
            fleet=fleet,
            run_options=run_options,
            lease=lease,
            open_local=False,
        ) as backend:
            try:
                yield backend, leadership
            except BackendError as exc:
                raise failure(exc) from exc
    finally:
        await leadership.release()
        await lease.close()


def retrying(exc: TransientBackendError, pause: float) -> None:
    """One line while a command waits for a backend that is busy or out of reach."""
    unreachable = isinstance(exc, UnreachableBackendError)
    what = "cannot reach the backend" if unreachable else "backend busy"
    click.echo(f"{what} ({exc}); retrying in {pause:g}s", err=True)


async def lead(leadership: Leadership, take: bool, *, wait: bool, within: float) -> bool:
    """Take the lease (by force with ``take``); after a forced takeover, renew until the
    old leader's renew deadline has passed. False: another controller leads. With
    ``wait``, a backend out of reach or throttled is waited for, as ``--wait`` does."""
    deadline = time.monotonic() + within
    while True:
        try:
            leading = await leadership.round(force=take, strict=True)
            break
        except TransientBackendError as exc:
            pause = exc.retry_after or UNREACHABLE_PAUSE
            if not wait or time.monotonic() + pause > deadline:
                raise
            retrying(exc, pause)
            await asyncio.sleep(pause)
    record = leadership.record
    if leading or record is None or record.holder != leadership.lease.identity:
        return leading
    timings = leadership.lease.timings
    click.echo(
        f"took the lease of fleet {leadership.lease.fleet!r}; writing in "
        f"{timings.renew_deadline:g}s, once the last leader has stopped",
        err=True,
    )
    while not leadership.may_write():
        await asyncio.sleep(timings.retry_period)
        await leadership.round()
    return True


async def while_leading(
    leadership: Leadership, backend: Backend, work: Callable[[], Awaitable[T]]
) -> T:
    """``work()``'s result, once the backend has opened what a leader opens (the local
    state directory), with the lease renewed beside it all along."""
    stop = asyncio.Event()
    renewals = asyncio.create_task(leadership.run(stop))
    try:
        opener = on_lead(backend)
        if opener is not None:
            await opener()
        return await work()
    finally:
        stop.set()
        await renewals
