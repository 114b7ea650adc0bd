"""The BatchManagement.json extract agrees with the SDK simfleet sends ARM requests with.

`spec/SOURCE.md` says how the extract was made and what was checked; these tests keep
those checks true: every `$ref` resolves, the api-version is the one azure-mgmt-batch
sends, and every definition lists exactly the wire names of the SDK's model of the same
name (two documented exceptions).
"""

from __future__ import annotations

import json
import re

from azure.mgmt.batch import models
from azure.mgmt.batch.aio._configuration import BatchManagementClientConfiguration

from tests.batch_emulator._arm import ARM_SPEC
from tests.batch_emulator._config import ARM_API_VERSION

DOCUMENT = json.loads(ARM_SPEC.read_text(encoding="utf-8"))
DEFINITIONS = DOCUMENT["definitions"]
#: Known differences (see spec/SOURCE.md): the SDK's TypeSpec base adds `systemData`;
#: the swagger lists `storageAccountType` on data disks, the SDK does not.
EXCEPTIONS = {("Pool", "systemData"), ("DataDisk", "storageAccountType")}


def test_every_reference_resolves_and_every_definition_is_used() -> None:
    text = json.dumps(DOCUMENT)
    used = set(re.findall(r"#/definitions/(\w+)", text))
    assert used == set(DEFINITIONS)
    assert set(re.findall(r"#/parameters/(\w+)", text)) <= set(DOCUMENT["parameters"])


def test_the_api_version_is_the_one_the_sdk_sends() -> None:
    sent = BatchManagementClientConfiguration(credential=object(), subscription_id="s")
    assert DOCUMENT["info"]["version"] == ARM_API_VERSION == sent.api_version


def _properties(name: str) -> set[str]:
    definition = DEFINITIONS[name]
    names = set(definition.get("properties", {}))
    for parent in definition.get("allOf", []):
        names |= _properties(parent["$ref"].rsplit("/", 1)[-1])
    return names


def test_definitions_list_the_wire_names_of_the_sdk_models() -> None:
    compared = 0
    for name in DEFINITIONS:
        model = getattr(models, name, None)
        if model is None or "properties" not in DEFINITIONS[name]:
            continue
        model()  # the model's field table is filled on first use
        wire = {field._rest_name for field in model._attr_to_rest_field.values()}
        spec = _properties(name)
        differences = {(name, p) for p in wire ^ spec} - EXCEPTIONS
        assert not differences, differences
        compared += 1
    assert compared > 60
