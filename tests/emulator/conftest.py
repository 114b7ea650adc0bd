"""Fixtures for the emulator's own tests: the shared ones from `batch_emulator.fixtures`."""

from tests.batch_emulator.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    batch_client,
    batch_emulator,
    make_batch_emulator,
)
