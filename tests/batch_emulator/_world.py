"""The emulated Batch account and its scheduler: what runs where, and how runs end.

`World` owns the registries (pools, jobs), the clock and timeline, and the task lifecycle
that every other part uses: putting queued tasks on free node slots (`dispatch`), starting
a run, ending it (`complete_task`, with Batch's retry rule), and putting a task back in
the queue when its node goes away (`requeue_task`). Pool mechanics live in `_pools.py`,
job and task operations in `_jobs.py`; both build on this module.

Scheduling follows Batch: tasks of the jobs bound to a pool are taken by job priority,
then first-in-first-out; a task needs `requiredSlots` free slots on one node (each node
has `taskSlotsPerNode`), `nodeFillType` `spread` picks the emptiest node and `pack` the
fullest that fits; `maxParallelTasks` caps a job's running tasks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from . import _pulls
from ._behaviour import Outcome, TaskRule, first_match, task_ended
from ._clock import EmulatorClock, Timeline
from ._config import EmulatorConfig
from ._errors import not_found
from ._health import NodeHealth
from ._model import Job, Node, Pool, Task, TaskFile, key
from ._preparation import Preparation
from ._taskfiles import moved_to


class World:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = EmulatorClock(start=config.start_time, speed=config.clock_speed)
        self.timeline = Timeline(self.clock)
        self.pools: dict[str, Pool] = {}
        self.jobs: dict[str, Job] = {}
        self.rules: list[TaskRule] = []
        self.health = NodeHealth(lambda: self.now, self.timeline.after, config.start_task_duration)
        self.preparation = Preparation(config)
        self.base_url = ""  # set once the server knows its address
        self._seq = itertools.count(1)
        # Set by `_pools` / `_jobs`: a node lost a task (it may now leave the pool); a
        # job's task completed (the job may now end).
        self.node_freed: Callable[[Node], None] = lambda node: None
        self.task_completed: Callable[[Job], None] = lambda job: None

    # -- time ---------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.timeline.now

    def sync(self) -> None:
        """Bring the state up to the clock: fire due events, then schedule."""
        self.timeline.run_until(self.clock.now(), self.dispatch)
        self.dispatch()

    def next_seq(self) -> int:
        return next(self._seq)

    # -- lookups ------------------------------------------------------------------------

    def pool(self, pool_id: str) -> Pool:
        pool = self.pools.get(key(pool_id))
        if pool is None:
            raise not_found("Pool", pool_id)
        return pool

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(key(job_id))
        if job is None:
            raise not_found("Job", job_id)
        return job

    def task(self, job_id: str, task_id: str) -> Task:
        task = self.job(job_id).tasks.get(key(task_id))
        if task is None:
            raise not_found("Task", task_id)
        return task

    def node_of(self, task: Task) -> Node | None:
        if task.node is None:
            return None
        pool = self.pools.get(key(task.node[0]))
        return None if pool is None else pool.nodes.get(task.node[1])

    def jobs_on(self, pool_id: str) -> Iterator[Job]:
        return (j for j in self.jobs.values() if j.pool_id and key(j.pool_id) == key(pool_id))

    # -- scheduling ---------------------------------------------------------------------

    def dispatch(self) -> None:
        """Start queued tasks wherever there are free slots."""
        for pool in self.pools.values():
            if pool.state != "active":
                continue
            nodes = [n for n in pool.nodes.values() if n.schedulable]
            if not any(n.used_slots() < pool.slots_per_node for n in nodes):
                continue
            jobs = [j for j in self.jobs_on(pool.id) if j.state == "active"]
            queue = sorted(
                ((j, t) for j in jobs for t in j.tasks.values() if t.state == "active"),
                key=lambda jt: (-jt[0].priority, jt[1].seq),
            )
            if not queue:
                continue  # runs on every request: a full fleet must not cost a count per job
            queued = {key(j.id): j for j, _ in queue}
            running = {k: self._running_count(j) for k, j in queued.items()}
            for job, task in queue:
                limit = job.max_parallel
                if 0 <= limit <= running[key(job.id)]:
                    continue
                node = self._pick_node(pool, nodes, task.required_slots)
                if node is None:
                    continue
                running[key(job.id)] += 1
                self.start_task(job, task, pool, node)

    @staticmethod
    def _running_count(job: Job) -> int:
        return sum(1 for t in job.tasks.values() if t.state in ("preparing", "running"))

    @staticmethod
    def _pick_node(pool: Pool, nodes: list[Node], slots: int) -> Node | None:
        fits = [n for n in nodes if pool.slots_per_node - n.used_slots() >= slots]
        if not fits:
            return None
        if pool.fill_type == "pack":
            return max(fits, key=lambda n: (n.used_slots(), n.id))
        return min(fits, key=lambda n: (n.used_slots(), n.id))

    # -- task lifecycle -----------------------------------------------------------------

    def start_task(self, job: Job, task: Task, pool: Pool, node: Node) -> None:
        now = self.now
        node.running[(key(job.id), key(task.id))] = task.required_slots
        node.set_state("running", now)
        node.total_run += 1
        moved_to(task, pool, node)
        task.node = (pool.id, node.id)
        task.ever_ran = True
        task.start_time, task.end_time = None, None
        task.exit_code = task.result = task.failure_info = None
        for name in ("stdout.txt", "stderr.txt"):
            task.files.setdefault(name, TaskFile(bytearray(), now, now))
        pull_failed = _pulls.identity_failure(pool, task.spec) or self.health.pull(task.spec)
        if pull_failed is not None:  # fails while preparing: its image cannot be pulled
            task.set_state("preparing", now)
            fail = self.timeline.after(0.0, lambda: self.complete_task(job, task, pull_failed))
            task.events.append(fail)
            return
        delay = self.preparation.delay(pool, node, task.spec, now)
        rule = first_match(self.rules, task.spec)
        if rule is not None and rule.failure_code is not None:
            # A pre-processing failure (an image pull, …): the process never starts.
            outcome = rule.outcome()
            task.set_state("preparing", now)
            ending = self.timeline.after(
                delay + rule.after, lambda: self.complete_task(job, task, outcome)
            )
            task.events.append(ending)
            return
        if delay > 0:
            task.set_state("preparing", now)
            task.events.append(self.timeline.after(delay, lambda: self._run(job, task)))
        else:
            self._run(job, task)

    def _run(self, job: Job, task: Task) -> None:
        # `startTime` is the start of `running` (absent while `preparing`).
        task.start_time = self.now
        task.set_state("running", self.now)
        limit = task.constraint_seconds("maxWallClockTime")
        if limit is not None:
            ended = task_ended(wall_clock=True)
            task.events.append(
                self.timeline.after(limit, lambda: self.complete_task(job, task, ended))
            )
        rule = first_match(self.rules, task.spec)
        if rule is not None and rule.failure_code is None:
            outcome = rule.outcome()
            task.events.append(
                self.timeline.after(rule.after, lambda: self.complete_task(job, task, outcome))
            )

    def _release(self, job: Job, task: Task) -> Node | None:
        """Take the task off its node; return the node."""
        task.cancel_events()
        node = self.node_of(task)
        if node is not None and node.running.pop((key(job.id), key(task.id)), None) is not None:
            if not node.running and node.state == "running":
                node.set_state("idle", self.now)
            return node
        return None

    def complete_task(self, job: Job, task: Task, outcome: Outcome) -> None:
        """End the current run (or, for a queued task, end it without running)."""
        now = self.now
        was_running = task.state in ("preparing", "running")
        node = self._release(job, task)
        self.write_output(task, outcome.stdout, outcome.stderr, now)
        if was_running and not outcome.succeeded and outcome.retryable:
            limit = self.max_retries(job, task)
            if limit == -1 or task.retry_count < limit:
                task.retry_count += 1
                task.last_retry = now
                task.set_state("active", now)
                self._after_node_change(node)
                return
        task.end_time = now
        task.exit_code = outcome.exit_code if was_running else None
        task.result = "success" if outcome.succeeded else "failure"
        task.failure_info = outcome.failure_info()
        task.set_state("completed", now)
        if node is not None and outcome.succeeded:
            node.total_succeeded += 1
        self._after_node_change(node)
        self.task_completed(job)

    def requeue_task(self, job: Job, task: Task, *, by_user: bool = True) -> None:
        """The task's node went away: back to the queue.

        `requeueCount` counts only requeues "as the result of a user request" (a shrink,
        a pool deletion, a node removed, rebooted or reimaged with `requeue`); a Spot
        preemption or a node failure is the service's doing and is not counted.
        """
        self._release(job, task)
        if by_user:
            task.requeue_count += 1
            task.last_requeue = self.now
        task.start_time = None
        task.set_state("active", self.now)

    def release(self, job: Job, task: Task) -> None:
        """Stop the task's run without ending it (its job is going away)."""
        self._after_node_change(self._release(job, task))

    def remove_task(self, job: Job, task: Task) -> None:
        node = self._release(job, task)
        job.tasks.pop(key(task.id), None)
        self._after_node_change(node)

    @staticmethod
    def max_retries(job: Job, task: Task) -> int:
        if "maxTaskRetryCount" in task.spec.get("constraints", {}):
            return task.max_retries
        return int(job.spec.get("constraints", {}).get("maxTaskRetryCount", 0))

    @staticmethod
    def write_output(task: Task, stdout: str, stderr: str, now: float) -> None:
        for name, text in (("stdout.txt", stdout), ("stderr.txt", stderr)):
            if text:
                entry = task.files.setdefault(name, TaskFile(bytearray(), now, now))
                entry.content.extend(text.encode())
                entry.modified = now

    def _after_node_change(self, node: Node | None) -> None:
        if node is not None:
            self.node_freed(node)

    def find_task(self, job_id: str, task_id: str) -> tuple[Job, Task]:
        return self.job(job_id), self.task(job_id, task_id)

    def snapshot(self) -> dict[str, Any]:
        """A compact view for debugging failed tests."""
        return {
            "now": self.now,
            "pools": {
                p.id: (p.state, p.allocation_state, len(p.nodes)) for p in self.pools.values()
            },
            "jobs": {j.id: (j.state, len(j.tasks)) for j in self.jobs.values()},
            "tasks": {j.id: {t.id: t.state for t in j.tasks.values()} for j in self.jobs.values()},
        }
