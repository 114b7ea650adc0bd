"""Pools whose registries pull with a managed identity the backend cannot attach.

A registry with ``identity:`` pulls with a user-assigned managed identity, which must be
attached to the pool. A backend that cannot attach one — Azure without Resource Manager:
the data plane has no way to — says why in ``Observed.pool_identity_refusal``. Such a
pool is then not created: its nodes could never pull the registry's images, and would
cost money to run nothing. The pool shows as held, with those words, and so do the
simulations on it (:mod:`._holding`), so ``plan`` lists them under "Held back" and never
says the fleet matches its specs. A pool that exists already is left to its sizing: it
may have been given its identities another way.
"""

from __future__ import annotations

from controller.planner._observed import Observed
from controller.spec import PoolSpec


def refusal(spec: PoolSpec | None, observed: Observed) -> str:
    """Why a pool that does not exist yet cannot be created as ``spec`` asks; "" if it can.

    A registry ``myacr.azurecr.io`` with ``identity:``, on Azure without Resource Manager,
    gives "not created: registry myacr.azurecr.io uses identity:, and a managed identity
    is attached to a pool only through Azure Resource Manager: set …".
    """
    why = observed.pool_identity_refusal
    if spec is None or not why:
        return ""
    servers = [r.server for r in spec.registries if r.identity]
    if not servers:
        return ""
    return f"not created: registry {', '.join(servers)} uses identity:, and {why}"
