"""The state file: every record survives a save and load; a broken file is reported."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from controller.backends import PermanentBackendError
from controller.backends.local._records import (
    JobRecord,
    SecretRef,
    StopIntent,
    TaskPhase,
    TemplateRecord,
)
from controller.backends.local._store import Store
from controller.planner import ExitInfo, ExitReason
from controller.spec import NodeImage, Registry

from .test_units import T0, pool, record


class TestStore:
    def test_records_survive_a_save_and_a_load(self, tmp_path: Path) -> None:
        store = Store(tmp_path)
        registry = Registry(server="acr.example", username="u", password_from_env="ACR_PASSWORD")
        big = pool("p", 2, 3)
        store.pools["p"] = replace(
            big, config=replace(big.config, node_image=NodeImage(sku="x"), registries=(registry,))
        )
        store.jobs["j"] = JobRecord("j", "p", T0, deleting=True)
        template = TemplateRecord(
            "img", ("python3", "-c", "pass"), (("A", "1"),), (SecretRef("KEY", "SRC"),), 60.0
        )
        done = record(
            "j",
            "t1",
            store.next_seq(),
            TaskPhase.EXITED,
            template=template,
            workdir="/tmp",
            pid=42,
            start_ticks=7,
            started_at=T0,
            exited_at=T0,
            exit=ExitInfo(ExitReason.FAILED, 3, "Code", "exited with code 3", "boom"),
        )
        live = record("j", "t2", store.next_seq(), TaskPhase.RUNNING, stopping=StopIntent.LIFETIME)
        store.tasks = {done.ref: done, live.ref: live}
        store.save()

        loaded = Store(tmp_path)
        loaded.load()
        assert loaded.pools == store.pools
        assert loaded.jobs == store.jobs
        assert list(loaded.tasks.values()) == [done, live]
        assert loaded.next_seq() == 3

    def test_a_missing_file_is_an_empty_state(self, tmp_path: Path) -> None:
        store = Store(tmp_path)
        store.load()
        assert (store.pools, store.jobs, store.tasks) == ({}, {}, {})

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("{not json", id="not-json"),
            pytest.param('{"version": 99}', id="unknown-version"),
            pytest.param('{"version": 1, "pools": []}', id="missing-keys"),
        ],
    )
    def test_an_unreadable_file_is_state_corrupt(self, tmp_path: Path, text: str) -> None:
        (tmp_path / "local").mkdir()
        (tmp_path / "local" / "state.json").write_text(text)
        with pytest.raises(PermanentBackendError) as error:
            Store(tmp_path).load()
        assert error.value.code == "StateCorrupt"

    def test_saving_leaves_no_temporary_file(self, tmp_path: Path) -> None:
        store = Store(tmp_path)
        store.save()
        assert sorted(p.name for p in (tmp_path / "local").iterdir()) == ["state.json"]
