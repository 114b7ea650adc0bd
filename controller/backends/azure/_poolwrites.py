"""The three pool writes — create, resize, delete — and the two planes that can do them.

Batch pools can be written through the Batch data plane (``azure.batch``, what the rest
of the backend uses) or through Azure Resource Manager (:mod:`._arm`). Only ARM can
attach a user-assigned managed identity to a pool, which a registry's ``identity:``
needs; the data plane needs no more than the account's URL and a key. The backend sends
its pool writes through one :class:`PoolWrites`, chosen once from the settings, and
everything else (observation, jobs, tasks) stays on the data plane, so the pools look the
same to it whichever plane made them.

A ``PoolWrites`` raises the SDK's errors unchanged: the backend classifies them once,
with the same ``Retry-After`` window for both planes (:mod:`._throttle`). A create that
finds the pool already there, or a delete that finds it gone, may also raise: the
backend treats Batch's codes for those (``PoolExists``, ``PoolNotFound`` …) as done.
"""

from __future__ import annotations

from typing import Protocol

from azure.batch import models as m
from azure.batch.aio import BatchClient


class PoolWrites(Protocol):
    """Where the backend's pool writes go."""

    async def create(self, body: m.BatchPoolCreateOptions) -> None:
        """Create the pool ``body`` describes (the data plane's shape)."""

    async def resize(self, name: str, dedicated: int, spot: int) -> None:
        """Start resizing a pool to these targets; do not wait for it."""

    async def delete(self, name: str) -> None:
        """Start deleting a pool; do not wait for it."""

    async def close(self) -> None:
        """Release what the writer holds (its HTTP session, if it has its own)."""


class DataPlanePools:
    """Pool writes through the data-plane client the backend already has."""

    def __init__(self, client: BatchClient) -> None:
        self._client = client

    async def create(self, body: m.BatchPoolCreateOptions) -> None:
        await self._client.create_pool(body)

    async def resize(self, name: str, dedicated: int, spot: int) -> None:
        body = m.BatchPoolResizeOptions(
            target_dedicated_nodes=dedicated, target_low_priority_nodes=spot
        )
        await self._client.begin_resize_pool(name, body)  # fired: the next pass observes it

    async def delete(self, name: str) -> None:
        await self._client.begin_delete_pool(name)

    async def close(self) -> None:
        """The client is the backend's: it closes it."""
