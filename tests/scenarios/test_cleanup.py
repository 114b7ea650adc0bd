"""The scenario fixtures' clean-up kills what a test left running, and nothing else.

A daemon a test starts shares the test run's process group; killing the group of every
stray process would kill the test run with it, and CI's shell above it (a scenario that
failed with its first daemon still running once ended a whole CI run that way, with no
summary at all).
"""

from __future__ import annotations

import subprocess
import sys
import uuid

from tests.scenarios.conftest import REPO

#: Starts a process with the marker in its own group, as a test starts a daemon, then
#: cleans up as a fixture does and says whether it is still alive to tell.
PROBE = """
import os, subprocess, sys, time
from tests.scenarios.conftest import kill_groups, processes_with
marker = sys.argv[1]
daemon = subprocess.Popen(["sleep", "60"], env={**os.environ, "SCENARIO_MARKER": marker})
while not processes_with(marker):
    time.sleep(0.02)
kill_groups(processes_with(marker))
print("survived; the stray ended with", daemon.wait(10), flush=True)
"""


def test_cleanup_kills_a_stray_in_its_own_group_but_never_that_group() -> None:
    marker = f"cleanup-{uuid.uuid4().hex}"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, marker],
        cwd=REPO,
        start_new_session=True,  # were the group killed, only the probe's would be
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "survived; the stray ended with -9", (
        done.returncode,
        done.stderr,
    )
