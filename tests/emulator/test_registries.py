"""Private registries on the data plane: server names as Batch and Microsoft's docs write them.

BatchService.json types `registryServer` as a `uri`, but Batch takes, and its own
examples use, a bare server name (`myacr.azurecr.io`); the emulator accepts both, in a
pool's `containerRegistries` and in a task's `containerSettings.registry`.
"""

from __future__ import annotations

import pytest
from azure.batch import models as m
from azure.batch.aio import BatchClient
from azure.core.exceptions import HttpResponseError

from tests.batch_emulator import BatchEmulator

from .helpers import IMAGE, job_options, pool_options, ready_pool, task_options


def by_password(server: str) -> m.ContainerRegistryReference:
    return m.ContainerRegistryReference(registry_server=server, username="u", password="p")


@pytest.mark.parametrize(
    "server", ["myacr.azurecr.io", "https://myacr.azurecr.io", "localhost:5000", "docker.io"]
)
async def test_a_pool_registry_may_be_a_bare_server_name(
    batch_client: BatchClient, batch_emulator: BatchEmulator, server: str
) -> None:
    await ready_pool(batch_client, batch_emulator, registries=(by_password(server),))
    await batch_client.create_job(job_options())
    await batch_client.create_task("job-1", task_options("t1"))
    batch_emulator.advance(1)

    assert batch_emulator.task("job-1", "t1")["state"] == "running"


async def test_a_task_registry_may_be_a_bare_server_name(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    await ready_pool(batch_client, batch_emulator)
    await batch_client.create_job(job_options())
    settings = m.BatchTaskContainerSettings(
        image_name=IMAGE, registry=by_password(IMAGE.split("/", 1)[0])
    )

    task = m.BatchTaskCreateOptions(id="t1", command_line="true", container_settings=settings)
    await batch_client.create_task("job-1", task)
    batch_emulator.advance(1)

    assert batch_emulator.task("job-1", "t1")["state"] == "running"


async def test_a_registry_server_that_is_no_name_is_still_refused(
    batch_client: BatchClient, batch_emulator: BatchEmulator
) -> None:
    with pytest.raises(HttpResponseError) as refused:
        await batch_client.create_pool(pool_options(registries=(by_password("my acr"),)))

    assert refused.value.status_code == 400
    assert [v.operation for v in batch_emulator.take_violations()] == ["Pools_CreatePool"]
