"""A local state directory belongs to one fleet: recorded when first used, ``default`` for
a directory made before fleets existed, and refused (read-only too) to any other fleet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.backends import PermanentBackendError
from controller.backends.local import LocalBackend

from .conftest import BackendFactory, pool_and_job


def record(state_dir: Path) -> str:
    return (state_dir / "local" / "fleet").read_text()


async def refusal(state_dir: Path, fleet: str, *, read_only: bool) -> PermanentBackendError:
    backend = LocalBackend(state_dir, fleet=fleet, read_only=read_only)
    with pytest.raises(PermanentBackendError) as caught:
        await backend.open()
    return caught.value


async def test_the_first_controller_records_its_fleet(
    state_dir: Path, open_backend: BackendFactory
) -> None:
    backend = await open_backend(fleet="blue")
    assert record(state_dir) == "blue\n"
    await backend.close()
    again = await open_backend(fleet="blue")  # its own fleet opens it again
    await pool_and_job(again)
    assert record(state_dir) == "blue\n"


@pytest.mark.parametrize("read_only", [False, True], ids=["controller", "read-only"])
async def test_another_fleet_is_refused_with_what_to_do(
    state_dir: Path, open_backend: BackendFactory, read_only: bool
) -> None:
    first = await open_backend(fleet="blue")
    await first.close()
    error = await refusal(state_dir, "green", read_only=read_only)
    assert error.code == "FleetMismatch"
    message = str(error)
    assert "\n" not in message
    assert "belongs to fleet 'blue', not 'green'" in message
    assert "--fleet blue" in message
    assert "--state-dir" in message
    assert record(state_dir) == "blue\n"


async def test_a_directory_of_the_version_before_fleets_belongs_to_default(
    state_dir: Path, open_backend: BackendFactory
) -> None:
    """The state today's version leaves: ``state.json`` and no record."""
    local = state_dir / "local"
    local.mkdir(parents=True)
    (local / "state.json").write_text(
        json.dumps({"version": 1, "seq": 0, "pools": [], "jobs": [], "tasks": []})
    )
    error = await refusal(state_dir, "blue", read_only=True)
    assert "belongs to fleet 'default'" in str(error)
    error = await refusal(state_dir, "blue", read_only=False)
    assert error.code == "FleetMismatch"
    assert not (local / "fleet").exists()
    await open_backend()  # the default fleet adopts it, and records it
    assert record(state_dir) == "default\n"


async def test_a_fresh_directory_may_be_read_by_any_fleet_and_records_nothing(
    state_dir: Path,
) -> None:
    reader = LocalBackend(state_dir, fleet="blue", read_only=True)
    await reader.open()
    assert (await reader.observe()).jobs == {}
    await reader.close()
    assert not (state_dir / "local" / "fleet").exists()


async def test_a_record_that_is_not_a_fleet_name_is_refused(state_dir: Path) -> None:
    (state_dir / "local").mkdir(parents=True)
    (state_dir / "local" / "fleet").write_text("Not A Fleet\n")
    error = await refusal(state_dir, "default", read_only=True)
    assert error.code == "StateDirUnusable"
    assert "does not hold a fleet name" in str(error)


def test_a_bad_fleet_name_is_refused_before_anything_is_touched(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot name a fleet"):
        LocalBackend(tmp_path / "state", fleet="Blue")
    assert not (tmp_path / "state").exists()
