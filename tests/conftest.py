"""Fixtures for the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from tests import _skipped


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Every command configures structlog for its process (``run`` at info, the others at
    warning); a test that invokes one in-process must not leave that to the next test."""
    yield
    structlog.reset_defaults()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    """End the run with the skipped suites and why (see :mod:`tests._skipped`): after
    every other summary, pytest's short one included."""
    yield
    _skipped.pytest_terminal_summary(terminalreporter)
