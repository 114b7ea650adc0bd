"""The JSON Schema of one spec document, for editors (``simfleet schema``).

Generated from the pydantic models, by alias, so it can never drift from what the loader
accepts: camelCase field names, ``additionalProperties: false`` where unknown fields are
errors, and the accepted spellings of durations, percentages and ``auto``. Checks that
need more than one field (``initial`` not above ``max``, say) are not expressible here;
the loader still reports them.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from controller.spec import _models

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one spec document: a Pool or a Simulation.

    Returns:
        A fresh dict, safe to modify; ``oneOf`` the two document kinds, by alias.
    """
    generated = TypeAdapter(_models.Document).json_schema(by_alias=True, mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "simfleet spec document",
        "description": (
            f"One document of a simfleet spec file (apiVersion {_models.API_VERSION}):"
            " a Pool of nodes or a Simulation of N simulators."
        ),
        **generated,
    }
