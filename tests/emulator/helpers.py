"""Builders and waits shared by the emulator tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from azure.batch import models as m
from azure.batch.aio import BatchClient

from tests.batch_emulator import BatchEmulator

IMAGE = "registry.example/sim/cartpole:1.0"


def pool_options(
    pool_id: str = "pool-1",
    *,
    dedicated: int = 2,
    spot: int = 0,
    slots: int = 1,
    vm_size: str = "Standard_D2s_v3",
    fill: str | None = None,
    registries: tuple[m.ContainerRegistryReference, ...] = (),
) -> m.BatchPoolCreateOptions:
    """A container pool the way simfleet creates one (``fill``: its ``nodeFillType``)."""
    return m.BatchPoolCreateOptions(
        id=pool_id,
        vm_size=vm_size,
        task_scheduling_policy=m.BatchTaskSchedulingPolicy(node_fill_type=fill) if fill else None,
        target_dedicated_nodes=dedicated,
        target_low_priority_nodes=spot,
        task_slots_per_node=slots,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(
                publisher="microsoft-dsvm", offer="ubuntu-hpc", sku="2204", version="latest"
            ),
            node_agent_sku_id="batch.node.ubuntu 22.04",
            container_configuration=m.BatchContainerConfiguration(
                type=m.ContainerType.DOCKER_COMPATIBLE,
                container_image_names=[IMAGE],
                container_registries=list(registries) or None,
            ),
        ),
        metadata=[m.BatchMetadataItem(name="simfleet/owner", value="tests")],
    )


def job_options(
    job_id: str = "job-1", pool_id: str = "pool-1", **kwargs: Any
) -> m.BatchJobCreateOptions:
    return m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), **kwargs)


def task_options(task_id: str, *, image: str = IMAGE, **kwargs: Any) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(
        id=task_id,
        command_line="python -m sim --episodes 10",
        container_settings=m.BatchTaskContainerSettings(image_name=image),
        **kwargs,
    )


def settle_pool(emulator: BatchEmulator) -> None:
    """Advance past allocation and node boot."""
    emulator.advance(emulator.config.allocation_delay + emulator.config.node_start_delay)


def prepare(emulator: BatchEmulator, *, pull: bool = True) -> None:
    """Advance past `preparing`: tasks started now are `running` after it.

    ``pull``: their image still has to be pulled; False for the image the helpers' pools
    prefetch (`IMAGE`), whose tasks are `running` exactly after `task_prepare_delay`.
    """
    pulling = emulator.config.image_pull_delay if pull else 0.0
    emulator.advance(pulling + emulator.config.task_prepare_delay)


async def ready_pool(client: BatchClient, emulator: BatchEmulator, **kwargs: Any) -> m.BatchPool:
    """Create a pool and advance the clock until its nodes are idle."""
    options = pool_options(**kwargs)
    await client.create_pool(options)
    settle_pool(emulator)
    return await client.get_pool(options.id)


async def add_tasks(client: BatchClient, job_id: str, ids: list[str], **kwargs: Any) -> None:
    group = m.BatchTaskGroup(task_values=[task_options(i, **kwargs) for i in ids])
    result = await client.create_task_collection(job_id, group)
    assert [r.status for r in result.result_values] == [m.BatchTaskAddStatus.SUCCESS] * len(ids)


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 5.0) -> None:
    """Poll `check` until it holds or the deadline passes (for wall-time effects only)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)
