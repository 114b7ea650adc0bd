"""Registry password rotation (issue 10, item 12): noticed through a keyed digest the pool
records, never the password; carried out by each new simulator's own login."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import SecretStr

from controller.planner import (
    AddTasks,
    Observed,
    ObservedPool,
    PoolConfig,
    RecordLogin,
    RegistryLogin,
    login_digest,
    login_for,
    plan,
)
from controller.testing import EPOCH

from .conftest import desired, pool_spec, simulation

REGISTRY = {"server": "https://myacr.azurecr.io", "username": "sim", "passwordFromEnv": "ACR"}
POOL = pool_spec(nodes={"dedicated": 1}, registries=[REGISTRY])
KEY = b"k" * 32


def digest(password: str, key: bytes = KEY) -> str:
    return login_digest(key, POOL, {"https://myacr.azurecr.io": SecretStr(password)})


def test_the_digest_is_keyed_and_changes_with_the_password_only() -> None:
    assert digest("one") == digest("one")
    assert digest("one") != digest("two")
    assert digest("one") != digest("one", key=b"x" * 32)  # useless without the key
    assert "one" not in digest("one")
    assert login_digest(KEY, pool_spec(), {}) == ""  # no password, nothing to record


@pytest.mark.parametrize(
    ("case", "recorded", "actions", "message"),
    [
        ("unchanged", digest("old"), [], ""),
        ("rotated", digest("older"), ["record"], "a registry password changed"),
        ("made before pools recorded one: quietly", "", ["record"], ""),
        ("a backend that records none (local)", None, [], ""),
    ],
)
def test_a_rotation_is_recorded_and_said_once(
    case: str, recorded: str | None, actions: list[str], message: str
) -> None:
    pool = ObservedPool(
        "sims",
        True,
        PoolConfig.of(POOL),
        target_dedicated=1,
        current_dedicated=1,
        login_digest=recorded,
    )
    want = dataclasses.replace(desired(pools={"sims": POOL}), login_digests={"sims": digest("old")})
    result = plan(want, Observed({"sims": pool}), EPOCH)
    assert ["record" for a in result.actions if isinstance(a, RecordLogin)] == actions, case
    assert all(
        a.login_digest == digest("old") for a in result.actions if isinstance(a, RecordLogin)
    )
    (status,) = result.status.pools
    assert (message in status.message) if message else status.message == "", status.message
    if actions:  # plan says so: never "no changes" while an action is planned
        assert any(c.kind == "pool" and c.verb == "update" for c in result.changes)


def test_new_simulators_carry_their_own_login_with_the_current_password() -> None:
    passwords = {"https://myacr.azurecr.io": SecretStr("s3cr3t-new")}
    login = login_for("myacr.azurecr.io/cartpole:1.0", POOL, passwords)
    assert login == RegistryLogin("https://myacr.azurecr.io", "sim", SecretStr("s3cr3t-new"))
    assert login_for("docker.io/library/python:3.11", POOL, passwords) is None
    assert login_for("python:3.11", POOL, passwords) is None  # Docker Hub
    sim = dataclasses.replace(simulation(image="myacr.azurecr.io/cartpole:1.0"), login=login)
    result = plan(desired(sim, pools={"sims": POOL}), Observed(), EPOCH)
    (add,) = [a for a in result.actions if isinstance(a, AddTasks)]
    assert add.login == login
    assert "s3cr3t" not in repr(add)
    assert "s3cr3t" not in add.describe()


def test_a_rotation_rolls_no_running_simulator() -> None:
    """The login is not part of the template: the revision stays, nothing is stopped."""
    old = dataclasses.replace(
        simulation(image="myacr.azurecr.io/cartpole:1.0"),
        login=RegistryLogin("https://myacr.azurecr.io", "sim", SecretStr("old")),
    )
    new = dataclasses.replace(
        old, login=RegistryLogin("https://myacr.azurecr.io", "sim", SecretStr("new"))
    )
    first = plan(desired(old, pools={"sims": POOL}), Observed(), EPOCH)
    second = plan(desired(new, pools={"sims": POOL}), Observed(), EPOCH)
    assert [a.describe() for a in first.actions] == [a.describe() for a in second.actions]
