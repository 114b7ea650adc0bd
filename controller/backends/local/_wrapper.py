"""The ``/bin/sh`` wrapper every simulator runs under, and how to recognise it again.

Why a wrapper: a controller killed with ``kill -9`` leaves its simulators running, and the
next controller is not their parent, so it can never ``wait()`` for their exit code. The
wrapper (:data:`SCRIPT`) leads a new session, waits for the simulator and writes its exit
code to ``exit`` in the task folder; a signal N shows as ``128 + N``. (One short write:
the file is only read once the wrapper is gone, and a wrapper killed while writing leaves
no code, like one killed before.) It traps HUP/INT/TERM, so a SIGTERM sent to the whole
group stops the simulator but not the bookkeeping; only SIGKILL ends the wrapper before it
writes. The simulator itself is started by a subshell of the wrapper that writes its own
pid to ``pid`` (whole or not yet) and then ``exec``\\ s the command, so users see (and may
``kill``) the real pid. The subshell reads its pid from ``/proc/self/stat`` (its ``$$``
is the wrapper's): a second ``/bin/sh`` would cost one more program load per simulator,
a third of what starting 500 simulators costs the machine.

Output: the simulator writes into two pipes, and a small loop per stream in the wrapper's
own group (a subshell of the wrapper that ignores HUP/INT/TERM) copies each into
``stdout.txt`` / ``stderr.txt`` with GNU ``head -c``, which reads exactly the bytes it is
asked for (under ``stdbuf -o0``, so each piece is written as soon as it is read). When a
file holds ``max_bytes``, the next byte first renames it to ``stdout.txt.<offset of its
first byte in the stream>`` and the oldest rotated file beyond ``max_files`` is deleted;
``stdout.txt.next`` holds that deciding byte for a moment (and stays behind, empty). The
writers are not the controller: a dead controller never blocks a simulator on a full
pipe. A writer that cannot write (folder gone, disk full) keeps reading and drops that
part of the output rather than stop reading. After the simulator exits, the wrapper waits
for its writers to drain the pipes (at most a second, timed by a ``sleep`` it then kills,
in case a leftover child still holds them), so the exit is seen with its last output.

Recognising a wrapper: ``$0`` is :data:`MARKER` and the first arguments are the task
folder and the pool, so the process table alone tells which task of which pool a live
simulator belongs to even when the state file is gone. Subshells of the wrapper carry the
same command line, but only the wrapper leads its process group. Every process of a task
also inherits :data:`TASK_VARIABLE` (the task folder), which finds descendants that left
the group (``setsid``) after the simulator ended.

This module only describes the wrapper and reads the files it writes.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from controller.backends.local._runtime import OutputLimits

SHELL = "/bin/sh"
#: ``$0`` of every wrapper: marks our wrappers in ``ps`` and in ``/proc/<pid>/cmdline``.
MARKER = "simfleet-task"
#: Inherited by every process of a task: ``SIMFLEET_TASK_DIR=<task folder>``.
TASK_VARIABLE = "SIMFLEET_TASK_DIR"
#: Seconds the wrapper waits for its output writers once the simulator has exited.
DRAIN_SECONDS = 1
#: The output pipes' read ends, as the wrapper gets them (1 and 2 are their write ends;
#: 3 is left to :data:`~._runtime.PASSED_FD`, which reaches the simulator untouched).
OUT_READ_FD = 7
ERR_READ_FD = 8
#: Arguments: task folder, pool, working directory, max bytes, max files, ``head``,
#: ``stdbuf`` (or ""), then the argv. Descriptors: see :data:`OUT_READ_FD`.
SCRIPT = f"""\
d=$1 w=$3 m=$4 k=$5 h=$6 u=$7; shift 7
trap : HUP INT TERM
c() {{ if [ -n "$u" ]; then "$u" -o0 "$h" -c "$@"; else "$h" -c "$@"; fi; }}
r() {{
  f=$d/$1 s=0
  while :; do
    if "$h" -c 1 >"$f.next"; then
      [ -s "$f.next" ] || break
      if [ -e "$f" ] && command -p mv -f "$f" "$f.$s"; then
        s=$((s + m))
        [ "$s" -lt "$((k * m))" ] || command -p rm -f "$f.$((s - k * m))"
      fi
      command -p mv -f "$f.next" "$f"
      c "$((m - 1))" >>"$f"
    elif [ "$("$h" -c "$m" | command -p wc -c)" -lt "$m" ]; then
      break
    fi
  done
}}
exec 5>&1 6>&2
(trap '' HUP INT TERM; exec <&7 3<&- 5>&- 6>&- 7<&- 8<&- >/dev/null 2>&1; r stdout.txt) & o=$!
(trap '' HUP INT TERM; exec <&8 3<&- 5>&- 6>&- 7<&- 8<&- >/dev/null 2>&1; r stderr.txt) & e=$!
exec 7<&- 8<&- >/dev/null 2>&1
cd -- "$w" 2>&6 &&
  (read -r p _ </proc/self/stat; printf %s "$p" >"$d/pid"; exec "$@") >&5 2>&6 5>&- 6>&-
c=$?
exec 5>&- 6>&-
printf %s "$c" >"$d/exit"
sleep {DRAIN_SECONDS} & t=$!
trap : CHLD
while kill -0 $t && {{ kill -0 $o || kill -0 $e; }}; do wait $o $e; done 2>/dev/null
kill $t
"""
#: SHELL, -c, SCRIPT, MARKER, task folder, pool, cwd, max bytes, max files, head, stdbuf
_FIXED = 11

EXIT_FILE = "exit"
PID_FILE = "pid"


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the utilities the output writers run (the simulator's own
    ``PATH`` may not hold them). ``stdbuf`` makes ``head`` write each piece as it reads it;
    without it, output shows up in 4 KiB steps."""

    head: str
    stdbuf: str

    @classmethod
    def find(cls) -> Tools | None:
        """The tools on the controller's ``PATH`` (or the usual places); None without
        ``head``."""
        path = os.pathsep.join([os.environ.get("PATH", ""), os.defpath, "/usr/bin:/bin"])
        head = shutil.which("head", path=path)
        return None if head is None else cls(head, shutil.which("stdbuf", path=path) or "")


def argv(
    task_dir: Path,
    pool: str,
    cwd: Path,
    output: OutputLimits,
    tools: Tools,
    command: tuple[str, ...],
) -> list[str]:
    """The wrapper's full argv for one simulator."""
    return [
        SHELL,
        "-c",
        SCRIPT,
        MARKER,
        str(task_dir),
        pool,
        str(cwd),
        str(output.max_bytes),
        str(output.max_files),
        tools.head,
        tools.stdbuf,
        *command,
    ]


def parse(args: list[bytes]) -> tuple[Path, str] | None:
    """(task folder, pool) if ``args`` is a wrapper's argv, else None.

    A wrapper of another simfleet version (another script) still counts, with its pool
    unknown (""): adopting it is better than starting its slot twice.
    """
    if len(args) < 5 or args[:2] != [SHELL.encode(), b"-c"] or args[3] != MARKER.encode():
        return None
    task_dir = Path(args[4].decode(errors="surrogateescape"))
    ours = args[2] == SCRIPT.encode() and len(args) >= _FIXED
    return task_dir, args[5].decode(errors="replace") if ours else ""


def read_exit_file(task_dir: Path) -> tuple[int | None, datetime | None]:
    """The exit code the wrapper recorded and when, or ``(None, None)``."""
    path = task_dir / EXIT_FILE
    try:
        text = path.read_text()
        mtime = path.stat().st_mtime
    except (OSError, UnicodeDecodeError):
        return None, None
    try:
        return int(text.strip()), datetime.fromtimestamp(mtime, UTC)
    except ValueError:
        return None, None


def read_pid_file(task_dir: Path) -> int | None:
    """The pid the inner ``sh`` wrote just before it became the simulator."""
    try:
        return int((task_dir / PID_FILE).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
