"""Batch ids are case-insensitive: a spec's spelling is matched to the existing object's.

To Batch, ``good`` and ``GOOD`` are one job; to a dict they are two keys. Renaming a
simulation ``good`` → ``GOOD`` in its spec used to plan "prune good, create GOOD": the
create was refused (the id exists) while the prune deleted the job, an outage for a change
of letter case. So before anything else the planner rewrites desired names that match an
observed object without regard to case into the observed spelling: the object keeps its
id, its task ids stay valid, and nothing is created or deleted. References follow
(``spec.pool`` of each simulation), since the pool's id did not change either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from controller.planner._desired import Desired
from controller.planner._observed import Observed


def _spellings(names: Iterable[str]) -> dict[str, str]:
    return {name.lower(): name for name in sorted(names)}


def align(desired: Desired, observed: Observed) -> Desired:
    """``desired`` with names (and pool references) spelled as the observed objects are."""
    pool_ids = _spellings(observed.pools)
    job_ids = _spellings(observed.jobs)

    def pool_id(name: str) -> str:
        return pool_ids.get(name.lower(), name)

    def job_id(name: str) -> str:
        return job_ids.get(name.lower(), name)

    simulations = {}
    for name, sim in desired.simulations.items():
        pool = pool_id(sim.spec.pool)
        spec = sim.spec if pool == sim.spec.pool else sim.spec.model_copy(update={"pool": pool})
        spelled = job_id(name)
        simulations[spelled] = (
            sim
            if spelled == name and spec is sim.spec
            else dataclasses.replace(sim, name=spelled, spec=spec)
        )
    return dataclasses.replace(
        desired,
        pools={pool_id(name): spec for name, spec in desired.pools.items()},
        simulations=simulations,
        notes={job_id(name): note for name, note in desired.notes.items()},
    )
