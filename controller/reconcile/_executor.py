"""Where a step is executed: the plan's actions, concurrently, under one in-flight limit.

Phases, each finished before the next starts:

1. pools — creations, resizes, recorded logins (and any action that is neither of a
   simulation's chain nor a removal), all at once;
2. simulations — per simulation a chain: its job is created, and as soon as it exists its
   new simulators are added, in chunks of ``backend.tasks_per_request`` (one request
   each); the chains of different simulations run side by side;
3. stops and forgotten simulators, then deleted jobs, then deleted pools.

All phases share one limiter: never more than ``max_in_flight`` requests at once. Every
surge simulator is added before any simulator is stopped, so no interleaving inside a
phase can put more pairs in a slot, or fewer simulators in service, than the plan's end
state has (the planner checks that one against ``maxSurge`` and ``maxUnavailable``).

A permanent failure is recorded against its action and the rest go on. A ``Retry-After``
cancels everything not yet sent — requests already on the wire finish — and no later
phase starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from controller.backends import Backend, BackendError, TransientBackendError
from controller.planner import (
    REMOVALS,
    Action,
    AddTasks,
    CreateJob,
    DeleteJob,
    DeletePool,
    DeleteTask,
    ShrinkPool,
    StopTask,
)
from controller.reconcile._result import ActionFailure

log = structlog.get_logger("simfleet.reconcile")

#: Requests in flight at once when the operator does not say (``--max-in-flight``).
MAX_IN_FLIGHT = 16


@dataclass(frozen=True)
class Execution:
    """What the executor did with a plan's actions.

    Attributes:
        executed: actions carried out, in the plan's order (an ``AddTasks`` whole when
            every chunk went through, else the chunks that did).
        failures: actions (or chunks) that failed.
        retry_after: seconds the backend asked to be left alone, if it did.
    """

    executed: tuple[Action, ...] = ()
    failures: tuple[ActionFailure, ...] = ()
    retry_after: float | None = None


@dataclass
class _Run:
    """One execution in progress: its results so far and whether it was cancelled."""

    backend: Backend
    limit: asyncio.Semaphore
    done: dict[tuple[int, int], Action] = field(default_factory=dict)
    failures: list[tuple[tuple[int, int], ActionFailure]] = field(default_factory=list)
    retry_after: float | None = None

    async def send(self, key: tuple[int, int], action: Action) -> bool:
        """Execute one action under the limit; True if it happened."""
        async with self.limit:
            if self.retry_after is not None:
                return False  # cancelled: a Retry-After came while this one waited
            try:
                await self.backend.execute(action)
            except BackendError as exc:
                transient = isinstance(exc, TransientBackendError)
                failure = ActionFailure(action, str(exc), exc.code, transient=transient)
                self.failures.append((key, failure))
                log.warning(
                    "action_failed", action=action.describe(), error=str(exc), code=exc.code
                )
                if isinstance(exc, TransientBackendError) and exc.retry_after is not None:
                    self.retry_after = max(self.retry_after or 0.0, exc.retry_after)
                return False
        self.done[key] = action
        log.info("action", action=action.describe())
        return True


class Executor:
    """Carries out plans against one backend under one global in-flight limit.

    The limit is shared by every plan this executor runs, so two steps can never together
    exceed it.
    """

    def __init__(self, backend: Backend, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.backend = backend
        self.max_in_flight = max_in_flight
        self._limit: asyncio.Semaphore | None = None

    async def run(self, actions: Sequence[Action]) -> Execution:
        """Execute ``actions`` (a plan's, in its order) phase by phase; never raises for
        backend errors of single actions."""
        if self._limit is None:
            self._limit = asyncio.Semaphore(self.max_in_flight)
        run = _Run(self.backend, self._limit)
        numbered = list(enumerate(actions))
        # first every pool action (and anything else that is neither a simulation's chain
        # nor a removal: no action kind may be left out by a list that forgot it)
        later = (CreateJob, AddTasks, *REMOVALS)
        pools = [(i, a) for i, a in numbered if not isinstance(a, later)]
        chains: dict[str, list[tuple[int, Action]]] = {}
        for i, a in numbered:
            if isinstance(a, CreateJob):
                chains.setdefault(a.name, []).append((i, a))
            elif isinstance(a, AddTasks):
                chains.setdefault(a.job, []).append((i, a))
        endings: list[list[tuple[int, Action]]] = [
            [(i, a) for i, a in numbered if isinstance(a, kinds)]
            for kinds in (StopTask | DeleteTask, DeleteJob, DeletePool | ShrinkPool)
        ]
        phases: list[list[Callable[[], Awaitable[object]]]] = [
            [_bound(run.send, (i, 0), a) for i, a in pools],
            [_bound(self._chain, run, chain) for chain in chains.values()],
            *([_bound(run.send, (i, 0), a) for i, a in phase] for phase in endings),
        ]
        for phase in phases:
            if run.retry_after is not None:
                break
            await asyncio.gather(*(start() for start in phase))
        return _collected(actions, run)

    async def _chain(self, run: _Run, chain: list[tuple[int, Action]]) -> None:
        """One simulation: its job first (if the plan creates it), then its task chunks."""
        for index, action in chain:
            if isinstance(action, CreateJob):
                if not await run.send((index, 0), action):
                    return  # no job, no simulators: the next step tries again
            elif isinstance(action, AddTasks):
                size = max(1, self.backend.tasks_per_request)
                chunks = [
                    dataclasses.replace(action, tasks=action.tasks[at : at + size])
                    for at in range(0, len(action.tasks), size)
                ]
                await asyncio.gather(
                    *(run.send((index, n), chunk) for n, chunk in enumerate(chunks))
                )


def _bound(
    function: Callable[..., Awaitable[object]], *args: object
) -> Callable[[], Awaitable[object]]:
    return lambda: function(*args)


def _collected(actions: Sequence[Action], run: _Run) -> Execution:
    """Results in the plan's order; an AddTasks all of whose chunks went through is
    reported whole, as the plan has it."""
    parts: dict[int, list[tuple[int, Action]]] = {}
    for (index, chunk), action in run.done.items():
        parts.setdefault(index, []).append((chunk, action))
    executed: list[Action] = []
    for index, action in enumerate(actions):
        done = [a for _, a in sorted(parts.get(index, []), key=lambda ca: ca[0])]
        whole = isinstance(action, AddTasks) and sum(
            len(a.tasks) for a in done if isinstance(a, AddTasks)
        ) == len(action.tasks)
        executed += [action] if whole else done
    failures = [f for _, f in sorted(run.failures, key=lambda kf: kf[0])]
    return Execution(tuple(executed), tuple(failures), run.retry_after)
