"""Registries with ``identity:`` on a backend that cannot attach identities to pools.

Rows: the pool's registries, whether the backend refuses identities (Azure without
Resource Manager says why in ``Observed.pool_identity_refusal``) and whether the pool
exists; expected: whether the pool is created, what its status says, and whether the
simulation on it is held. The last rows are the ones that must not change: identities on
a backend that attaches them, a password registry anywhere, a pool that already exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from controller.cli._planview import as_text
from controller.planner import CreateJob, CreatePool, Observed, PoolPhase, plan
from controller.testing import EPOCH

from .conftest import desired, pool_spec, simulation
from .test_plan import steady_pool

IDENTITY = (
    "/subscriptions/s/resourceGroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/pull"
)
BY_IDENTITY = [{"server": "myacr.azurecr.io", "identity": IDENTITY}]
BY_PASSWORD = [{"server": "other.azurecr.io", "username": "u", "passwordFromEnv": "ACR_PW"}]
REFUSAL = "only Resource Manager can: set AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP"


@dataclass(frozen=True)
class Row:
    registries: list[dict[str, Any]]
    refusal: str
    pool_exists: bool
    created: bool
    held: bool


ROWS = [
    pytest.param(Row(BY_IDENTITY, REFUSAL, False, False, True), id="identity-refused-held"),
    pytest.param(
        Row(BY_IDENTITY + BY_PASSWORD, REFUSAL, False, False, True), id="mixed-refused-held"
    ),
    pytest.param(Row(BY_IDENTITY, "", False, True, False), id="identity-attachable-created"),
    pytest.param(Row(BY_PASSWORD, REFUSAL, False, True, False), id="password-created"),
    pytest.param(Row(BY_IDENTITY, REFUSAL, True, False, False), id="existing-pool-left-alone"),
]


@pytest.mark.parametrize("row", ROWS)
def test_a_pool_whose_identity_cannot_be_attached_is_held(row: Row) -> None:
    spec = pool_spec(nodes={"dedicated": 2}, registries=row.registries)
    want = desired(simulation(), pools={"sims": spec})
    pools = {"sims": steady_pool()} if row.pool_exists else {}
    seen = Observed(pools=pools, pool_identity_refusal=row.refusal)

    result = plan(want, seen, EPOCH)

    creates = [a for a in result.actions if isinstance(a, CreatePool)]
    assert bool(creates) is row.created
    pool = result.status.pools[0]
    sim = result.status.simulations[0]
    if row.held:
        assert pool.state is PoolPhase.HELD
        assert "myacr.azurecr.io uses identity:" in pool.message
        assert REFUSAL in pool.message
        assert "pool sims is not created: registry myacr.azurecr.io uses identity:" in (sim.message)
        assert not any(isinstance(a, CreateJob) for a in result.actions)
    else:
        assert pool.state is not PoolPhase.HELD
        assert "identity" not in pool.message
        assert "identity" not in sim.message


def test_plan_lists_the_held_pool_and_never_says_no_changes() -> None:
    spec = pool_spec(nodes={"dedicated": 2}, registries=BY_IDENTITY)
    want = desired(simulation(), pools={"sims": spec})

    text = as_text(plan(want, Observed(pool_identity_refusal=REFUSAL), EPOCH), [], None)

    assert "Held back (left as they are):" in text
    assert "pool sims: not created: registry myacr.azurecr.io uses identity:" in text
    assert text.splitlines()[-1] == (
        "No changes now, but the fleet does not match the specs; 2 object(s) held back."
    )
