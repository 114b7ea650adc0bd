"""Fixtures for spec tests: a ``specs/`` directory under a temporary working directory.

Tests run with the temporary directory as the current directory, so display paths read
exactly as users see them (``specs/cartpole.yaml``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.spec import FileResult, load_file

Write = Callable[[str, str], Path]
Load = Callable[[str], FileResult]


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``specs`` directory, given as the relative path ``specs``."""
    monkeypatch.chdir(tmp_path)
    root = Path("specs")
    root.mkdir()
    return root


@pytest.fixture
def write(specs: Path) -> Write:
    """Write a (dedented) spec file under ``specs/`` and return its path."""

    def write(name: str, text: str) -> Path:
        path = specs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(write: Write) -> Load:
    """Write ``specs/t.yaml`` with the given (dedented) text and load it."""

    def load(text: str) -> FileResult:
        return load_file(write("t.yaml", text))

    return load
