"""How emulated tasks end: explicit outcomes and per-image rules.

The emulator runs no containers. A running task stays `running` until something decides
its ending:

* a test calls `emulator.finish_task(job, task, exit_code=..., stdout=...)`, or
* a `TaskRule` matched the task when it started: "tasks whose image contains `crash` exit
  1 after 30 s", "image `…:broken` fails with `ContainerInvalidImage`" (for Batch's own
  words and details, `BatchEmulator.break_image`: see `_health`), or
* the task's `constraints.maxWallClockTime` runs out, or someone terminates it.

Rules are checked in order, first match wins; a task matching no rule runs until told.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# failureInfo for the ways a task can end badly (codes from Batch's task error table).
EXIT_CODE_FAILURE = {
    "category": "usererror",
    "code": "FailureExitCode",
    "message": "The task process exited with an unexpected exit code",
}
TASK_ENDED_MESSAGE = "Task Was Ended by User Request"
WALL_CLOCK_DETAIL = "The maximum execution time configured on the task was exceeded"
# What a Linux process killed by SIGKILL reports; used when Batch kills a running task.
KILLED_EXIT_CODE = 137


@dataclass(frozen=True)
class Outcome:
    """How one run of a task ends."""

    exit_code: int | None = 0
    failure_code: str | None = None  # set: the task failed before/around its process
    failure_category: str = "usererror"
    failure_message: str = ""
    failure_details: tuple[tuple[str, str], ...] = ()
    stdout: str = ""
    stderr: str = ""
    retryable: bool = True  # Batch retries non-zero exits, not pre-processing failures

    @property
    def succeeded(self) -> bool:
        return self.failure_code is None and self.exit_code == 0

    def failure_info(self) -> dict[str, Any] | None:
        if self.succeeded:
            return None
        if self.failure_code is None:
            return dict(EXIT_CODE_FAILURE)
        info: dict[str, Any] = {
            "category": self.failure_category,
            "code": self.failure_code,
            "message": self.failure_message or self.failure_code,
        }
        if self.failure_details:
            info["details"] = [{"name": k, "value": v} for k, v in self.failure_details]
        return info


def task_ended(*, wall_clock: bool = False, ran: bool = True) -> Outcome:
    """Batch ended the task: user/job termination or maxWallClockTime."""
    details = (("Message", WALL_CLOCK_DETAIL),) if wall_clock else ()
    return Outcome(
        exit_code=KILLED_EXIT_CODE if ran else None,
        failure_code="TaskEnded",
        failure_message=TASK_ENDED_MESSAGE,
        failure_details=details,
        retryable=False,
    )


@dataclass(frozen=True)
class TaskRule:
    """Decide a task's ending from what it runs. Unset match fields match anything."""

    image_contains: str | None = None
    command_contains: str | None = None
    task_id_prefix: str | None = None
    after: float = 0.0  # emulator seconds of running before the ending
    exit_code: int | None = 0
    failure_code: str | None = None  # e.g. "ContainerInvalidImage": no exit code
    failure_message: str = ""
    failure_category: str = "usererror"
    stdout: str = ""
    stderr: str = ""
    details: tuple[tuple[str, str], ...] = field(default=())

    def matches(self, task_spec: dict[str, Any]) -> bool:
        image = str(task_spec.get("containerSettings", {}).get("imageName", ""))
        if self.image_contains is not None and self.image_contains not in image:
            return False
        command = str(task_spec.get("commandLine", ""))
        if self.command_contains is not None and self.command_contains not in command:
            return False
        task_id = str(task_spec.get("id", ""))
        return self.task_id_prefix is None or task_id.startswith(self.task_id_prefix)

    def outcome(self) -> Outcome:
        if self.failure_code is not None:
            return Outcome(
                exit_code=None,
                failure_code=self.failure_code,
                failure_category=self.failure_category,
                failure_message=self.failure_message,
                failure_details=self.details,
                stdout=self.stdout,
                stderr=self.stderr,
                retryable=False,
            )
        return Outcome(exit_code=self.exit_code, stdout=self.stdout, stderr=self.stderr)


def first_match(rules: list[TaskRule], task_spec: dict[str, Any]) -> TaskRule | None:
    return next((rule for rule in rules if rule.matches(task_spec)), None)
