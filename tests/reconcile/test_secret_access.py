"""``secretEnv.fromEnv`` can never read the controller's own credentials, and the operator
can narrow what it may read further (issue 7, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.reconcile import desired_state
from controller.spec import SecretAccess, build_catalog, load_directory

POOL = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {name: sims}
spec:
  vmSize: standard_d4s_v5
  registries:
    - {server: acr.example, username: u, passwordFromEnv: ACR_PASSWORD}
"""

SIMULATION = """\
apiVersion: simfleet/v1
kind: Simulation
metadata: {name: sim}
spec:
  pool: sims
  image: x:1
  command: sleep 100
  secretEnv:
    KEY: {fromEnv: VARIABLE}
"""

ENVIRON = {
    "AZURE_BATCH_ACCESS_KEY": "account-key-value",
    "AZURE_CLIENT_SECRET": "client-secret-value",
    "IDENTITY_HEADER": "identity-header-value",
    "SIMFLEET_LISTEN": "0.0.0.0:1",
    "DOCKER_HOST": "tcp://127.0.0.1:1",
    "ACR_PASSWORD": "registry-password",
    "SIM_KEY": "simulator-key",
    "OTHER": "other-value",
}


def resolve(tmp_path: Path, variable: str, access: SecretAccess | None = None) -> tuple:
    (tmp_path / "pool.yaml").write_text(POOL)
    (tmp_path / "sim.yaml").write_text(SIMULATION.replace("VARIABLE", variable))
    catalog = build_catalog(load_directory(tmp_path))
    return desired_state(catalog, ENVIRON, revision_key=b"k" * 32, access=access)


@pytest.mark.parametrize(
    "variable",
    [
        "AZURE_BATCH_ACCESS_KEY",
        "AZURE_CLIENT_SECRET",
        "IDENTITY_HEADER",
        "SIMFLEET_LISTEN",
        "DOCKER_HOST",
        "ACR_PASSWORD",  # a pool's registry password is for its nodes only
    ],
)
def test_the_controllers_own_variables_are_never_readable(tmp_path: Path, variable: str) -> None:
    desired, errors = resolve(tmp_path, variable)
    assert "sim" not in desired.simulations
    assert not desired.prune_allowed
    (error,) = errors
    assert error.path == "spec.secretEnv.KEY.fromEnv"
    assert (error.line, error.column) == (9, 20)
    assert "can never be read by a spec" in error.message
    assert ENVIRON[variable] not in str(error)


def test_an_ordinary_variable_is_readable(tmp_path: Path) -> None:
    desired, errors = resolve(tmp_path, "SIM_KEY")
    assert errors == ()
    assert desired.simulations["sim"].secrets["KEY"].get_secret_value() == "simulator-key"


def test_the_operator_allow_list_narrows_what_specs_read(tmp_path: Path) -> None:
    access = SecretAccess(allow=("SIM_*",))
    allowed, errors = resolve(tmp_path, "SIM_KEY", access)
    assert errors == ()
    assert "sim" in allowed.simulations
    refused, errors = resolve(tmp_path, "OTHER", access)
    assert "sim" not in refused.simulations
    assert "not allowed by the operator (--allow-secret-env SIM_*)" in errors[0].message


def test_an_allow_list_never_opens_the_reserved_variables(tmp_path: Path) -> None:
    _, errors = resolve(tmp_path, "AZURE_BATCH_ACCESS_KEY", SecretAccess(allow=("*",)))
    assert "can never be read" in errors[0].message
