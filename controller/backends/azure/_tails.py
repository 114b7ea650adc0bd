"""The tail of stderr for a failed simulator's ``lastExit``, fetched once per failure.

Listings carry exit codes and failure codes but not output. Status shows the newest exit
of each slot, so only that task's ``stderr.txt`` is read: its size, then its last 8 KiB
(two small requests), at most ``per_pass`` failures a pass, and never again for the same
task — a completed task's output does not change. A task that never ran (an image pull
failure) has no files; that is remembered as an empty tail. A task whose files Batch
removed since (its node left the pool, its retention time ended) gets a one-line note as
its tail instead. Observation stays a handful of list requests; this adds a couple of
requests per new failure.

A simulator may print its secrets. The tail is masked before it is kept, against the
task's *own* secret values — read back from its environment settings (one more request,
only for tasks that have secrets) — so a tail still shows no secret after the secret was
rotated and the controller restarted, when the controller no longer knows the old value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence

from controller.backends._errors import BackendError, OutputGoneError, TransientBackendError
from controller.backends._protocol import TAIL_LINES, OutputChunk, OutputStream
from controller.backends._redaction import redacted_tail
from controller.planner import ExitReason, ObservedTask

Reader = Callable[[str, str, OutputStream, int], Awaitable[OutputChunk]]
#: (job, task id, secret names) → the task's values of those secrets.
SecretReader = Callable[[str, str, tuple[str, ...]], Awaitable[list[str]]]
#: How much of the end of stderr is read: several tail lines of a chatty simulator.
TAIL_WINDOW = 8192
#: The tail shown when Batch no longer has the task's files (see ``OutputGoneError``).
GONE_NOTE = (
    "(simfleet: stderr not available any more: Batch removed the task's files with its "
    "node or after its retention time)"
)


class StderrTails:
    """A cache of stderr tails by (job, task id), filled a few failures at a time."""

    def __init__(self, read: Reader, secrets: SecretReader, *, per_pass: int = 8) -> None:
        self._read = read
        self._secrets = secrets
        self._per_pass = per_pass
        self._known: dict[tuple[str, str], str] = {}

    def forget_except(self, jobs: set[str]) -> None:
        """Drop tails of jobs that no longer exist."""
        self._known = {k: v for k, v in self._known.items() if k[0] in jobs}

    async def fill(self, job: str, tasks: Sequence[ObservedTask]) -> tuple[ObservedTask, ...]:
        """``tasks`` with the stderr tail of each slot's newest failure filled in."""
        newest: dict[int, ObservedTask] = {}
        for task in tasks:
            if task.exit is not None and (
                task.slot not in newest or task.created_at > newest[task.slot].created_at
            ):
                newest[task.slot] = task
        wanted = [
            t for t in newest.values()
            if t.exit is not None and t.exit.reason in (ExitReason.FAILED, ExitReason.LOST)
            and (job, t.id) not in self._known
        ][: self._per_pass]  # fmt: skip
        for task in wanted:
            try:
                chunk = await self._read(job, task.id, OutputStream.STDERR, -TAIL_WINDOW)
                values = (
                    await self._secrets(job, task.id, task.secret_names)
                    if task.secret_names and chunk.data
                    else []
                )
                self._known[(job, task.id)] = redacted_tail(
                    chunk.data, values, cut=chunk.offset > 0, lines=TAIL_LINES
                )
            except TransientBackendError:
                continue  # throttled or unreachable: try again next pass
            except OutputGoneError:
                # Never started: no files, its failure code says it all. Else its files
                # went with its node or its retention time: say so. Never asked again.
                self._known[(job, task.id)] = "" if task.started_at is None else GONE_NOTE
            except BackendError:
                self._known[(job, task.id)] = ""  # unreadable for good: don't retry
        if not any(t.exit is not None and self._known.get((job, t.id)) for t in tasks):
            return tuple(tasks)  # nothing to fill in: the (remembered) tuple as it is
        return tuple(
            dataclasses.replace(t, exit=dataclasses.replace(t.exit, stderr_tail=tail))
            if t.exit is not None and (tail := self._known.get((job, t.id)))
            else t
            for t in tasks
        )
