"""BatchService.json as data: operations, URL matching and definitions.

The emulator routes by the specification itself: a request's method and path are matched
against the spec's 51 path templates, which yields the operationId (`Tasks_ListTasks`,
…) used for handlers, request counters, fault rules and conformance checks alike. Path
segments are percent-decoded one by one, so `{taskId}` may contain anything the SDK
escapes, and the trailing `{filePath}` takes the rest of the path (the SDK escapes `/`
inside it as `%2F`, but a raw `/` is accepted too).

The spec is the copy in `spec/` beside this file (see `spec/SOURCE.md`); set
`BATCH_EMULATOR_SPEC` or `EmulatorConfig.spec_path` to use another.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

DEFAULT_SPEC = Path(__file__).resolve().parent / "spec" / "BatchService.json"
HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head")


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str  # upper case
    template: str
    segments: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @functools.cached_property
    def parameters(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(location, name) → parameter, with `$ref`s resolved."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for param in self.raw.get("parameters", []):
            out[(param["in"], param["name"])] = param
        return out

    @property
    def body_param(self) -> dict[str, Any] | None:
        return next((p for (loc, _), p in self.parameters.items() if loc == "body"), None)

    def success_status(self) -> int:
        return min(int(code) for code in self.raw["responses"] if code.isdigit())

    def response(self, status: int) -> dict[str, Any]:
        responses = self.raw["responses"]
        return dict(responses.get(str(status)) or responses.get("default") or {})

    @property
    def pageable(self) -> bool:
        return "x-ms-pageable" in self.raw


@dataclass(frozen=True)
class Match:
    operation: Operation
    path_params: dict[str, str]


class Spec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.definitions: dict[str, Any] = document["definitions"]
        shared = document.get("parameters", {})
        self.operations: list[Operation] = []
        for template, item in document["paths"].items():
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                raw = dict(item[method])
                raw["parameters"] = [
                    self._resolve_param(p, shared) for p in raw.get("parameters", [])
                ]
                segments = tuple(s for s in template.split("/") if s)
                self.operations.append(
                    Operation(raw["operationId"], method.upper(), template, segments, raw)
                )
        self.by_id = {op.operation_id: op for op in self.operations}

    @staticmethod
    def _resolve_param(param: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
        ref = param.get("$ref")
        if ref is None:
            return param
        return dict(shared[ref.rsplit("/", 1)[-1]])

    @property
    def templates(self) -> list[str]:
        return list(self.document["paths"])

    def match(self, method: str, raw_path: str) -> tuple[Match | None, bool]:
        """(match, path_known): path_known is True when only the method did not fit."""
        parts = [p for p in raw_path.split("/") if p]
        path_known = False
        for op in self.operations:
            params = _match_segments(op.segments, parts)
            if params is None:
                continue
            path_known = True
            if op.method == method.upper():
                return Match(op, params), True
        return None, path_known

    def definition_of(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return self.definitions[ref.rsplit("/", 1)[-1]] if ref else schema

    def list_item_definition(self, op: Operation) -> dict[str, Any] | None:
        """The element schema of a list operation's `value` array."""
        schema = op.response(200).get("schema")
        if schema is None:
            return None
        value = self.definition_of(schema).get("properties", {}).get("value")
        return None if value is None else self.definition_of(value.get("items", {}))

    def has_path(self, definition: dict[str, Any], path: str) -> bool:
        """Whether `a/b/c` names a property chain in a definition."""
        return self.schema_at(definition, path) is not None

    def schema_at(self, definition: dict[str, Any], path: str) -> dict[str, Any] | None:
        """The (resolved) schema of the property `a/b/c` names; None if there is none."""
        schema: dict[str, Any] = definition
        for part in path.split("/"):
            props = self.definition_of(schema).get("properties", {})
            if part not in props:
                return None
            schema = props[part]
            if schema.get("type") == "array":
                schema = schema.get("items", {})
        return self.definition_of(schema)


def _match_segments(template: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    if len(parts) < len(template):
        return None
    params: dict[str, str] = {}
    for i, segment in enumerate(template):
        if segment.startswith("{"):
            name = segment[1:-1]
            last = i == len(template) - 1
            if last and name == "filePath":
                params[name] = unquote("/".join(parts[i:]))
                return params
            params[name] = unquote(parts[i])
        elif segment != parts[i]:
            return None
    return params if len(parts) == len(template) else None


@functools.lru_cache(maxsize=4)
def load_spec(path: str | None = None) -> Spec:
    chosen = path or os.environ.get("BATCH_EMULATOR_SPEC") or str(DEFAULT_SPEC)
    with open(chosen, encoding="utf-8") as handle:
        return Spec(json.load(handle))
