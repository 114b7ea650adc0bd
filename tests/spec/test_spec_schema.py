"""The JSON Schema editors use: valid draft 2020-12, and agreeing with the loader."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from controller.spec import json_schema

POOL: dict[str, Any] = {
    "apiVersion": "simfleet/v1",
    "kind": "Pool",
    "metadata": {"name": "sims"},
    "spec": {
        "vmSize": "standard_d4s_v5",
        "taskSlotsPerNode": 4,
        "nodes": {"dedicated": 2, "spot": 0, "max": 20},
        "nodeImage": {
            "publisher": "microsoft-dsvm",
            "offer": "ubuntu-hpc",
            "sku": "2204",
            "version": "latest",
            "nodeAgentSku": "batch.node.ubuntu 22.04",
        },
        "registries": [
            {"server": "myacr.azurecr.io", "identity": "/subscriptions/x"},
            {"server": "other.azurecr.io", "username": "o", "passwordFromEnv": "OTHER_PW"},
        ],
    },
}
SIMULATION: dict[str, Any] = yaml.safe_load(
    """\
apiVersion: simfleet/v1
kind: Simulation
metadata:
  name: cartpole
spec:
  pool: sims
  simulators: 8
  image: myacr.azurecr.io/cartpole:1.0
  command: python3 /simulation/main.py --episodes 1000
  env:
    SIM_MODE: train
  secretEnv:
    SIM_ACCESS_KEY: {fromEnv: SIM_ACCESS_KEY}
  containerRunOptions: --shm-size=1g
  restartPolicy: Always
  restartBackoff: {initial: 10s, max: 5m, resetAfter: 10m}
  rollout: {maxSurge: 25%, maxUnavailable: 0}
  maxLifetime: 150d
  suspend: false
"""
)


def with_spec(document: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**document, "spec": {**document["spec"], **fields}}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema())


class TestJsonSchema:
    def test_is_a_valid_draft_2020_12_schema(self) -> None:
        schema = json_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert len(schema["oneOf"]) == 2

    def test_returns_a_fresh_dict(self) -> None:
        json_schema()["oneOf"].clear()
        assert len(json_schema()["oneOf"]) == 2

    @pytest.mark.parametrize(
        "document",
        [
            pytest.param(POOL, id="pool"),
            pytest.param(SIMULATION, id="simulation"),
            pytest.param(with_spec(SIMULATION, command=["python3", "main.py"]), id="command-list"),
            pytest.param(with_spec(POOL, nodes={"dedicated": "auto", "max": 3}), id="auto"),
            pytest.param(with_spec(POOL, prefetchImages=True), id="prefetch"),
        ],
    )
    def test_the_product_examples_are_valid(
        self, validator: jsonschema.Draft202012Validator, document: dict[str, Any]
    ) -> None:
        validator.validate(document)

    @pytest.mark.parametrize(
        "document",
        [
            pytest.param(with_spec(SIMULATION, simulatorz=3), id="unknown-field"),
            pytest.param({**POOL, "status": {}}, id="unknown-top-level-field"),
            pytest.param(with_spec(POOL, task_slots_per_node=2), id="python-spelling"),
            pytest.param({**POOL, "kind": "Deployment"}, id="unknown-kind"),
            pytest.param({**POOL, "apiVersion": "v1"}, id="wrong-api-version"),
            pytest.param(with_spec(SIMULATION, simulators=-1), id="negative"),
            pytest.param(with_spec(SIMULATION, restartPolicy="Sometimes"), id="enum"),
            pytest.param({**POOL, "metadata": {"name": "a b"}}, id="bad-name"),
            pytest.param(with_spec(SIMULATION, maxLifetime="soon"), id="bad-duration"),
            pytest.param(with_spec(SIMULATION, rollout={"maxSurge": "lots"}), id="bad-percent"),
            pytest.param(with_spec(POOL, nodes={"spot": "some"}), id="bad-count"),
            pytest.param(with_spec(POOL, prefetchImages="yes"), id="prefetch-not-a-boolean"),
        ],
    )
    def test_invalid_documents_fail(
        self, validator: jsonschema.Draft202012Validator, document: dict[str, Any]
    ) -> None:
        assert not validator.is_valid(document)
