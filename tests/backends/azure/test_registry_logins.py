"""A registry password rotation on Batch (issue 10, item 12), through the real SDK: the pool
records a keyed digest of its passwords (never a password), a rotation is noticed and
recorded with one metadata update, new simulators pull with their own login carrying the
new password, and no running simulator is stopped for it."""

from __future__ import annotations

from pathlib import Path

from controller.backends.azure import AzureBackend
from controller.planner import Desired
from controller.reconcile import desired_state, run_pass
from controller.spec import build_catalog, load_directory
from tests.batch_emulator._emulator import BatchEmulator

from .conftest import clock_of

SPECS = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {name: sims}
spec:
  vmSize: standard_d4s_v5
  taskSlotsPerNode: 4
  nodes: {dedicated: 1}
  registries:
    - {server: "https://myacr.azurecr.io", username: puller, passwordFromEnv: ACR_PASSWORD}
---
apiVersion: simfleet/v1
kind: Simulation
metadata: {name: cartpole}
spec:
  pool: sims
  simulators: 2
  image: myacr.azurecr.io/cartpole:1.0
  command: sleep 1000
"""
KEY = b"r" * 32


def wanted(specs: Path, password: str) -> Desired:
    catalog = build_catalog(load_directory(specs))
    desired, errors = desired_state(catalog, {"ACR_PASSWORD": password}, revision_key=KEY)
    assert errors == ()
    return desired


def metadata(emulator: BatchEmulator) -> dict[str, str]:
    return {item["name"]: item["value"] for item in emulator.pool("sims")["metadata"]}


async def test_a_rotated_registry_password_is_noticed_recorded_and_used_by_new_simulators(
    tmp_path: Path, backend: AzureBackend, emulator: BatchEmulator
) -> None:
    (tmp_path / "fleet.yaml").write_text(SPECS)
    first = wanted(tmp_path, "password-one")
    for _ in range(6):
        await run_pass(first, backend, clock_of(emulator))
        emulator.advance(5)
    recorded = metadata(emulator)["simfleet-registry-login"]
    assert recorded == first.login_digests["sims"]
    assert "password-one" not in str(emulator.pool("sims")["metadata"])
    running = (await backend.observe()).jobs["cartpole"].tasks
    assert len(running) == 2
    login = emulator.task("cartpole", running[0].id)["containerSettings"]["registry"]
    assert (login["registryServer"], login["username"]) == ("https://myacr.azurecr.io", "puller")

    second = wanted(tmp_path, "password-two")
    backend.requests.counts.clear()
    result = await run_pass(second, backend, clock_of(emulator))
    (change,) = result.plan.changes  # what plan and the log say; status shows it recorded
    assert str(change) == (
        "update pool sims: a registry password changed: new simulators pull with the new one"
    )
    assert [a.describe() for a in result.plan.actions] == [
        "record the new registry password of pool sims"
    ]
    writes = {op for (op, _), n in backend.request_counts().items() if not op.startswith("GET")}
    assert writes == {"PATCH /pools/{id}"}  # the metadata, nothing else: nobody is stopped
    assert metadata(emulator)["simfleet-registry-login"] == second.login_digests["sims"]
    assert metadata(emulator)["simfleet-registry-login"] != recorded

    # a simulator started from now on pulls with the new password
    emulator.finish_task("cartpole", running[0].id, exit_code=1)
    for _ in range(4):
        emulator.advance(15)
        again = await run_pass(second, backend, clock_of(emulator))
    tasks = (await backend.observe()).jobs["cartpole"].tasks
    restarted = [t for t in tasks if t.attempt > 0]
    assert restarted, again.status
    body = emulator.task("cartpole", restarted[0].id)["containerSettings"]["registry"]
    assert body["password"] == "password-two"
    later = await run_pass(second, backend, clock_of(emulator))
    assert later.plan.changes == ()  # said once, then recorded
