"""``simfleet delete``: tear down the fleet, or some of its simulations.

Without names it deletes every job and pool the fleet owns; with names, those simulations
and each one's pool once nothing else needs it (:func:`controller.planner.teardown` has
the guards: never another fleet's object, nor one simfleet did not create, nor the lease
job). The deletions are the planner's own actions, carried out by the reconciler's
executor, so the in-flight limit and ``Retry-After`` apply as in any pass.

Like ``apply`` it writes only while it holds the fleet's lease: beside a running daemon
it deletes nothing (the daemon would create everything again at its next pass) and says
who leads. It asks before deleting; ``--yes`` answers for scripts, and without a terminal
to ask on it refuses. Batch deletes asynchronously (jobs and pools go through
``deleting``): ``--wait`` watches until they are really gone. The local backend always
waits: no service finishes its deletions after the command has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from controller.backends import (
    Backend,
    LeaseTimings,
    TransientBackendError,
)
from controller.cli import _leading, _options
from controller.planner import Action, Teardown, teardown
from controller.reconcile import UNREACHABLE_PAUSE, Executor
from controller.spec import SimulationSpec, build_catalog, load_directory

#: Seconds between two looks at what ``--wait`` waits for.
POLL = 1.0


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def listing(plan: Teardown) -> list[str]:
    """What the teardown removes, one line per object, as the prompt shows it."""
    return [
        f"  simulation {name} ({_count(n, 'simulator')})" for name, n in plan.simulations.items()
    ] + [f"  pool {name} ({_count(n, 'node')})" for name, n in plan.pools.items()]


def summary(plan: Teardown) -> str:
    """The teardown in one phrase: counts of simulations, simulators and pools."""
    simulators = sum(plan.simulations.values())
    return (
        f"{_count(len(plan.simulations), 'simulation')} with "
        f"{_count(simulators, 'simulator')}, {_count(len(plan.pools), 'pool')}"
    )


def pools_in_specs(specs: Path, names: Sequence[str]) -> tuple[frozenset[str], frozenset[str]]:
    """Pools the simulations the specs define, other than ``names``, run on, and the
    spec files that failed to load (said on stderr: they may name any pool). A specs
    directory that is not there names none."""
    if not specs.is_dir():
        return frozenset(), frozenset()
    catalog = build_catalog(load_directory(specs))
    for error in catalog.errors:
        click.echo(f"warning: {error}", err=True)
    deleted = {name.lower() for name in names}
    for name, obj in catalog.simulations.items():
        if name.lower() in deleted:
            click.echo(
                f"note: simulation {name} is still defined in {obj.file}; a daemon or "
                "apply would create it again",
                err=True,
            )
    in_use = frozenset(
        obj.spec.pool
        for name, obj in catalog.simulations.items()
        if name.lower() not in deleted and isinstance(obj.spec, SimulationSpec)
    )
    return in_use, frozenset(error.file for error in catalog.errors)


def refusal(plan: Teardown, fleet: str) -> str:
    """The one line a wrong name ends the command with."""
    problems = [f"no simulation named {name} in fleet {fleet!r}" for name in plan.unknown]
    problems += [f"simulation {name} {owner}" for name, owner in plan.foreign.items()]
    return "; ".join(problems) + "; nothing deleted"


@dataclass(frozen=True)
class Request:
    """What the operator asked ``delete`` for."""

    names: list[str] | None  # None: the whole fleet
    in_use: frozenset[str]  # pools the specs' other simulations name
    unreadable: frozenset[str]  # spec files that failed to load
    fleet: str
    yes: bool
    wait: bool
    within: float  # --timeout
    max_in_flight: int


@click.command()
@click.argument("simulations", nargs=-1, metavar="[SIMULATION]...")
@_options.specs
@_options.backend_options
@_options.option("--yes", "-y", env="YES", is_flag=True, help="Delete without asking.")
@_options.option(
    "--wait", env="WAIT", is_flag=True, help="Keep going until everything is really gone."
)
@_options.option(
    "--timeout",
    env="TIMEOUT",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds the deletions, and --wait, may take before giving up (exit 1).",
)
@_options.option(
    "--take-lease",
    env="TAKE_LEASE",
    is_flag=True,
    help="Break-glass: take the fleet's lease even from a live leader (it stops writing "
    "within its renew deadline; this delete writes only after it).",
)
@_options.fleet
@_options.max_in_flight
@_options.lease_timings
def delete(
    simulations: tuple[str, ...],
    specs: Path,
    backend: str,
    runtime: str,
    state_dir: Path,
    yes: bool,
    wait: bool,
    timeout: float,
    take_lease: bool,
    fleet: str,
    max_in_flight: int,
    lease_timings: LeaseTimings,
) -> None:
    """Tear down the fleet, or the SIMULATIONs named (only what the fleet owns).

    Without names: every job and pool of the fleet. With names: those simulations, and
    each one's pool when no other simulation (of any fleet, or in --specs) uses it
    and every file in --specs loads.
    It asks first (--yes: do not ask) and writes only while it holds the fleet's lease:
    beside a running daemon it deletes nothing.
    """
    names = list(dict.fromkeys(simulations)) or None
    in_use, unreadable = pools_in_specs(specs, names) if names else (frozenset(), frozenset())
    # Locally no service finishes a deletion once the command has gone (the simulators'
    # ends are recorded by the process that watches them): it always waits.
    waits = wait or backend == "local"
    ask = Request(names, in_use, unreadable, fleet, yes, waits, timeout, max_in_flight)

    async def main() -> bool:
        async with _leading.session(
            backend, runtime=runtime, state_dir=state_dir, fleet=fleet, timings=lease_timings
        ) as (b, leadership):
            if not await _leading.lead(leadership, take_lease, wait=False, within=timeout):
                raise click.ClickException(
                    f"{leadership.describe()}; delete changed nothing (the leader "
                    "would create it all again). Remove the simulations from its "
                    "specs (it prunes them) or stop it first, or use --take-lease "
                    "(break-glass)"
                )
            return await _leading.while_leading(leadership, b, lambda: _delete(b, ask))

    if not asyncio.run(main()):
        raise SystemExit(1)


async def _delete(backend: Backend, ask: Request) -> bool:
    """Plan, confirm, execute and (``wait``) watch; True when it all went well."""
    plan = teardown(await backend.observe(), ask.names, ask.in_use, ask.unreadable)
    if plan.refused:
        raise click.ClickException(refusal(plan, ask.fleet))
    for line in plan.kept:
        click.echo(f"kept: {line}", err=True)
    if plan.empty:
        click.echo(f"nothing to delete in fleet {ask.fleet!r}")
        return True
    click.echo(f"fleet {ask.fleet!r}: {summary(plan)} to delete:")
    click.echo("\n".join(listing(plan)))
    if not ask.yes:
        if not sys.stdin.isatty():
            raise click.ClickException(
                "not deleting: no terminal to ask on (pass --yes to delete without asking)"
            )
        if not await confirmed("Delete these?"):
            click.echo("nothing deleted")
            return True
    started = time.monotonic()
    sent = await _execute(backend, plan.actions, ask.max_in_flight, ask.within)
    if not sent:
        return False
    if not ask.wait:
        click.echo(
            f"deleted {summary(plan)}; the deletion finishes in the background "
            "(--wait waits for it)"
        )
        return True
    left = max(0.0, ask.within - (time.monotonic() - started))
    if not await _gone(backend, plan, left):
        return False
    click.echo(f"gone: {summary(plan)}")
    return True


async def confirmed(question: str) -> bool:
    """Ask on the terminal while the loop goes on (the lease is renewed meanwhile).

    The question waits in a daemon thread: Ctrl-C ends the command at once, leaving the
    thread blocked on a read nobody waits for, where a pool thread would be joined at exit
    and hold the process until the user pressed Enter.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bool] = loop.create_future()

    def deliver(outcome: bool | Exception) -> None:
        if answer.done():
            return
        if isinstance(outcome, Exception):
            answer.set_exception(outcome)
        else:
            answer.set_result(outcome)

    def ask() -> None:
        outcome: bool | Exception
        try:
            outcome = click.confirm(question, default=False)
        except Exception as exc:  # click.Abort at the end of input: the loop raises it
            outcome = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody asks any more
            loop.call_soon_threadsafe(deliver, outcome)

    threading.Thread(target=ask, name="delete-confirm", daemon=True).start()
    return await answer


async def _execute(
    backend: Backend, actions: Sequence[Action], max_in_flight: int, within: float
) -> bool:
    """Send the deletions through the reconciler's executor, again after a Retry-After
    (a deletion is idempotent: one of an object already gone succeeds). True: all sent."""
    executor = Executor(backend, max_in_flight)
    deadline = time.monotonic() + within
    pending = list(actions)
    while pending:
        execution = await executor.run(pending)
        for action in execution.executed:
            click.echo(action.describe())
        permanent = [f for f in execution.failures if not f.transient]
        for failed in permanent:
            click.echo(f"failed: {failed.action.describe()}: {failed.message}", err=True)
        if permanent:
            return False
        done = set(execution.executed)
        pending = [a for a in pending if a not in done]
        if pending:
            pause = execution.retry_after or UNREACHABLE_PAUSE
            if time.monotonic() + pause > deadline:
                click.echo(f"not all deleted after {within:g}s", err=True)
                return False
            click.echo(f"backend busy; retrying {len(pending)} deletion(s) in {pause:g}s", err=True)
            await asyncio.sleep(pause)
    return True


async def _gone(backend: Backend, plan: Teardown, within: float) -> bool:
    """Watch until every object of ``plan`` is gone (True), one line whenever what is left
    changes; False after ``within`` seconds."""
    deadline = time.monotonic() + within
    told = ""
    while True:
        try:
            jobs, pools = plan.remaining(await backend.observe())
        except TransientBackendError as exc:
            pause = exc.retry_after or UNREACHABLE_PAUSE
            if time.monotonic() + pause > deadline:
                raise
            _leading.retrying(exc, pause)
            await asyncio.sleep(pause)
            continue
        if not jobs and not pools:
            return True
        left = ", ".join([f"simulation {j}" for j in jobs] + [f"pool {p}" for p in pools])
        if left != told:
            click.echo(f"  still being deleted: {left}")
            told = left
        if time.monotonic() > deadline:
            click.echo(f"not gone after {within:g}s: {left}", err=True)
            return False
        await asyncio.sleep(POLL)
