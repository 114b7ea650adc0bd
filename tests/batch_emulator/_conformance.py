"""Checking bodies against BatchService.json: request validation and the test-mode audit.

Swagger 2.0 definitions become JSON Schema (draft 4, which Swagger 2.0 is built on):

* `$ref`s stay `$ref`s into the same document's `definitions`; `x-ms-*`, `description`,
  `default` and `example` keys are dropped.
* Strictness: every object that lists `properties` gets `additionalProperties: false`
  unless the spec says otherwise (it does so for two free-form maps). The spec is
  generated from TypeSpec models that list every wire field, so an unknown property is
  a bug: a typo in a request, or the emulator inventing a field in a response.
* `readOnly` properties are server-owned: allowed in responses, rejected in requests
  (and dropped from `required` there). The 2025-06-01 spec has no `x-nullable`; null is
  therefore never valid.
* Enums are closed in both directions even where the spec marks them
  `modelAsString` (extensible): the emulator must only send known values, and a client
  sending an unknown one is almost certainly wrong. Enum values compare exactly: Batch
  sends lowercase (`running`) and the SDK's enums are lowercase too.
* Formats are checked: `date-time` (ISO 8601 with zone), `duration` (ISO 8601),
  `int32`/`int64` ranges (and `int64` carried as a digit string, e.g. `contentLength`),
  `uri`. One `uri` is looser than its format says: a container registry's
  `registryServer`, which Batch and Microsoft's own examples give as a bare server name
  (`myacr.azurecr.io`, `docker.io`); it accepts a host (optionally with a port and a
  path) with or without a scheme.
* `allOf` (BatchManagement.json's resources inherit `id`, `name`, `type`, `etag` from
  `AzureProxyResource`) is flattened into the definition before the conversion, so that
  `additionalProperties: false` sees the inherited properties as the definition's own.

Responses are also checked for the headers the spec declares for that status
(`request-id` always, `ETag`/`Last-Modified`/`DataServiceId` on single-resource answers;
`client-request-id` when the request carried one).
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from ._spec import Operation, Spec
from ._wire import DURATION_PATTERN, is_iso

#: Definitions whose property's format is looser than the spec writes it (see above).
_FORMAT_OVERRIDES = {("ContainerRegistryReference", "registryServer"): "registry-server"}
_REGISTRY_SERVER = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?[A-Za-z0-9.-]+(?::\d+)?(?:/\S*)?$")
_DROP = {"description", "default", "example", "readOnly", "title", "x-nullable"}
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# Headers a list answer does not carry: they describe one resource.
RESOURCE_HEADERS = {"etag", "last-modified", "dataserviceid"}


@dataclass(frozen=True)
class Violation:
    direction: str  # "request", "response", or "emulator" (a bug in the emulator itself)
    operation: str
    status: int | None
    messages: tuple[str, ...]

    def __str__(self) -> str:
        where = f" {self.status}" if self.status is not None else ""
        return f"{self.direction} {self.operation}{where}: " + "; ".join(self.messages)


def _convert(node: Any, request: bool) -> Any:
    if isinstance(node, list):
        return [_convert(item, request) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:  # draft 4 ignores siblings of $ref; keep it alone
        return {"$ref": node["$ref"]}
    out: dict[str, Any] = {}
    for name, value in node.items():
        if name in _DROP or name.startswith("x-ms-"):
            continue
        if name == "properties":
            props = {
                prop: _convert(schema, request)
                for prop, schema in value.items()
                if not (request and schema.get("readOnly"))
            }
            out["properties"] = props
        else:
            out[name] = _convert(value, request)
    if "properties" in node:
        out.setdefault("type", "object")
        out.setdefault("additionalProperties", False)
        if "required" in out:
            kept = [r for r in out["required"] if r in out["properties"]]
            if kept:
                out["required"] = kept
            else:
                del out["required"]
    fmt = node.get("format")
    if fmt in _INT_RANGES and node.get("type") == "integer":
        out["minimum"], out["maximum"] = _INT_RANGES[fmt]
    return out


@functools.lru_cache(maxsize=2)
def schema_book(spec: Spec) -> SchemaBook:
    return SchemaBook(spec)


def _date_time(value: object) -> bool:
    return not isinstance(value, str) or is_iso(value)


def _duration(value: object) -> bool:
    return not isinstance(value, str) or re.match(DURATION_PATTERN, value) is not None


def _int64(value: object) -> bool:
    return not isinstance(value, str) or re.fullmatch(r"-?\d+", value) is not None


def _uri(value: object) -> bool:
    return not isinstance(value, str) or re.match(r"^[a-z][a-z0-9+.-]*://\S+$", value) is not None


def _registry_server(value: object) -> bool:
    return not isinstance(value, str) or _REGISTRY_SERVER.match(value) is not None


def _format_checker() -> FormatChecker:
    """Only the formats Batch uses; non-strings pass (the `type` keyword judges those)."""
    checker = FormatChecker(formats=())
    for name, check in (
        ("date-time", _date_time),
        ("duration", _duration),
        ("int64", _int64),
        ("uri", _uri),
        ("registry-server", _registry_server),
    ):
        checker.checks(name)(check)
    return checker


def _flattened(definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions with every ``allOf`` of ``$ref``s merged into the definition."""

    def flat(name: str) -> dict[str, Any]:
        schema = dict(definitions[name])
        parents = schema.pop("allOf", [])
        properties: dict[str, Any] = {}
        required: list[str] = []
        for parent in parents:
            inherited = flat(parent["$ref"].rsplit("/", 1)[-1])
            properties.update(inherited.get("properties", {}))
            required += inherited.get("required", [])
        if not parents:
            return schema
        schema["properties"] = {**properties, **schema.get("properties", {})}
        if required or "required" in schema:
            schema["required"] = [*required, *schema.get("required", [])]
        return schema

    return {name: flat(name) for name in definitions}


def _override_formats(definitions: dict[str, Any]) -> dict[str, Any]:
    for (name, prop), fmt in _FORMAT_OVERRIDES.items():
        target = definitions.get(name, {}).get("properties", {}).get(prop)
        if target is not None:
            target["format"] = fmt
    return definitions


class SchemaBook:
    """Validators for the spec's definitions, one set per direction."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        flat = _flattened(spec.definitions)
        self._definitions = {
            mode: _override_formats({name: _convert(schema, mode) for name, schema in flat.items()})
            for mode in (True, False)
        }
        self._checker = _format_checker()
        self._validators: dict[tuple[str, bool], Draft4Validator] = {}

    def validator(self, ref: str, request: bool) -> Draft4Validator:
        found = self._validators.get((ref, request))
        if found is None:
            root = {"$ref": ref, "definitions": self._definitions[request]}
            found = Draft4Validator(root, format_checker=self._checker)
            self._validators[(ref, request)] = found
        return found

    def errors(
        self, schema: dict[str, Any], instance: Any, *, request: bool
    ) -> list[ValidationError]:
        if "$ref" in schema:
            validator = self.validator(schema["$ref"], request)
        else:
            root = copy.deepcopy(_convert(schema, request))
            root["definitions"] = self._definitions[request]
            validator = Draft4Validator(root, format_checker=self._checker)
        return sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))

    def selected(self, ref: str, pageable: bool) -> dict[str, Any]:
        """The answer schema when `$select` trimmed the object(s): nothing is required."""
        definitions = self._definitions[False]
        name = ref.rsplit("/", 1)[-1]
        if pageable:
            items_ref = definitions[name]["properties"]["value"]["items"]["$ref"]
            relaxed = dict(definitions[items_ref.rsplit("/", 1)[-1]])
            relaxed.pop("required", None)
            return {
                **definitions[name],
                "properties": {
                    **definitions[name]["properties"],
                    "value": {"type": "array", "items": relaxed},
                },
            }
        relaxed = dict(definitions[name])
        relaxed.pop("required", None)
        return relaxed

    # -- per operation ------------------------------------------------------------------

    def request_errors(self, op: Operation, body: Any) -> list[ValidationError]:
        param = op.body_param
        if param is None:
            return []
        return self.errors(param["schema"], body, request=True)

    def response_problems(
        self,
        op: Operation,
        status: int,
        headers: dict[str, str],
        body: Any,
        *,
        has_body: bool,
        client_request_id: bool,
        selected: bool = False,
    ) -> list[str]:
        declared = op.raw["responses"]
        problems: list[str] = []
        if status == 304:
            return problems  # "not modified" carries neither body nor resource headers
        if str(status) not in declared and status < 400:
            problems.append(f"status {status} is not a documented success code")
        response = op.response(status)
        schema = response.get("schema")
        binary = status < 400 and "application/octet-stream" in op.raw.get("produces", [])
        if binary or op.method == "HEAD":
            pass  # file content, not JSON; HEAD answers never carry a body
        elif schema is None:
            if has_body:
                problems.append("the spec declares no body for this answer, but one was sent")
        elif not has_body:
            problems.append("the spec declares a body for this answer, but none was sent")
        else:
            if selected and status == 200 and "$ref" in schema:
                schema = self.selected(schema["$ref"], op.pageable)
            problems.extend(describe(e) for e in self.errors(schema, body, request=False))
        lowered = {name.lower() for name in headers}
        for name in response.get("headers", {}):
            low = name.lower()
            if low == "client-request-id" and not client_request_id:
                continue
            if low in RESOURCE_HEADERS and op.pageable:
                continue
            if low not in lowered:
                problems.append(f"missing response header {name}")
        return problems


def describe(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


def batch_error_for(error: ValidationError) -> tuple[str, dict[str, str]]:
    """Map a request-body schema error to the Batch error code the service would use."""
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = f"{path}.{missing[0]}" if path and missing else (missing[0] if missing else path)
        return "MissingRequiredProperty", {"PropertyName": name}
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        name = f"{path}.{extra[0]}" if path and extra else (extra[0] if extra else path)
        return "UnsupportedProperty", {"PropertyName": name}
    return "InvalidPropertyValue", {
        "PropertyName": path or "(body)",
        "PropertyValue": str(error.instance)[:200],
        "Reason": error.message[:200],
    }
