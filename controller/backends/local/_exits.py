"""What an ended simulator's raw facts mean: the :class:`ExitInfo` users see in status.

The rules, in order:

- simfleet was ending it because of ``maxLifetime`` → FAILED with Batch's failure code
  ``MaxWallClockTimeExceeded`` (what Batch reports for ``maxWallClockTime``);
- simfleet was stopping it (StopTask, job or pool deletion, shutdown) → STOPPED, whatever
  the code (a simulator that handles SIGTERM and exits 0 was still stopped);
- the runtime failed before the simulator ran (``docker run``'s 125: no engine, an image
  it cannot create a container of) → FAILED, "the container did not start: " and the last
  line of stderr, where the docker CLI says why (the engine going away shows in status);
- exit code 0 → SUCCEEDED; another code → FAILED, "exited with code 3", or for
  ``128 + N`` "killed by signal N (SIGNAME)" (the shell's convention: 137 is SIGKILL);
- no code at all → LOST.

Pure: no I/O, no clock. The caller reads the stderr tail and passes it in.
"""

from __future__ import annotations

import signal

from controller.backends.local._records import StopIntent
from controller.backends.local._runtime import Ending
from controller.planner import ExitInfo, ExitReason

MAX_WALL_CLOCK = "MaxWallClockTimeExceeded"
LOST_MESSAGE = "the process vanished while the controller was down"


def describe(
    ending: Ending, intent: StopIntent | None, *, killed: bool, stderr_tail: str = ""
) -> ExitInfo:
    """Turn the facts about an ended simulator into its exit information.

    Args:
        ending: the exit code (or the wrapper's killing signal) as the runtime found it.
        intent: why simfleet was ending it, or None if it ended by itself.
        killed: simfleet sent SIGKILL after the grace period.
        stderr_tail: the last lines of its stderr.

    Returns:
        The exit information for status and back-off decisions.
    """
    code = ending.code
    if code is None and ending.signal is not None:
        code = 128 + ending.signal
    if code is None and killed:
        code = 128 + signal.SIGKILL
    if intent is StopIntent.LIFETIME:
        return ExitInfo(
            ExitReason.FAILED,
            code,
            MAX_WALL_CLOCK,
            "ran longer than its maxLifetime and was ended",
            stderr_tail,
        )
    if intent is not None:
        how = " (killed: it did not exit within the grace period)" if killed else ""
        return ExitInfo(
            ExitReason.STOPPED, code, message=f"stopped by simfleet{how}", stderr_tail=stderr_tail
        )
    if code is None:
        return ExitInfo(
            ExitReason.LOST,
            message="the process vanished without an exit code",
            stderr_tail=stderr_tail,
        )
    if ending.runtime_failed:
        return ExitInfo(
            ExitReason.FAILED, code, message=runtime_failure(stderr_tail), stderr_tail=stderr_tail
        )
    if code == 0:
        return ExitInfo(
            ExitReason.SUCCEEDED, 0, message="exited with code 0", stderr_tail=stderr_tail
        )
    return ExitInfo(ExitReason.FAILED, code, message=code_message(code), stderr_tail=stderr_tail)


def runtime_failure(stderr_tail: str) -> str:
    """ "the container did not start: <why>", from the docker CLI's stderr: its last
    ``docker: …`` line (a hint such as "Run 'docker run --help'" may follow it), else the
    last line."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    said = [line.removeprefix("docker: ") for line in lines if line.startswith("docker: ")]
    why = (said or lines or ["docker run failed without a word"])[-1]
    return f"the container did not start: {why}"


def code_message(code: int) -> str:
    """ "exited with code 3", or "killed by signal 9 (SIGKILL)" for 137."""
    number = code - 128
    try:
        name = signal.Signals(number).name if number > 0 else None
    except ValueError:
        name = None
    if name is None:
        return f"exited with code {code}"
    return f"killed by signal {number} ({name})"
