"""Image pulls that need a managed identity the pool does not have.

A registry in `containerRegistries` (or a task's `containerSettings.registry`) may name a
user-assigned identity (`identityReference.resourceId`) instead of a username and
password. Batch accepts such a pool from the data plane, which cannot attach identities
(`BatchPool.identity` is read-only there): the identity must be attached through Azure
Resource Manager (:mod:`._arm`). A pool without it gets nodes, and every task whose image
comes from that registry then fails when its node pulls the image — no token can be got
for an identity the node does not have. That is what the emulator does: the task passes
through `preparing` and completes with a container failure whose details name the
identity and the pool.

The registry of an image is its first path component when that looks like a host
(`myacr.azurecr.io/sim:1`, `localhost:5000/sim`), else Docker Hub; a registry's
`registryServer` may be written bare (`myacr.azurecr.io`) or as a URL.
"""

from __future__ import annotations

from typing import Any

from ._behaviour import Outcome
from ._model import Pool

DOCKER_HUB = "docker.io"
#: The failure code of a task whose container image could not be pulled for a reason
#: that is not a bad image name (Batch's task error table: the container's errors).
PULL_FAILURE = "ContainerMiscError"


def server_of_image(image: str) -> str:
    """The registry host an image reference is pulled from."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DOCKER_HUB


def normalized(server: str) -> str:
    """A `registryServer` as a bare host: scheme and trailing slash dropped."""
    return server.split("://", 1)[-1].rstrip("/").lower() or DOCKER_HUB


def _registry(pool: Pool, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The registry (with its credentials) a task's image is pulled with."""
    own = settings.get("registry")
    if isinstance(own, dict):
        return own
    server = server_of_image(str(settings.get("imageName", "")))
    config = pool.spec.get("virtualMachineConfiguration", {}).get("containerConfiguration", {})
    for registry in config.get("containerRegistries", []):
        if normalized(str(registry.get("registryServer", DOCKER_HUB))) == server:
            return dict(registry)
    return None


def identity_failure(pool: Pool, task_spec: dict[str, Any]) -> Outcome | None:
    """How the task's pull ends when its registry's identity is not on the pool; None
    when the pull needs no identity or the pool has it."""
    settings = task_spec.get("containerSettings")
    if not isinstance(settings, dict):
        return None
    registry = _registry(pool, settings)
    wanted = ((registry or {}).get("identityReference") or {}).get("resourceId")
    if not wanted or wanted.lower() in {i.lower() for i in pool.identities}:
        return None
    server = normalized(str((registry or {}).get("registryServer", DOCKER_HUB)))
    return Outcome(
        exit_code=None,
        failure_code=PULL_FAILURE,
        failure_message="An error occurred while pulling the container image",
        failure_details=(
            (
                "Message",
                f"registry {server}: the managed identity {wanted} is not assigned to pool "
                f"{pool.id}; a pool's identities are set through Azure Resource Manager",
            ),
        ),
        retryable=False,
    )
