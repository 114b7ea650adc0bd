"""The emulator's own time: a controllable clock and the timeline of future events.

Batch is slow on purpose (nodes take minutes to boot, deletions take a while), and tests
must neither wait for that in wall time nor sleep fixed amounts. So the emulator never
reads the system clock for its state: it reads `EmulatorClock`, which runs at a chosen
speed (1.0 = real time, 0 = frozen) and can be pushed forward with `advance()`.

Everything that will happen later (a node finishing its boot, a task reaching its
wall-clock limit, a deleted job disappearing) is an `Event` on the `Timeline`. Running the
timeline up to "now" replays due events in time order, each at its own timestamp, so a
large `advance()` gives the same history as waiting: a task that ends at t=5 frees its slot
at t=5 and the next task starts at t=5, not at the moment the test looked.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A runaway chain of zero-length events (e.g. a task rule that fails instantly with
# unlimited retries) would otherwise spin forever inside one request.
MAX_EVENTS_PER_RUN = 200_000


class EmulatorClock:
    """Seconds since the Unix epoch, as the emulator sees them."""

    def __init__(
        self,
        *,
        start: float | None = None,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        self._monotonic = monotonic
        self._base = time.time() if start is None else start
        self._mono0 = monotonic()
        self._speed = speed

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._base + (self._monotonic() - self._mono0) * self._speed

    def set_speed(self, speed: float) -> None:
        """Change how fast emulator time runs from now on (0 freezes it)."""
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        self._base = self.now()
        self._mono0 = self._monotonic()
        self._speed = speed

    def advance(self, seconds: float) -> None:
        """Jump forward; time never runs backwards."""
        if seconds < 0:
            raise ValueError("the emulator clock cannot go backwards")
        self._base += seconds


@dataclass(order=True)
class Event:
    when: float
    seq: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Timeline:
    """A priority queue of future events, replayed in order up to a given time."""

    def __init__(self, clock: EmulatorClock) -> None:
        self.clock = clock
        self.now = clock.now()
        self._heap: list[Event] = []
        self._seq = itertools.count()

    def at(self, when: float, action: Callable[[], None]) -> Event:
        event = Event(max(when, self.now), next(self._seq), action)
        heapq.heappush(self._heap, event)
        return event

    def after(self, delay: float, action: Callable[[], None]) -> Event:
        return self.at(self.now + max(delay, 0.0), action)

    def next_due(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    def run_until(self, until: float, after_each: Callable[[], None]) -> None:
        """Fire every event due by `until`, at its own time, then settle at `until`."""
        fired = 0
        while self._heap and self._heap[0].when <= until:
            event = heapq.heappop(self._heap)
            if event.cancelled:
                continue
            fired += 1
            if fired > MAX_EVENTS_PER_RUN:
                raise RuntimeError("emulator timeline did not settle (zero-length event loop?)")
            self.now = max(self.now, event.when)
            event.action()
            after_each()
        self.now = max(self.now, until)
