"""Fixtures for the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Every command configures structlog for its process (``run`` at info, the others at
    warning); a test that invokes one in-process must not leave that to the next test."""
    yield
    structlog.reset_defaults()
