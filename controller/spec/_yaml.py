"""Safe YAML → plain data, remembering where every value came from.

Errors must name the line and column of the offending value, but the objects PyYAML
constructs forget their origin. So this module asks PyYAML only to *compose* the node graph
(``yaml.compose_all`` with the ``SafeLoader``: every node keeps its ``start_mark`` and no
object is ever built from a tag) and converts the nodes itself into dicts, lists, ``str``,
``int``, ``float``, ``bool`` and ``None``, recording the position of every value under its
field path (see :func:`format_path`).

Plain scalars resolve as YAML 1.2's core schema says (the schema editors, linters and
Kubernetes' YAML reader use), not as PyYAML's YAML 1.1 default: ``yes``, ``no``, ``on``
and ``off`` are strings (so ``suspend: yes`` is refused instead of being read as true),
``1:30`` is a string (no base-60), ``0o10`` is 8 and ``0x1f`` is 31, ``1e3`` is a number,
``1_000`` and dates are strings. A decimal with a leading zero (``010``) is an error: YAML
1.1 tools read it as the octal 8 and YAML 1.2 tools as 10, so whatever simfleet picked,
someone would be surprised. ``!!str``, ``!!int``, ``!!float``, ``!!bool`` and ``!!null``
may be written explicitly; anything else (``!!binary``, ``!!set``, ``!!python/...``, custom
``!tags``) is an error, not an object.

Limits, against hostile or accidental input:

- Aliases are allowed, but every value visited counts, each time an alias is used again;
  past :data:`MAX_NODES` the document is refused. The classic "billion laughs" stops after
  10,000 steps instead of expanding to 10⁹ strings. Recursive aliases are refused.
- The same count and a nesting limit (:data:`MAX_DEPTH`) already apply while composing
  (:class:`_LimitedLoader`, a ``SafeLoader`` subclass), so a 1 MiB flow list is not
  composed whole (seconds of pure-Python work) and a million ``[`` do not exhaust the
  composer's recursion.
- Keys must be strings, and a key may appear once per mapping: a duplicate is reported at
  its second occurrence, where PyYAML would silently keep the last value.
- Merge keys (``<<: *base``) are **refused**: a spec should say what it means field by
  field, and merged fields would have no position of their own to report errors at.

This module knows nothing about simfleet's models; :mod:`controller.spec._loading` turns
the data into models.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from yaml.events import Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.spec import _text
from controller.spec._errors import SpecError, shorten

#: Values one document may visit while being converted, aliases counted at every use.
MAX_NODES: Final = 10_000
#: How deeply mappings and lists may nest.
MAX_DEPTH: Final = 64

Segment = str | int
"""One step of a field path: a mapping key or a list index."""

Position = tuple[int, int]
"""A 1-based ``(line, column)``, as editors count."""

_TOO_MANY: Final = (
    f"too many values: more than {MAX_NODES:,} (aliases count every time they are used);"
    " the document is refused"
)
_TOO_DEEP: Final = f"nested too deeply (more than {MAX_DEPTH} levels)"
_TAG = "tag:yaml.org,2002:"
_PLAIN_KEY = re.compile(r"[^.\[\]\"]+")
_READ_AS: Final = {
    _TAG + "int": "a number",
    _TAG + "float": "a number",
    _TAG + "bool": "a boolean",
    _TAG + "null": "null",
}
_DIGITS: Final = "0123456789"
#: More digits than any count or duration needs; ``int()`` refuses past 4,300 anyway.
_MAX_DIGITS: Final = 100
#: YAML 1.2 core schema resolution (spec 1.2.2, section 10.3.2): tag, pattern, and the
#: first characters a plain scalar of that tag can start with. Integers come before
#: floats, which match them too. Merge keys resolve only so they can be refused.
_CORE_SCHEMA: Final = (
    (_TAG + "null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    (_TAG + "bool", r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    (_TAG + "int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", list("-+" + _DIGITS)),
    (
        _TAG + "float",
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN",
        list("-+." + _DIGITS),
    ),
    (_TAG + "merge", r"<<", ["<"]),
)


class _ScalarError(ValueError):
    """A scalar that cannot be read, with the message to show for it."""


def _construct_null(node: ScalarNode) -> None:
    if node.value not in ("", "~", "null", "Null", "NULL"):
        raise ValueError(node.value)


def _construct_bool(node: ScalarNode) -> bool:
    value: str = node.value
    if value.lower() not in ("true", "false"):
        raise ValueError(value)
    return value.lower() == "true"


def _construct_int(node: ScalarNode) -> int:
    """A YAML 1.2 integer; a decimal with a leading zero is refused, not guessed at."""
    text: str = node.value
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    digits = text.lstrip("+-")
    if len(digits) > _MAX_DIGITS:
        raise _ScalarError(f"{shorten(text)} is too large a number")
    if len(digits) > 1 and digits.startswith("0"):
        raise _ScalarError(_leading_zero(text, digits))
    return int(text)


def _leading_zero(text: str, digits: str) -> str:
    """Why ``010`` is refused, and the two spellings that say what was meant."""
    negative = text.startswith("-")
    decimal = shorten(("-" if negative else "") + (digits.lstrip("0") or "0"))
    message = f"{shorten(text)} has a leading zero, which is ambiguous"
    if not set(digits) <= set("01234567") or len(digits) > 20:
        return f"{message}; write {decimal}"
    message += f": YAML 1.1 tools read it as {int(text, 8)}; write {decimal}"
    # The core schema has no negative octal: -0o10 would be a string.
    return message if negative or decimal == "0" else f"{message} or 0o{decimal}"


def _construct_float(node: ScalarNode) -> float:
    text: str = node.value.lower()
    if text.lstrip("+-") == ".inf":
        return -math.inf if text.startswith("-") else math.inf
    if text == ".nan":
        return math.nan
    return float(text)


#: The constructors of the core schema's scalar tags (strings aside).
_CONSTRUCTORS: Final[dict[str, Callable[[ScalarNode], Any]]] = {
    _TAG + "null": _construct_null,
    _TAG + "bool": _construct_bool,
    _TAG + "int": _construct_int,
    _TAG + "float": _construct_float,
}


def format_path(segments: Sequence[Segment]) -> str:
    """Spell a field path as users read it: ``spec.env.FOO``, ``spec.registries[0].server``.

    A key that would be ambiguous in that spelling (one holding ``.``, ``[``, ``]`` or ``"``,
    or an empty key) is written as a quoted index: ``metadata.labels["app.io/name"]``.

    Args:
        segments: mapping keys and list indices from the document root.

    Returns:
        The dotted path; ``""`` for the document root.
    """
    text = ""
    for segment in segments:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif _PLAIN_KEY.fullmatch(segment):
            text += f".{segment}" if text else segment
        else:
            text += f"[{json.dumps(segment)}]"
    return text


@dataclass(frozen=True)
class Document:
    """One YAML document as plain data, with the position of every value and every key.

    Attributes:
        data: the converted value (usually a dict).
        positions: field path → position of its value, for every node; ``""`` is the root.
        key_positions: field path → position of the key that introduced it.
    """

    data: Any
    positions: Mapping[str, Position] = field(default_factory=dict)
    key_positions: Mapping[str, Position] = field(default_factory=dict)


@dataclass(frozen=True)
class Stream:
    """Every document of one file, and every problem found while reading them."""

    documents: tuple[Document, ...]
    errors: tuple[SpecError, ...]


def parse(text: str, file: str) -> Stream:
    """Read every document of ``text``; never raises on bad input.

    Documents that are empty (``---`` followed by nothing or only comments) are skipped.

    Args:
        text: the file's content.
        file: the display path, used in errors.

    Returns:
        The documents read and the errors found. A syntax error ends the stream: documents
        before it are returned, so their own errors can be reported too.
    """
    documents: list[Document] = []
    errors: list[SpecError] = []
    nodes = yaml.compose_all(text, Loader=_LimitedLoader)
    while True:
        try:
            node = next(nodes)
        except StopIteration:
            break
        except (yaml.YAMLError, _LimitExceededError) as exc:
            errors.append(_stream_error(exc, text, file))
            break
        converter = _Converter(file)
        try:
            data = converter.convert(node, ())
        except _LimitExceededError as exc:
            errors.append(exc.error(file))
            continue
        errors.extend(converter.errors)
        if data is not None:
            documents.append(Document(data, converter.positions, converter.key_positions))
    return Stream(tuple(documents), tuple(errors))


def _stream_error(exc: yaml.YAMLError | _LimitExceededError, text: str, file: str) -> SpecError:
    """The one error that ends a stream: a syntax error, a bad character or a limit."""
    if isinstance(exc, _LimitExceededError):
        return exc.error(file)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return SpecError(file, line, column, "", exc.problem or exc.context or "invalid YAML")
    if isinstance(exc, yaml.reader.ReaderError):
        line, column = _position_of(text, int(exc.position))
        return SpecError(file, line, column, "", str(exc.reason))
    return SpecError(file, 1, 1, "", str(exc))


class _LimitedLoader(yaml.SafeLoader):
    """The SafeLoader, refusing too many or too deeply nested nodes while composing.

    Conversion enforces the same limits (and counts alias expansion, which composing does
    not see), but checking here as well means a 1 MiB flow list of half a million numbers
    stops after 10,000 of them instead of costing seconds of composing, and a million ``[``
    stop at level 64 instead of exhausting the composer's recursion.

    Its resolver is YAML 1.2's core schema (:data:`_CORE_SCHEMA`), not the SafeLoader's.
    """

    # PyYAML keeps resolvers in a mutable class attribute; this class gets its own.
    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.composed = 0
        self.depth = 0

    def compose_document(self) -> Node | None:
        self.composed = 0
        return super().compose_document()

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self.composed += 1
        if self.composed > MAX_NODES:
            raise _LimitExceededError(self._here(), _TOO_MANY)
        if self.depth >= MAX_DEPTH:
            raise _LimitExceededError(self._here(), _TOO_DEEP)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _here(self) -> Position:
        event: Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        mark = event.start_mark
        return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


for _tag, _pattern, _first in _CORE_SCHEMA:
    _LimitedLoader.add_implicit_resolver(_tag, re.compile(f"^(?:{_pattern})$"), _first)


def _position_of(text: str, offset: int) -> Position:
    """Line and column of a character offset into ``text``."""
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def _mark(node: Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _LimitExceededError(Exception):
    """Raised to abandon a document (or, while composing, the stream) that breaks a limit."""

    def __init__(self, position: Position, message: str, path: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.message = message
        self.path = path

    def error(self, file: str) -> SpecError:
        return SpecError(file, *self.position, self.path, self.message)


class _Converter:
    """Converts one document's node graph, counting nodes and collecting errors."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.visited = 0
        self.active: set[int] = set()
        self.positions: dict[str, Position] = {}
        self.key_positions: dict[str, Position] = {}
        self.errors: list[SpecError] = []

    def error(self, node: Node, path: Sequence[Segment], message: str) -> None:
        line, column = _mark(node)
        self.errors.append(SpecError(self.file, line, column, format_path(path), message))

    def abort(self, node: Node, path: Sequence[Segment], message: str) -> _LimitExceededError:
        return _LimitExceededError(_mark(node), message, format_path(path))

    def convert(self, node: Node, path: tuple[Segment, ...]) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise self.abort(node, path, _TOO_MANY)
        if len(path) >= MAX_DEPTH:
            raise self.abort(node, path, _TOO_DEEP)
        if id(node) in self.active:
            raise self.abort(node, path, "an alias refers to a value that contains it")
        self.positions.setdefault(format_path(path), _mark(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == _TAG + "seq":
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode) and node.tag == _TAG + "map":
                return self.mapping(node, path)
        finally:
            self.active.discard(id(node))
        self.error(node, path, f"unsupported tag {_short_tag(node.tag)}")
        return None

    def scalar(self, node: ScalarNode, path: tuple[Segment, ...]) -> Any:
        tag = node.tag
        if tag in (_TAG + "str", _TAG + "timestamp"):
            return node.value
        construct = _CONSTRUCTORS.get(tag)
        if construct is None:
            self.error(node, path, f"unsupported tag {_short_tag(tag)}")
            return None
        try:
            return construct(node)
        except _ScalarError as exc:
            self.error(node, path, str(exc))
        except ValueError:
            self.error(node, path, f"{shorten(node.value)!r} is not a valid {_short_tag(tag)}")
        return None

    def mapping(self, node: MappingNode, path: tuple[Segment, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if key is None:
                continue
            key_path = (*path, key)
            if key in first_seen:
                line, _ = first_seen[key]
                message = f'duplicate key "{shorten(key)}" (first set on line {line})'
                self.error(key_node, key_path, message)
                continue
            first_seen[key] = _mark(key_node)
            self.key_positions[format_path(key_path)] = _mark(key_node)
            result[key] = self.convert(value_node, key_path)
        return result

    def key(self, node: Node, path: tuple[Segment, ...]) -> str | None:
        self.visited += 1
        if isinstance(node, ScalarNode) and node.tag == _TAG + "merge":
            self.error(node, path, "merge keys (<<) are not supported; write the fields out")
            return None
        if not isinstance(node, ScalarNode):
            self.error(node, path, "a key must be a plain string, not a list or a mapping")
            return None
        if node.tag != _TAG + "str" and not node.value:
            self.error(node, path, "a key must not be empty")
            return None
        if node.tag != _TAG + "str":
            read_as = _READ_AS.get(node.tag, _short_tag(node.tag))
            shown = shorten(node.value)
            message = f'key {shown} is read as {read_as}, not text; quote it: "{shown}"'
            self.error(node, path, message)
            return None
        value: str = node.value
        unfit = _text.problem(value, one_line=True)
        if unfit is not None:
            self.error(node, path, f"a key {unfit}")
            return None
        return value


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
