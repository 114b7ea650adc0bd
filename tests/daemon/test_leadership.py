"""The control loop under a lease it does not always hold: it runs passes only while it
leads, stands by (and says so) otherwise, and takes the fleet over afresh each time it
starts leading again — even if it never noticed losing the lease in between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controller.backends import LeaseRecord, LeaseState, LeaseTimings
from controller.daemon import Controller, DaemonConfig, Leadership, utc_now
from controller.testing import FakeBackend
from tests.daemon.conftest import POOL, get, simulation, until


class ScriptedLease:
    """A lease the test hands out and takes back (``holder``)."""

    fleet = "default"
    identity = "me"
    timings = LeaseTimings(duration=0.3, renew_deadline=0.2, retry_period=0.02)

    def __init__(self) -> None:
        self.holder = "other"
        self.released = False
        self.rounds = 0

    def valid(self) -> bool:
        return self.holder == self.identity

    def expires_in(self) -> float | None:
        return None

    async def round(self, *, report: tuple[str, str] = ("", ""), force: bool = False) -> LeaseState:
        self.rounds += 1
        desired, converged = report
        record = LeaseRecord(self.holder, desired=desired, converged=converged)
        return LeaseState(self.valid(), record)

    async def release(self) -> None:
        self.released = True
        self.holder = ""

    async def close(self) -> None:
        pass


@pytest.fixture
async def standby(tmp_path: Path) -> AsyncIterator[tuple[Controller, FakeBackend, ScriptedLease]]:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(POOL)
    (specs / "a.yaml").write_text(simulation("alpha", 2))
    backend = FakeBackend(clock=utc_now)
    lease = ScriptedLease()
    controller = Controller(
        DaemonConfig(specs=specs, port=0, resync=30.0), backend, leadership=Leadership(lease)
    )
    task = asyncio.create_task(controller.run())
    await until(lambda: controller.port is not None)
    yield controller, backend, lease
    controller.stop()
    await asyncio.wait_for(task, 10)


async def test_a_standby_runs_no_pass_and_says_who_leads(standby: Any) -> None:
    controller, backend, _ = standby
    await until(lambda: controller.status()["lease"]["leader"] is not None)
    await asyncio.sleep(0.2)  # rounds go by; no pass may run
    assert backend.observations == []
    code, text = await get(controller, "/readyz")
    assert (code, text.strip()) == (503, "standby: fleet 'default' is led by other")
    assert controller.status()["lease"]["role"] == "standby"
    assert 'simfleet_leader{fleet="default"} 0.0' in (await get(controller, "/metrics"))[1]


async def test_it_leads_and_publishes_the_digest_it_converged(standby: Any) -> None:
    controller, backend, lease = standby
    lease.holder = "me"
    await until(lambda: len(backend.live_tasks("alpha")) == 2)
    leadership = controller.leadership
    await until(lambda: leadership.report[0] and leadership.report[1] == leadership.report[0])
    assert (await get(controller, "/readyz"))[0] == 200


async def test_a_lease_lost_and_won_back_is_a_new_takeover(standby: Any) -> None:
    """Lost and won back between two passes: the loop starts afresh, since someone else
    may have led meanwhile."""
    controller, backend, lease = standby
    lease.holder = "me"
    await until(lambda: len(backend.live_tasks("alpha")) == 2)
    first = controller.reconciler
    assert backend.forgotten == 1
    lease.holder = "other"
    seen = lease.rounds
    await until(lambda: lease.rounds >= seen + 2)  # a round noticed it
    assert controller.status()["lease"]["role"] == "standby"
    lease.holder = "me"
    await until(lambda: controller.leadership.term == 2)
    await until(lambda: backend.forgotten == 2)
    assert controller.reconciler is not first
