"""The state file: every record survives a save and load; a broken file is reported."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest
from structlog.testing import capture_logs

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
        "raw",
        [
            pytest.param(b"{not json", id="not-json"),
            pytest.param(b'{"version": 1, "seq": 0, "pools": [], "jobs": [], "tasks": [', id="cut"),
            pytest.param(b'{"version": 99}', id="unknown-version"),
            pytest.param(b'{"version": 1, "pools": []}', id="missing-keys"),
            pytest.param(b"[]", id="a-list"),
            pytest.param(b"null", id="null"),
            pytest.param(b'{"version": 1, "pools": {}, "jobs": [], "tasks": []}', id="wrong-type"),
            pytest.param(
                b'{"version": 1, "pools": [], "jobs": [], "tasks": []}\xff', id="not-utf8"
            ),
        ],
    )
    def test_an_unreadable_file_is_set_aside_with_one_logged_error(
        self, tmp_path: Path, raw: bytes
    ) -> None:
        (tmp_path / "local").mkdir()
        (tmp_path / "local" / "state.json").write_bytes(raw)
        store = Store(tmp_path)
        with capture_logs() as logs:
            store.load()
        assert (store.pools, store.jobs, store.tasks) == ({}, {}, {})
        assert [e["event"] for e in logs] == ["state_file_unreadable"]
        assert logs[0]["log_level"] == "error"
        assert "exc_info" not in logs[0]
        assert (tmp_path / "local" / "state.json.corrupt").read_bytes() == raw
        assert not (tmp_path / "local" / "state.json").exists()

    def test_a_read_only_store_leaves_an_unreadable_file_where_it_is(self, tmp_path: Path) -> None:
        (tmp_path / "local").mkdir()
        (tmp_path / "local" / "state.json").write_bytes(b"[]")
        Store(tmp_path, read_only=True).load()
        assert (tmp_path / "local" / "state.json").read_bytes() == b"[]"

    @pytest.mark.parametrize(
        ("damage", "expected"),
        [
            pytest.param({"createdAt": None}, "createdAt is missing", id="created-at-null"),
            pytest.param({"phase": "flying"}, "flying", id="unknown-phase"),
            pytest.param({"template": None}, "TypeError", id="no-template"),
            pytest.param({"exit": {"reason": 3}}, "ValueError", id="bad-exit"),
        ],
    )
    def test_one_unreadable_task_record_becomes_a_lost_task(
        self, tmp_path: Path, damage: dict[str, object], expected: str
    ) -> None:
        store = Store(tmp_path)
        good = record("j", "j-s0-rabc-a0", store.next_seq(), TaskPhase.RUNNING)
        bad = record("j", "j-s1-rabc-a2", store.next_seq(), TaskPhase.RUNNING)
        store.jobs["j"] = JobRecord("j", "p", T0)
        store.tasks = {good.ref: good, bad.ref: bad}
        store.save()
        state = json.loads(store.state_file.read_text())
        state["tasks"][1].update(damage)
        store.state_file.write_text(json.dumps(state))

        loaded = Store(tmp_path)
        with capture_logs() as logs:
            loaded.load()
        assert [e["event"] for e in logs] == ["state_record_unreadable"]
        assert list(loaded.tasks) == [good.ref, bad.ref]
        assert loaded.tasks[good.ref] == good
        lost = loaded.tasks[bad.ref]
        assert (lost.phase, lost.slot, lost.revision, lost.attempt) == (
            TaskPhase.EXITED,
            1,
            "abc",
            2,
        )
        assert lost.exit is not None
        assert lost.exit.reason is ExitReason.LOST
        assert expected in lost.exit.message
        assert bad.ref in loaded.damaged

    def test_a_record_without_a_readable_id_is_dropped(self, tmp_path: Path) -> None:
        (tmp_path / "local").mkdir()
        state = {"version": 1, "seq": 3, "pools": [7], "jobs": [{"name": "j"}], "tasks": [{}]}
        (tmp_path / "local" / "state.json").write_text(json.dumps(state))
        store = Store(tmp_path)
        with capture_logs() as logs:
            store.load()
        assert (store.pools, store.jobs, store.tasks) == ({}, {}, {})
        assert len(logs) == 3
        assert store.next_seq() == 4

    def test_saving_leaves_no_temporary_file(self, tmp_path: Path) -> None:
        store = Store(tmp_path)
        store.save()
        assert sorted(p.name for p in (tmp_path / "local").iterdir()) == ["state.json"]

    def test_a_failed_write_leaves_no_temporary_file_and_stays_dirty(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = Store(tmp_path)
        store.mark()

        def full(self: Path, data: str) -> int:
            Path.write_bytes(self, data.encode()[:10])
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(Path, "write_text", full)
        with pytest.raises(OSError, match="No space"):
            asyncio.run(store.flush())
        assert store.dirty
        assert store.write_error is not None
        monkeypatch.undo()
        asyncio.run(store.flush())
        assert not store.dirty
        assert store.write_error is None
        assert json.loads(store.state_file.read_text())["tasks"] == []
        assert sorted(p.name for p in (tmp_path / "local").iterdir()) == ["state.json"]
