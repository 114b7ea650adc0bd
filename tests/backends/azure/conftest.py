"""Fixtures: the Batch emulator in-process and an AzureBackend pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from controller.backends.azure import AzureBackend, AzureSettings
from tests.batch_emulator._emulator import BatchEmulator
from tests.batch_emulator.fixtures import make_batch_emulator  # noqa: F401 (fixture)


def settings_for(emulator: BatchEmulator) -> AzureSettings:
    return AzureSettings(emulator.endpoint, emulator.account, emulator.key)


def clock_of(emulator: BatchEmulator) -> Callable[[], datetime]:
    """The emulator's own time, so back-off deadlines and task times agree."""
    return lambda: datetime.fromtimestamp(emulator.now, UTC)


def counts_catch_up(emulator: BatchEmulator) -> None:
    """Advance until Batch's task counts show what just happened (they may lag)."""
    emulator.advance(emulator.config.task_counts_lag)


class Clock:
    """A monotonic clock the test moves (``now``): listing ages without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def emulator(make_batch_emulator) -> BatchEmulator:  # type: ignore[no-untyped-def]  # noqa: F811
    return await make_batch_emulator(allocation_delay=5.0, node_start_delay=1.0)  # type: ignore[no-any-return]


@pytest_asyncio.fixture
async def backend(emulator: BatchEmulator) -> AsyncIterator[AzureBackend]:
    azure = AzureBackend(settings_for(emulator))
    yield azure
    await azure.close()
