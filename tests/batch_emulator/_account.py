"""The emulated account: the shared state plus the pool, job and task operations on it."""

from __future__ import annotations

from ._config import EmulatorConfig
from ._jobs import Jobs
from ._pools import Pools
from ._taskcounts import LaggingCounts
from ._tasks import Tasks
from ._world import World


class Account:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.world = World(config)
        self.pools = Pools(self.world)
        self.jobs = Jobs(self.world)
        self.tasks = Tasks(self.world)
        self.counts = LaggingCounts(config)
