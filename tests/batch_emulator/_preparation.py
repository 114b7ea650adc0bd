"""How long a task stays `preparing` on its node: an image pull the first time, then less.

Batch shows every run as `preparing` while the node gets the container ready, and only
then `running` (`executionInfo.startTime` is the start of `running`). The first run of an
image on a node pulls it (`image_pull_delay`), later runs only create the container
(`task_prepare_delay`); images the pool prefetches (`containerImageNames`) are pulled
while the node starts. A run that starts while its image is still being pulled on that
node waits for the same pull, as the node's container runtime does.
"""

from __future__ import annotations

from typing import Any

from ._config import EmulatorConfig
from ._model import Node, Pool


def prefetched(pool: Pool) -> tuple[str, ...]:
    """The images a pool pulls onto every node before it is ready."""
    vm = pool.spec.get("virtualMachineConfiguration", {})
    names = vm.get("containerConfiguration", {}).get("containerImageNames") or ()
    return tuple(str(name) for name in names)


class Preparation:
    """Per node, when each image it runs is (or will be) pulled."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        # (node id, boot time) → image → ready at. A node that boots again (after a
        # preemption) is a new machine: its images are gone; ids are never reused.
        self._pulled: dict[tuple[str, float | None], dict[str, float]] = {}

    def delay(self, pool: Pool, node: Node, task_spec: dict[str, Any], now: float) -> float:
        """Seconds from now until a run of ``task_spec`` on ``node`` is `running`."""
        prepare = self.config.task_prepare_delay
        image = str(task_spec.get("containerSettings", {}).get("imageName", ""))
        if not image:
            return prepare
        machine = (node.id, node.booted)
        images = self._pulled.setdefault(machine, dict.fromkeys(prefetched(pool), 0.0))
        ready = images.setdefault(image, now + self.config.image_pull_delay)
        return max(ready - now, 0.0) + prepare
