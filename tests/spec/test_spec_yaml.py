"""The safe YAML reader: plain values as YAML 1.2 resolves them, positions, limits."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from controller.spec import FileResult, _yaml

Load = Callable[[str], FileResult]

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def parse_one(text: str) -> Any:
    stream = _yaml.parse(text, "f.yaml")
    assert stream.errors == ()
    (document,) = stream.documents
    return document.data


def error_lines(text: str) -> list[str]:
    return [str(error) for error in _yaml.parse(text, "f.yaml").errors]


class TestFormatPath:
    @pytest.mark.parametrize(
        ("segments", "expected"),
        [
            pytest.param((), "", id="root"),
            pytest.param(("spec", "simulators"), "spec.simulators", id="dotted"),
            pytest.param(
                ("spec", "registries", 0, "server"), "spec.registries[0].server", id="list"
            ),
            pytest.param(("spec", "env", "FOO"), "spec.env.FOO", id="dict-key"),
            pytest.param(
                ("metadata", "labels", "app.io/name"),
                'metadata.labels["app.io/name"]',
                id="key-with-dot-is-quoted",
            ),
            pytest.param(("a", ""), 'a[""]', id="empty-key-is-quoted"),
        ],
    )
    def test_spells_paths_as_users_read_them(
        self, segments: tuple[str | int, ...], expected: str
    ) -> None:
        assert _yaml.format_path(segments) == expected


class TestScalarResolution:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("plain", "plain", id="str"),
            pytest.param("'8'", "8", id="quoted-number-is-str"),
            pytest.param("8", 8, id="int"),
            pytest.param("-3", -3, id="negative-int"),
            pytest.param("+3", 3, id="plus-int"),
            pytest.param("0", 0, id="zero"),
            pytest.param("0x1f", 31, id="hex"),
            pytest.param("0o10", 8, id="yaml-1.2-octal"),
            pytest.param("-0o10", "-0o10", id="no-signed-octal-in-1.2"),
            pytest.param("0b101", "0b101", id="no-binary-in-1.2"),
            pytest.param("1_000", "1_000", id="no-underscores-in-1.2"),
            pytest.param("1:30", "1:30", id="no-sexagesimal-in-1.2"),
            pytest.param("2.5", 2.5, id="float"),
            pytest.param("1e3", 1000.0, id="exponent-without-dot"),
            pytest.param("1.0e+3", 1000.0, id="exponent"),
            pytest.param(".5", 0.5, id="leading-dot"),
            pytest.param(".inf", float("inf"), id="infinity"),
            pytest.param("-.Inf", float("-inf"), id="minus-infinity"),
            pytest.param("inf", "inf", id="bare-inf-is-str"),
            pytest.param("yes", "yes", id="yes-is-str"),
            pytest.param("no", "no", id="no-is-str"),
            pytest.param("On", "On", id="on-is-str"),
            pytest.param("Off", "Off", id="off-is-str"),
            pytest.param("y", "y", id="y-is-str"),
            pytest.param("true", True, id="true"),
            pytest.param("FALSE", False, id="false"),
            pytest.param("tRUE", "tRUE", id="mixed-case-true-is-str"),
            pytest.param("~", None, id="tilde"),
            pytest.param("null", None, id="null"),
            pytest.param("", None, id="empty"),
            pytest.param("2024-01-31", "2024-01-31", id="timestamp-kept-as-text"),
            pytest.param("!!str 5", "5", id="explicit-str"),
            pytest.param("!!int '5'", 5, id="explicit-int"),
        ],
    )
    def test_resolves_like_yaml_1_2(self, text: str, expected: object) -> None:
        value = parse_one(f"v: {text}\n")["v"]
        assert value == expected
        assert type(value) is type(expected)

    def test_nan_is_a_float(self) -> None:
        value = parse_one("v: .nan\n")["v"]
        assert isinstance(value, float)
        assert math.isnan(value)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "010",
                "010 has a leading zero, which is ambiguous: YAML 1.1 tools read it as 8;"
                " write 10 or 0o10",
                id="octal-looking",
            ),
            pytest.param(
                "-010",
                "-010 has a leading zero, which is ambiguous: YAML 1.1 tools read it as -8;"
                " write -10",
                id="negative",
            ),
            pytest.param(
                "00",
                "00 has a leading zero, which is ambiguous: YAML 1.1 tools read it as 0; write 0",
                id="zeros",
            ),
            pytest.param(
                "09", "09 has a leading zero, which is ambiguous; write 9", id="not-octal"
            ),
            pytest.param(
                "!!int 010",
                "010 has a leading zero, which is ambiguous: YAML 1.1 tools read it as 8;"
                " write 10 or 0o10",
                id="explicit-tag",
            ),
            pytest.param(
                "1" * 200,
                "1111111111111111111111111111111111111111111111111111"
                "11111111111… is too large a number",
                id="too-many-digits",
            ),
        ],
    )
    def test_a_leading_zero_or_a_huge_number_is_an_error(self, text: str, expected: str) -> None:
        assert error_lines(f"v: {text}\n") == [f"f.yaml:1:4: v: {expected}"]

    def test_converts_nested_collections(self) -> None:
        assert parse_one("a: [1, {b: [c]}]\nd: {}\n") == {"a": [1, {"b": ["c"]}], "d": {}}

    def test_aliases_are_allowed_and_expanded(self) -> None:
        assert parse_one("a: &x {k: v}\nb: *x\n") == {"a": {"k": "v"}, "b": {"k": "v"}}


class TestPositions:
    def test_records_every_value_and_key_one_based(self) -> None:
        stream = _yaml.parse("spec:\n  env:\n    FOO: bar\n  list: [a, b]\n", "f.yaml")
        (document,) = stream.documents
        assert dict(document.positions) == {
            "": (1, 1),
            "spec": (2, 3),
            "spec.env": (3, 5),
            "spec.env.FOO": (3, 10),
            "spec.list": (4, 9),
            "spec.list[0]": (4, 10),
            "spec.list[1]": (4, 13),
        }
        assert document.key_positions["spec.env.FOO"] == (3, 5)
        assert document.key_positions["spec.list"] == (4, 3)

    def test_positions_restart_in_each_document(self) -> None:
        stream = _yaml.parse("a: 1\n---\nb: 2\n", "f.yaml")
        assert [dict(d.positions) for d in stream.documents] == [
            {"": (1, 1), "a": (1, 4)},
            {"": (3, 1), "b": (3, 4)},
        ]


class TestDocuments:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("", [], id="empty-file"),
            pytest.param("# only a comment\n", [], id="comment-only"),
            pytest.param("---\n---\na: 1\n---\n", [{"a": 1}], id="empty-documents-skipped"),
            pytest.param("a: 1\n---\nb: 2\n", [{"a": 1}, {"b": 2}], id="two-documents"),
            pytest.param("--- 5\n", [5], id="scalar-document-kept-for-the-loader-to-refuse"),
        ],
    )
    def test_splits_and_skips_empty_documents(self, text: str, expected: list[object]) -> None:
        stream = _yaml.parse(text, "f.yaml")
        assert [d.data for d in stream.documents] == expected


class TestRefusals:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "a: 1\nb: 2\na: 3\n",
                ['f.yaml:3:1: a: duplicate key "a" (first set on line 1)'],
                id="duplicate-key-at-second",
            ),
            pytest.param(
                "spec:\n  env: {A: x, A: y}\n",
                ['f.yaml:2:15: spec.env.A: duplicate key "A" (first set on line 2)'],
                id="duplicate-key-nested",
            ),
            pytest.param(
                "1: x\n",
                ['f.yaml:1:1: key 1 is read as a number, not text; quote it: "1"'],
                id="int-key",
            ),
            pytest.param(
                "env:\n  true: x\n",
                ['f.yaml:2:3: env: key true is read as a boolean, not text; quote it: "true"'],
                id="boolean-key",
            ),
            pytest.param(
                "? [a, b]\n: x\n",
                ["f.yaml:1:3: a key must be a plain string, not a list or a mapping"],
                id="list-key",
            ),
            pytest.param(
                "base: &b {x: 1}\nother:\n  <<: *b\n",
                ["f.yaml:3:3: other: merge keys (<<) are not supported; write the fields out"],
                id="merge-key",
            ),
            pytest.param(
                "a: !!binary aGk=\n", ["f.yaml:1:4: a: unsupported tag !!binary"], id="binary"
            ),
            pytest.param("a: !!set {x}\n", ["f.yaml:1:4: a: unsupported tag !!set"], id="set"),
            pytest.param(
                "a: !!python/object/apply:os.system [ls]\n",
                ["f.yaml:1:4: a: unsupported tag !!python/object/apply:os.system"],
                id="python-object-never-constructed",
            ),
            pytest.param("a: !local x\n", ["f.yaml:1:4: a: unsupported tag !local"], id="custom"),
            pytest.param(
                "a: !!int twelve\n", ["f.yaml:1:4: a: 'twelve' is not a valid !!int"], id="bad-int"
            ),
            pytest.param(
                "a: &x [1, *x]\n",
                ["f.yaml:1:4: a[1]: an alias refers to a value that contains it"],
                id="recursive-alias",
            ),
        ],
    )
    def test_reports_at_the_offending_node(self, text: str, expected: list[str]) -> None:
        assert error_lines(text) == expected


class TestSyntaxErrors:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "a: 1\n b: 2\n",
                ["f.yaml:2:3: mapping values are not allowed here"],
                id="bad-indent",
            ),
            pytest.param(
                "a: [1, 2\n",
                ["f.yaml:2:1: expected ',' or ']', but got '<stream end>'"],
                id="unclosed-flow",
            ),
            pytest.param(
                'a: "open\n',
                ["f.yaml:2:1: found unexpected end of stream"],
                id="unclosed-quote",
            ),
            pytest.param(
                "a: \x07\n",
                ["f.yaml:1:4: special characters are not allowed"],
                id="control-character",
            ),
        ],
    )
    def test_one_error_at_the_problem_mark(self, text: str, expected: list[str]) -> None:
        assert error_lines(text) == expected

    def test_documents_before_a_syntax_error_are_still_read(self) -> None:
        stream = _yaml.parse("a: 1\n---\nb: [\n", "f.yaml")
        assert [d.data for d in stream.documents] == [{"a": 1}]
        assert len(stream.errors) == 1


class TestLimits:
    def test_billion_laughs_fails_fast(self, load: Load) -> None:
        started = time.perf_counter()
        result = load(BILLION_LAUGHS)
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0
        assert result.objects == ()
        ((error),) = result.errors
        assert "too many values: more than 10,000" in error.message

    def test_aliases_within_the_limit_are_fine(self) -> None:
        text = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\nb: [*a, *a, *a, *a, *a]\n'
        assert len(parse_one(text)["b"]) == 5

    @pytest.mark.parametrize(
        "depth",
        [
            pytest.param(_yaml.MAX_DEPTH + 1, id="just-past-the-limit"),
            pytest.param(100_000, id="deeper-than-python-recursion"),
        ],
    )
    def test_deep_nesting_is_refused_at_the_first_level_too_deep(self, depth: int) -> None:
        assert error_lines("[" * depth + "]" * depth) == [
            "f.yaml:1:65: nested too deeply (more than 64 levels)"
        ]

    def test_a_huge_flat_list_is_refused_without_composing_it_whole(self) -> None:
        text = "a: [" + "1," * 500_000 + "1]\n"
        started = time.perf_counter()
        (line,) = error_lines(text)
        assert time.perf_counter() - started < 2.0
        assert line.startswith("f.yaml:1:19999: too many values: more than 10,000")

    def test_nesting_up_to_the_limit_is_fine(self) -> None:
        depth = _yaml.MAX_DEPTH
        value = parse_one("[" * depth + "]" * depth)
        for _ in range(depth - 1):
            value = value[0]
        assert value == []
