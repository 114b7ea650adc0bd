"""Registry logins: a password rotation is noticed and carried out, and no password stored.

A pool's registries are fixed while it has nodes (Batch: ``virtualMachineConfiguration``
"can be updated only when the pool is empty"), so a rotated registry password cannot
reach the pool's own login. Batch does let each task name its own registry login
(``containerSettings.registry``), and that is what simfleet relies on: every new
simulator carries the login of its image's registry as the controller has it now
(:func:`login_for`), so after a rotation every new pull uses the new password, and
running simulators, whose images are already pulled, are left alone.

To *notice* a rotation without storing the password, a pool records a keyed digest of
its passwords (an HMAC under the controller's revision key, as secret values enter
template revisions; see ``_ids.keyed_digest``). When the digest the specs give differs
from the recorded one, the pass says so in the pool's status and records the new one
(:class:`~._actions.RecordLogin`); a pool that recorded none yet (made by an older
simfleet) has its digest recorded quietly. A backend that records nothing (the local
one: its simulators pull nothing) reports None and is never asked to.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from controller.planner._actions import Action, RecordLogin, RegistryLogin
from controller.planner._ids import keyed_digest
from controller.planner._observed import ObservedPool
from controller.spec import PoolSpec, Registry, registry_of


def login_digest(key: bytes, spec: PoolSpec, passwords: Mapping[str, SecretStr]) -> str:
    """The keyed digest of the passwords of ``spec``'s registries; "" when none has one."""
    return keyed_digest(
        key,
        (
            (r.server, passwords[r.server].get_secret_value())
            for r in spec.registries
            if r.username is not None and r.server in passwords
        ),
    )


def login_for(
    image: str, spec: PoolSpec | None, passwords: Mapping[str, SecretStr]
) -> RegistryLogin | None:
    """The login a simulator of ``image`` pulls with: its registry's entry in the pool's
    spec (server compared as the docker CLI reads it from the image), or None."""
    if spec is None:
        return None
    server = registry_of(image)
    for registry in spec.registries:
        if _host(registry.server) == server:
            return login_of(registry, passwords)
    return None


def login_of(registry: Registry, passwords: Mapping[str, SecretStr]) -> RegistryLogin:
    """One registry of a pool's spec as a login: its identity, or its username with the
    password as the controller has it now."""
    if registry.identity is not None:
        return RegistryLogin(registry.server, identity=registry.identity)
    return RegistryLogin(registry.server, registry.username, passwords.get(registry.server))


def _host(server: str) -> str:
    """A registry server as written in a spec (``https://myacr.azurecr.io/`` or the bare
    name Batch's documentation uses) reduced to the host an image names."""
    bare = server.split("://", 1)[-1]
    return bare.rstrip("/").lower()


def record(
    name: str, spec: PoolSpec, pool: ObservedPool, wanted: str
) -> tuple[tuple[Action, ...], str]:
    """The action that records the pool's login digest, and what status says about it."""
    if pool.login_digest is None or pool.login_digest == wanted:
        return (), ""
    action = RecordLogin(name, spec, wanted)
    if not pool.login_digest:
        return (action,), ""  # made before pools recorded one: nothing changed that we know
    return (action,), "a registry password changed: new simulators pull with the new one"
