"""The revision key: made once, private, stable, and a clear error when unusable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from controller.daemon import RevisionKeyError, revision_key


def test_the_key_is_made_once_private_and_stable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    key = revision_key(state)
    assert len(key) == 32
    assert stat.S_IMODE((state / "revision.key").stat().st_mode) == 0o600
    assert revision_key(state) == key
    assert revision_key(tmp_path / "other") != key


def test_a_damaged_key_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "revision.key").write_text("not hex\n")
    with pytest.raises(RevisionKeyError, match="does not hold a revision key; remove it"):
        revision_key(tmp_path)


def test_replicas_with_their_own_state_directories_share_a_key_file(tmp_path: Path) -> None:
    """Every replica of a fleet (and a CI apply) names one file: one key, one revision."""
    shared = tmp_path / "secrets" / "revision.key"
    first = revision_key(tmp_path / "replica-a", shared)
    assert shared.exists()
    assert not (tmp_path / "replica-a" / "revision.key").exists()
    assert revision_key(tmp_path / "replica-b", shared) == first
    assert revision_key(tmp_path / "replica-b") != first  # its own, by default
