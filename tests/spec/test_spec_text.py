"""Text the OS and Batch can carry: every string field refuses what they cannot.

A NUL byte in an env value once passed validation; ``posix_spawn`` then raised
``ValueError`` for every start of the simulation, and after a restart the daemon could not
start at all. Every string field is now checked where it is read, at its ``file:line:col``.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from controller.spec import FileResult, PoolDocument, SimulationDocument, SpecError
from controller.spec._text import LINE, TEXT

Load = Callable[[str], FileResult]

SIMULATION = """\
apiVersion: simfleet/v1
kind: Simulation
metadata:
  name: {name}
  labels: {{{label_key}: {label}}}
  annotations: {{note: {annotation}}}
spec:
  pool: {pool}
  image: {image}
  command: [python3, {argument}]
  env: {{A: {env}}}
  secretEnv: {{S: {{fromEnv: {secret}}}}}
  containerRunOptions: {options}
"""
POOL = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {{name: sims}}
spec:
  vmSize: {vm}
  nodeImage: {{sku: {sku}}}
  registries:
    - {{server: {server}, username: {user}, passwordFromEnv: P}}
"""
GOOD = {
    "name": "bad",
    "label_key": "app",
    "label": "x",
    "annotation": "y",
    "pool": "sims",
    "image": "img:1",
    "argument": "main.py",
    "env": "v",
    "secret": "S",
    "options": "--shm-size=1g",
    "vm": "standard_d2s_v5",
    "sku": '"2204"',
    "server": "a.io",
    "user": "u",
}
# The field path each placeholder's value has.
SIMULATION_FIELDS = {
    "name": "metadata.name",
    "label_key": "metadata.labels",
    "label": "metadata.labels.app",
    "annotation": "metadata.annotations.note",
    "pool": "spec.pool",
    "image": "spec.image",
    "argument": "spec.command[1]",
    "env": "spec.env.A",
    "secret": "spec.secretEnv.S.fromEnv",
    "options": "spec.containerRunOptions",
}
POOL_FIELDS = {
    "vm": "spec.vmSize",
    "sku": "spec.nodeImage.sku",
    "server": "spec.registries[0].server",
    "user": "spec.registries[0].username",
}
NUL = "must not contain a NUL byte (\\x00): no process or Batch request can carry it"
SURROGATE = (
    "must not contain a lone surrogate (\\ud800): it is not a character and cannot be"
    " written as UTF-8"
)


def document(template: str, field: str, value: str) -> str:
    return template.format(**{**GOOD, field: value})


def template_of(field: str) -> str:
    return SIMULATION if field in SIMULATION_FIELDS else POOL


def positions(field: str) -> tuple[int, int]:
    """Line and column where the placeholder's value starts, as editors count."""
    text = document(template_of(field), field, "@@")
    before = text[: text.index("@@")]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


class TestEveryStringField:
    def test_the_good_documents_load(self, load: Load) -> None:
        result = load(SIMULATION.format(**GOOD) + "---\n" + POOL.format(**GOOD))
        assert (result.errors, len(result.objects)) == ((), 2)

    @pytest.mark.parametrize("field", [*SIMULATION_FIELDS, *POOL_FIELDS])
    @pytest.mark.parametrize(
        ("value", "message"),
        [
            pytest.param('"a\\0b"', NUL, id="nul"),
            pytest.param('"\\ud800"', SURROGATE, id="lone-surrogate"),
            pytest.param(
                '"\\e[31mred"', "must not contain the control character \\x1b", id="escape"
            ),
            pytest.param('"a\\x7fb"', "must not contain the control character \\x7f", id="del"),
            pytest.param('"\\x85"', "must not contain the control character \\x85", id="c1"),
        ],
    )
    def test_refuses_what_no_process_can_carry(
        self, load: Load, field: str, value: str, message: str
    ) -> None:
        line, column = positions(field)
        errors = load(document(template_of(field), field, value)).errors
        if field == "label_key":
            message = "a key " + message  # keys are checked as YAML is read, at the key
        assert [(e.line, e.column, e.message) for e in errors] == [(line, column, message)]
        assert errors[0].path == {**SIMULATION_FIELDS, **POOL_FIELDS}[field]

    @pytest.mark.parametrize("field", ["env", "argument", "annotation"])
    def test_multi_line_text_may_hold_tabs_and_newlines(self, load: Load, field: str) -> None:
        result = load(document(SIMULATION, field, '"line one\\n\\tline two"'))
        assert result.errors == ()

    @pytest.mark.parametrize(
        "field", ["image", "options", "label", "pool", "name", "vm", "sku", "server"]
    )
    @pytest.mark.parametrize(
        ("value", "shown"), [('"a\\tb"', "a tab"), ('"a\\nb"', "a newline")], ids=["tab", "nl"]
    )
    def test_one_line_fields_refuse_tabs_and_newlines(
        self, load: Load, field: str, value: str, shown: str
    ) -> None:
        line, column = positions(field)
        errors = load(document(template_of(field), field, value)).errors
        # For a name, the one-line check speaks before the name's pattern would.
        assert [(e.line, e.column, e.message) for e in errors] == [
            (line, column, f"must be one line: it contains {shown}")
        ]

    @pytest.mark.parametrize("field", ["image", "vm", "sku", "server", "user"])
    def test_blank_values_are_refused(self, load: Load, field: str) -> None:
        line, column = positions(field)
        errors = load(document(template_of(field), field, '"  "')).errors
        assert [(e.line, e.column, e.message) for e in errors] == [
            (line, column, "must not be blank")
        ]


def _unchecked_strings(annotation: Any, where: str, checked: bool, seen: set[type]) -> list[str]:
    """Field paths whose type reaches a bare ``str`` without a :mod:`_text` check."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        guarded = checked or any(m is TEXT or m is LINE for m in metadata)
        return _unchecked_strings(base, where, guarded, seen)
    if origin is Literal:
        return []
    if origin in (Union, types.UnionType, dict, tuple, list):
        found: list[str] = []
        for arg in get_args(annotation):
            if arg is not Ellipsis:
                found += _unchecked_strings(arg, where, checked, seen)
        return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return []
        seen.add(annotation)
        return [
            problem
            for name, info in annotation.model_fields.items()
            for problem in _unchecked_strings(
                _with_metadata(info.annotation, info.metadata), f"{where}.{name}", False, seen
            )
        ]
    if annotation is str and not checked:
        return [where]
    return []


def _with_metadata(annotation: Any, metadata: list[Any]) -> Any:
    """pydantic moves a field's top-level ``Annotated`` metadata aside; put it back."""
    return Annotated[annotation, *metadata] if metadata else annotation  # type: ignore[valid-type]


class TestNoBareStrings:
    def test_every_string_field_is_a_checked_text_type(self) -> None:
        # A new ``str`` field must be Text, Line or NonBlank (or carry their check): the
        # checks are one validator applied everywhere, never a list of fields to remember.
        seen: set[type] = set()
        found = _unchecked_strings(PoolDocument, "Pool", False, seen)
        found += _unchecked_strings(SimulationDocument, "Simulation", False, seen)
        assert found == []

    def test_the_walk_finds_a_bare_string(self) -> None:
        class Probe(BaseModel):
            checked: Annotated[str, LINE]
            bare: dict[str, int]

        assert _unchecked_strings(Probe, "Probe", False, set()) == ["Probe.bare"]


class TestErrorsArePrintable:
    def test_control_characters_and_surrogates_are_escaped(self) -> None:
        error = SpecError("a\nb.yaml", 1, 2, "spec.env.\x1b[2J", "bad \ud800 \u202e here")
        assert str(error) == "a\\x0ab.yaml:1:2: spec.env.\\x1b[2J: bad \\ud800 \\u202e here"
        str(error).encode("utf-8")  # no lone surrogate left to refuse encoding

    def test_a_key_with_an_escape_sequence_is_refused_at_the_key(self, load: Load) -> None:
        (error,) = load(document(SIMULATION, "env", "v") + '  "\\e[31mred": 1\n').errors
        assert str(error) == (
            "specs/t.yaml:14:3: spec: a key must not contain the control character \\x1b"
        )

    def test_an_unknown_field_is_quoted_escaped(self, load: Load) -> None:
        (error,) = load(document(SIMULATION, "env", "v") + '  "a\\u202eb": 1\n').errors
        assert error.message.startswith('unknown field "a\\u202eb"')
