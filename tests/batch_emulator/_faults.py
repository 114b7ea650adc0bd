"""Fault injection: latency, 5xx answers, throttling with Retry-After, dropped connections.

A controller that works only against a perfect service is not done. Tests configure
faults at runtime on `emulator.faults`:

    faults.latency = 0.2                                   # every request, wall seconds
    faults.inject(Fault.server_busy(retry_after=1))        # next request: 503 ServerBusy
    faults.inject(Fault.throttle(), operations={"Tasks_ListTasks"}, times=2)
    faults.script([Fault.internal_error(), None, Fault.drop()])   # per request, in order
    faults.random(Fault.internal_error(), probability=0.2, seed=7)
    Fault.internal_error(after_processing=True)            # do the work, then answer 500

Queued faults (`inject`, `script`) are consumed one per matching request, oldest first;
`None` in a script lets that request through. `after_processing` faults apply after the
operation changed the state, which is how a client learns that a 5xx does not mean
"nothing happened" (the retry of an add then meets `TaskExists`).

Every 429/503 carrying `Retry-After` opens a window; a request that arrives before it
closes is recorded in `early_arrivals`. Windows are wall-clock time, because clients
sleep in wall-clock time.
"""

from __future__ import annotations

import random as _random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fault:
    kind: str  # "status" or "drop"
    status: int = 500
    code: str = "InternalError"
    message: str = "The server encountered an internal error. Please retry the request."
    retry_after: float | None = None
    after_processing: bool = False

    @classmethod
    def internal_error(cls, *, after_processing: bool = False) -> Fault:
        return cls("status", after_processing=after_processing)

    @classmethod
    def status_code(cls, status: int, code: str, message: str = "Injected fault.") -> Fault:
        return cls("status", status=status, code=code, message=message)

    @classmethod
    def throttle(cls, *, retry_after: float = 1) -> Fault:
        return cls(
            "status",
            status=429,
            code="TooManyRequests",
            message="The request rate is too high. Please retry later.",
            retry_after=retry_after,
        )

    @classmethod
    def server_busy(cls, *, retry_after: float = 1) -> Fault:
        return cls(
            "status",
            status=503,
            code="ServerBusy",
            message="The server is currently unable to receive requests. Please retry.",
            retry_after=retry_after,
        )

    @classmethod
    def drop(cls, *, after_processing: bool = False) -> Fault:
        return cls("drop", after_processing=after_processing)


@dataclass
class _Queued:
    operations: frozenset[str] | None
    items: deque[Fault | None]


@dataclass
class _Random:
    operations: frozenset[str] | None
    fault: Fault
    probability: float
    rng: _random.Random


@dataclass(frozen=True)
class EarlyArrival:
    operation: str
    early_by: float  # seconds before the announced Retry-After window closed


@dataclass
class FaultInjector:
    latency: float = 0.0
    latency_operations: frozenset[str] | None = None
    early_arrivals: list[EarlyArrival] = field(default_factory=list)
    _queued: list[_Queued] = field(default_factory=list)
    _random: list[_Random] = field(default_factory=list)
    _window_until: float = 0.0
    _monotonic: Callable[[], float] = time.monotonic

    def inject(
        self, fault: Fault, *, times: int = 1, operations: Iterable[str] | None = None
    ) -> None:
        self.script([fault] * times, operations=operations)

    def script(
        self, sequence: Iterable[Fault | None], *, operations: Iterable[str] | None = None
    ) -> None:
        ops = None if operations is None else frozenset(operations)
        self._queued.append(_Queued(ops, deque(sequence)))

    def random(
        self,
        fault: Fault,
        *,
        probability: float,
        seed: int = 0,
        operations: Iterable[str] | None = None,
    ) -> None:
        ops = None if operations is None else frozenset(operations)
        self._random.append(_Random(ops, fault, probability, _random.Random(seed)))

    def clear(self) -> None:
        self.latency = 0.0
        self.latency_operations = None
        self._queued.clear()
        self._random.clear()

    def pending(self) -> int:
        """Queued faults not yet used."""
        return sum(sum(1 for f in q.items if f is not None) for q in self._queued)

    # -- used by the server -------------------------------------------------------------

    def delay_for(self, operation: str) -> float:
        ops = self.latency_operations
        return self.latency if ops is None or operation in ops else 0.0

    def next_fault(self, operation: str) -> Fault | None:
        for queued in self._queued:
            if queued.items and (queued.operations is None or operation in queued.operations):
                return queued.items.popleft()
        for rule in self._random:
            applies = rule.operations is None or operation in rule.operations
            if applies and rule.rng.random() < rule.probability:
                return rule.fault
        return None

    def arrived(self, operation: str) -> None:
        now = self._monotonic()
        if now < self._window_until:
            self.early_arrivals.append(EarlyArrival(operation, self._window_until - now))

    def announced_retry_after(self, seconds: float) -> None:
        self._window_until = max(self._window_until, self._monotonic() + seconds)
