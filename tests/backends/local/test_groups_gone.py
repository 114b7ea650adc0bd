"""A SIGKILLed process group is waited for until it is really gone (regression: under
load ``close(stop_simulators=True)`` returned while a killed simulator was still in the
process table, and ``test_closing_with_stop_simulators_leaves_no_process`` failed)."""

from __future__ import annotations

import os
import signal
import subprocess

from controller.backends.local._processes import wait_groups_gone

from .conftest import group_members


def test_a_group_is_waited_for_until_no_live_member_is_left() -> None:
    child = subprocess.Popen(  # its own group; ignores SIGTERM, ends by itself in 0.5 s
        ["sh", "-c", "trap '' TERM; echo ready; sleep 0.5"],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"  # the trap is set
        group = os.getpgid(child.pid)
        os.killpg(group, signal.SIGTERM)  # ignored: still alive
        assert wait_groups_gone({group}, within=0.05) == {group}  # gave up: still there
        assert wait_groups_gone({group}, within=30) == set()
        assert group_members(group) == []
    finally:
        child.kill()
        child.wait()


def test_groups_already_gone_cost_one_look() -> None:
    assert wait_groups_gone({2**22 + 12345}, within=30) == set()
