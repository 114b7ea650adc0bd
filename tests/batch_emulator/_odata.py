"""The OData subset Batch list operations accept: `$filter` and `$select`.

Supported `$filter` grammar (what Batch documents for list pools/jobs/tasks/files):
comparisons `path op literal` with `eq ne gt ge lt le`, property paths with `/`
(`executionInfo/exitCode`), the functions `startswith(path,'x')` and `endswith(path,'x')`,
`and`, `or`, `not`, parentheses; literals are `'strings'` (`''` escapes a quote), numbers,
`true`/`false`/`null` and `datetime'2025-01-01T00:00:00Z'`.

String comparisons are case-sensitive. Whether the service folds case in filters is not
documented; being strict here means a filter that works against the emulator does not rely
on leniency the service may not have. Property paths are checked against the spec by the
caller (`Filter.paths`), so a typo answers 400 instead of silently matching nothing, and so
are the operators used on them (`Filter.uses`): Batch's filter tables allow only `eq` and
`ne` on state properties (enums), never an ordering or `startswith`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._wire import is_iso, parse_iso

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<dt>datetime'[^']*')|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<punct>[(),])|(?P<word>[A-Za-z_$][\w./$-]*))"
)
COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
FUNCTIONS = {"startswith", "endswith"}


class FilterError(ValueError):
    pass


Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Filter:
    text: str
    predicate: Predicate
    paths: frozenset[str]
    uses: frozenset[tuple[str, str]]  # (property path, operator or function name)

    def __call__(self, item: dict[str, Any]) -> bool:
        return self.predicate(item)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"unexpected text at {pos}: {text[pos : pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup
        raw = match.group(kind or "")
        if kind == "str":
            out.append(("lit", raw[1:-1].replace("''", "'")))
        elif kind == "dt":
            value = raw[len("datetime'") : -1]
            if not is_iso(value):
                raise FilterError(f"bad datetime literal {raw}")
            out.append(("lit", _Instant(parse_iso(value))))
        elif kind == "num":
            out.append(("lit", float(raw) if "." in raw else int(raw)))
        elif kind == "punct":
            out.append((raw, raw))
        else:
            lowered = raw.lower()
            literal = {"true": True, "false": False, "null": None}
            if lowered in literal:
                out.append(("lit", literal[lowered]))
            elif lowered in COMPARISONS | {"and", "or", "not"} | FUNCTIONS:
                out.append((lowered, lowered))
            else:
                out.append(("path", raw))
    return out


@dataclass(frozen=True)
class _Instant:
    ts: float


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.paths: set[str] = set()
        self.uses: set[tuple[str, str]] = set()

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind: str) -> Any:
        if self.peek() != kind:
            raise FilterError(f"expected {kind}, found {self.peek() or 'end of filter'}")
        value = self.tokens[self.pos][1]
        self.pos += 1
        return value

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()}")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == "or":
            self.take("or")
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda item: any(p(item) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.peek() == "and":
            self.take("and")
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda item: all(p(item) for p in parts))

    def negation(self) -> Predicate:
        if self.peek() == "not":
            self.take("not")
            inner = self.negation()
            return lambda item: not inner(item)
        return self.primary()

    def primary(self) -> Predicate:
        kind = self.peek()
        if kind == "(":
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            return inner
        if kind in FUNCTIONS:
            return self.function(self.take(kind))
        path = self.take("path")
        self.paths.add(path)
        op = self.peek()
        if op not in COMPARISONS:
            raise FilterError(f"expected a comparison after {path}")
        self.take(op)
        self.uses.add((path, op))
        literal = self.take("lit")
        return lambda item: _compare(_lookup(item, path), op, literal)

    def function(self, name: str) -> Predicate:
        self.take("(")
        path = self.take("path")
        self.paths.add(path)
        self.uses.add((path, name))
        self.take(",")
        literal = self.take("lit")
        self.take(")")
        if not isinstance(literal, str):
            raise FilterError(f"{name} needs a string literal")

        def check(item: dict[str, Any]) -> bool:
            value = _lookup(item, path)
            if not isinstance(value, str):
                return False
            return value.startswith(literal) if name == "startswith" else value.endswith(literal)

        return check


def _lookup(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _compare(value: Any, op: str, literal: Any) -> bool:
    if isinstance(literal, _Instant):
        if not isinstance(value, str) or not is_iso(value):
            return False
        value, literal = parse_iso(value), literal.ts
    if op == "eq":
        return bool(value == literal)
    if op == "ne":
        return bool(value != literal)
    if value is None or literal is None or isinstance(value, bool) != isinstance(literal, bool):
        return False
    try:
        return bool(_ORDER[op](value, literal))
    except TypeError:
        return False


def parse_filter(text: str) -> Filter:
    parser = _Parser(text)
    predicate = parser.parse()
    return Filter(text, predicate, frozenset(parser.paths), frozenset(parser.uses))


def parse_select(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise FilterError("empty property name in $select")
    return names


def apply_select(item: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {name: item[name] for name in names if name in item}
