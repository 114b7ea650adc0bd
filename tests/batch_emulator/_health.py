"""Node health: images that cannot be pulled, start tasks, and nodes Batch gives up on.

What makes a real node `unusable` or `starttaskfailed`, and a task fail before its
process ran, modelled on what Batch reports (BatchService.json's `BatchNodeError`,
`BatchStartTaskInfo`, `BatchTaskFailureInfo`; the codes of Batch's task failure table):

* **Images that cannot be pulled** (`break_image`): a task whose image matches fails in
  `preparing`, never running, with no exit code and `failureInfo` `{category usererror,
  code ContainerInvalidImage | ContainerInvalidRegistry | ContainerMiscError, message,
  details [{name: Message, value: <the container engine's words>}]}`, and is not
  retried (a pre-processing error). A pool that prefetches such an image
  (`containerConfiguration.containerImageNames`) gets nodes that end their boot
  `unusable`, with one node error of the same code and the image in its details.
* **Start tasks**: a pool with a `startTask` whose `waitForSuccess` is true (Batch's
  default) boots its nodes into `waitingforstarttask`, runs the start task for
  `start_task_duration` and only then makes them `idle`, with `startTaskInfo`. After
  `fail_start_tasks(pool)` the start tasks run from then on fail: the node ends in
  `starttaskfailed`, its `startTaskInfo` carrying the exit code and `FailureExitCode`.
  A pool without such a start task cannot get there, as on Batch.
* **Infrastructure faults** (`make_unusable`): nodes turn `unusable` with the given
  errors; their running tasks go back to the queue.

`recover` reboots a preempted, unusable or start-task-failed node: its errors go and it
boots again (an image still broken makes it unusable again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._behaviour import Outcome
from ._model import Node, Pool
from ._wire import iso

#: The task failure codes of an image pull, with the message Batch gives each.
PULL_FAILURES = {
    "ContainerInvalidImage": "The specified container image is invalid",
    "ContainerInvalidRegistry": "The specified container registry is invalid",
    "ContainerMiscError": "An unknown error occurred while starting the task's container",
}
PREFETCH_MESSAGE = "One or more container images specified for the pool could not be pulled"
START_TASK_FAILURE = {
    "category": "usererror",
    "code": "FailureExitCode",
    "message": "The task process exited with an unexpected exit code",
}


DAEMON = "Error response from daemon: "


def engine_words(code: str, image: str) -> str:
    """What the container engine says when pulling ``image`` fails in the way of ``code``."""
    registry = image.split("/", 1)[0] if "/" in image else "docker.io"
    if code == "ContainerInvalidRegistry":
        return f'{DAEMON}Get "https://{registry}/v2/": unauthorized: authentication required'
    if code == "ContainerMiscError":
        return f"{DAEMON}failed to register layer: no space left on device ({image})"
    return f"{DAEMON}manifest for {image} not found: manifest unknown: manifest unknown"


@dataclass(frozen=True)
class BrokenImage:
    """Images whose name contains ``image_contains`` cannot be pulled, failing as ``code``."""

    image_contains: str
    code: str = "ContainerInvalidImage"
    detail: str = ""  # the engine's words; "" for typical ones (`engine_words`)

    def __post_init__(self) -> None:
        if self.code not in PULL_FAILURES:
            raise ValueError(f"code must be one of {sorted(PULL_FAILURES)}, not {self.code!r}")

    def words(self, image: str) -> str:
        return self.detail or engine_words(self.code, image)

    def task_outcome(self, image: str) -> Outcome:
        """How a task with this image ends: before its process ran, not retried."""
        return Outcome(
            exit_code=None,
            failure_code=self.code,
            failure_message=PULL_FAILURES[self.code],
            failure_details=(("Message", self.words(image)),),
            retryable=False,
        )

    def node_error(self, image: str) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": PREFETCH_MESSAGE,
            "errorDetails": [
                {"name": "ImageName", "value": image},
                {"name": "Message", "value": self.words(image)},
            ],
        }


def prefetched(pool: Pool) -> list[str]:
    vm = pool.spec.get("virtualMachineConfiguration", {})
    return [str(i) for i in vm.get("containerConfiguration", {}).get("containerImageNames", [])]


def start_task(pool: Pool) -> dict[str, Any] | None:
    """The pool's start task when nodes wait for it (``waitForSuccess``, true by default)."""
    task = pool.spec.get("startTask")
    if not isinstance(task, dict) or not task.get("waitForSuccess", True):
        return None
    return task


class NodeHealth:
    """Decides how a booted node ends up: idle, unusable, or after its start task."""

    def __init__(
        self,
        now: Callable[[], float],
        after: Callable[[float, Callable[[], None]], Any],
        start_task_duration: float,
    ) -> None:
        self._now = now
        self._after = after
        self._duration = start_task_duration
        self.broken_images: list[BrokenImage] = []
        self.failing_start_tasks: dict[str, int] = {}  # pool key → exit code

    def pull_failure(self, image: str) -> BrokenImage | None:
        return next((b for b in self.broken_images if b.image_contains in image), None)

    def pull(self, task_spec: dict[str, Any]) -> Outcome | None:
        """How pulling a task's image ends when it cannot be pulled; None when it can."""
        image = str(task_spec.get("containerSettings", {}).get("imageName", ""))
        broken = self.pull_failure(image) if image else None
        return broken.task_outcome(image) if broken is not None else None

    def booted(self, pool: Pool, node: Node, usable: Callable[[Node], None]) -> None:
        """The node's VM is up: pull the pool's images, run its start task, then ``usable``."""
        node.errors = [
            broken.node_error(image)
            for image in prefetched(pool)
            if (broken := self.pull_failure(image)) is not None
        ]
        if node.errors:
            node.set_state("unusable", self._now())
            return
        task = start_task(pool)
        if task is None:
            usable(node)
            return
        started = self._now()
        node.start_task_info = {"state": "running", "startTime": iso(started), "retryCount": 0}
        node.set_state("waitingforstarttask", started)
        node.event = self._after(self._duration, lambda: self._start_task_ended(pool, node, usable))

    def _start_task_ended(self, pool: Pool, node: Node, usable: Callable[[Node], None]) -> None:
        node.event = None
        now = self._now()
        exit_code = self.failing_start_tasks.get(pool.id.lower(), 0)
        info = dict(node.start_task_info or {})
        info.update(state="completed", endTime=iso(now), exitCode=exit_code)
        if exit_code:
            info.update(result="failure", failureInfo=dict(START_TASK_FAILURE))
            node.start_task_info = info
            node.set_state("starttaskfailed", now)
            return
        info["result"] = "success"
        node.start_task_info = info
        usable(node)
