"""The lease of a local state directory: an flock, so the kernel decides — a holder that
dies (even by ``kill -9``) lets the next controller in at once."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from controller.backends import LeaseTimings, PermanentBackendError
from controller.backends.local import LocalBackend, LocalLease
from controller.backends.local._lease import RECORD_FILE

TIMINGS = LeaseTimings()


def lease(state_dir: Path, identity: str) -> LocalLease:
    return LocalLease(state_dir, fleet="default", identity=identity, timings=TIMINGS)


async def test_one_holder_at_a_time_and_the_standby_sees_who(tmp_path: Path) -> None:
    a, b = lease(tmp_path, "a"), lease(tmp_path, "b")
    try:
        assert (await a.round()).leading
        state = await b.round()
        assert not state.leading
        assert state.record is not None
        assert state.record.holder == "a"
        assert a.valid()
        assert not b.valid()
    finally:
        await a.close()
        await b.close()


async def test_a_release_lets_the_next_one_in_and_counts_the_transition(tmp_path: Path) -> None:
    a, b = lease(tmp_path, "a"), lease(tmp_path, "b")
    try:
        await a.round()
        await b.round()
        await a.release()
        state = await b.round()
        assert state.leading
        assert state.record is not None
        assert (state.record.holder, state.record.transitions) == ("b", 1)
    finally:
        await a.close()
        await b.close()


async def test_the_published_digests_reach_the_record_a_standby_reads(tmp_path: Path) -> None:
    a, b = lease(tmp_path, "a"), lease(tmp_path, "b")
    try:
        await a.round(report=("d1", ""))
        await a.round(report=("d1", "d1"))
        state = await b.round()
        assert state.record is not None
        assert (state.record.desired, state.record.converged) == ("d1", "d1")
        assert json.loads((tmp_path / RECORD_FILE).read_text())["simfleet-lease-holder"] == "a"
    finally:
        await a.close()
        await b.close()


async def test_a_live_holder_cannot_be_forced_out_and_the_error_says_what_to_do(
    tmp_path: Path,
) -> None:
    a, b = lease(tmp_path, "a"), lease(tmp_path, "b")
    try:
        await a.round()
        with pytest.raises(PermanentBackendError, match=r"while its holder \(a\) runs: stop it"):
            await b.round(force=True)
    finally:
        await a.close()
        await b.close()


def test_a_holder_killed_outright_lets_the_next_one_in_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import asyncio, sys, time
                from pathlib import Path
                from controller.backends import LeaseTimings
                from controller.backends.local import LocalBackend, LocalLease
                lease = LocalLease(Path({str(tmp_path)!r}), fleet="default", identity="dead",
                                   timings=LeaseTimings())
                assert asyncio.run(lease.round()).leading
                print("held", flush=True)
                time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        b = lease(tmp_path, "b")
        assert not asyncio.run(b.round()).leading
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        state = asyncio.run(b.round())
        assert state.leading
        assert state.record is not None
        assert state.record.transitions == 1
        asyncio.run(b.close())
    finally:
        holder.kill()
        holder.wait(10)


async def test_a_backend_refused_its_state_directory_can_open_once_it_is_free(
    tmp_path: Path,
) -> None:
    """A standby's take-over opens the backend while the last leader may still be closing
    it: the refusal must leave the backend able to open at the next try."""
    first = LocalBackend(tmp_path)
    await first.open()
    second = LocalBackend(tmp_path)
    try:
        with pytest.raises(PermanentBackendError) as refused:
            await second.open()
        assert refused.value.code == "StateDirLocked"
        await first.close()
        await second.open()
        assert (await second.observe()).jobs == {}
    finally:
        await first.close()
        await second.close()
