"""pytest fixtures for the Batch emulator; usable from any test folder.

Import the fixtures into a conftest.py (pytest finds fixtures by name in the module):

    from tests.batch_emulator.fixtures import (  # noqa: F401
        batch_client, batch_emulator, make_batch_emulator,
    )

or list the module as a plugin in the root conftest:
`pytest_plugins = ["tests.batch_emulator.fixtures"]`.

* `batch_emulator`: a running emulator in conformance mode, with the clock frozen (speed 0)
  so that nothing moves unless the test calls `advance()`. At teardown it fails the test if
  any request or response broke the spec (use `take_violations()` when a test sends bad
  bodies on purpose).
* `make_batch_emulator`: a factory, `await make_batch_emulator(https=True, ...)`, taking
  `EmulatorConfig` fields; same teardown check.
* `batch_client`: an `azure.batch.aio.BatchClient` signed with the emulator's shared key,
  with quick retries (back-off 0.01 s) so fault tests stay fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from azure.batch.aio import BatchClient

from ._config import EmulatorConfig
from ._emulator import BatchEmulator

EmulatorFactory = Callable[..., Awaitable[BatchEmulator]]
TEST_DEFAULTS: dict[str, Any] = {"conformance": True, "clock_speed": 0.0}


def _assert_conformant(emulator: BatchEmulator) -> None:
    violations = emulator.take_violations()
    if violations:
        listing = "\n".join(f"  - {v}" for v in violations)
        pytest.fail(
            f"Batch emulator saw {len(violations)} spec violation(s):\n{listing}", pytrace=False
        )


@pytest_asyncio.fixture
async def make_batch_emulator() -> AsyncIterator[EmulatorFactory]:
    started: list[BatchEmulator] = []

    async def make(**overrides: Any) -> BatchEmulator:
        config = dataclasses.replace(EmulatorConfig(), **{**TEST_DEFAULTS, **overrides})
        emulator = await BatchEmulator(config).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        await emulator.stop()
    for emulator in started:
        _assert_conformant(emulator)


@pytest_asyncio.fixture
async def batch_emulator(make_batch_emulator: EmulatorFactory) -> BatchEmulator:
    return await make_batch_emulator()


def client_for(emulator: BatchEmulator, **kwargs: Any) -> BatchClient:
    """A shared-key client for an emulator, with fast retries unless told otherwise."""
    kwargs.setdefault("retry_backoff_factor", 0.01)
    return BatchClient(emulator.endpoint, emulator.credential(), **kwargs)


@pytest_asyncio.fixture
async def batch_client(batch_emulator: BatchEmulator) -> AsyncIterator[BatchClient]:
    client = client_for(batch_emulator)
    async with client:
        yield client
