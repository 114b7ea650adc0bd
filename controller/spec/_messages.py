"""pydantic's validation errors → ``file:line:col: path: message`` lines people can act on.

pydantic reports *where* in the data a problem is (``loc``) and *what* it is (``type``),
but in Python terms: ``Input should be greater than or equal to 0`` at
``('spec', 'simulators')``. This module walks each ``loc`` through the parsed document to
find the YAML position and the field path as the user spells it, and rewrites the common
error types into short messages (``must be >= 0``, ``unknown field "simulatorz"; did you
mean "simulators"?``).

Positions follow one rule per kind of problem: a wrong value is reported at the value; a
missing field at the mapping that lacks it; an unknown field or a bad mapping key at the
key. Union members show up in ``loc`` as tags (``command.str``,
``command.tuple[str, ...]``); errors of one union are folded into one message, or into the
errors of the member that got furthest into the data.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from controller.spec import _models, _yaml
from controller.spec._errors import SpecError

_NOUNS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_SCALAR_TYPES = (bool, int, float)


@dataclass(frozen=True)
class _Located:
    """One pydantic error placed in the document."""

    segments: tuple[_yaml.Segment, ...]  # the data path that exists in the document
    union_at: tuple[_yaml.Segment, ...] | None  # where a union tag was met, if any
    at_key: bool  # the problem is the last segment's key, not its value
    missing: str | None  # name of a required field that is absent
    error: ErrorDetails


def translate(
    exc: ValidationError,
    model: type[BaseModel],
    document: _yaml.Document,
    file: str,
) -> list[SpecError]:
    """Turn one document's validation failure into positioned, readable errors.

    Args:
        exc: what ``model.model_validate(document.data)`` raised.
        model: the document model that was validated (used to list valid field names).
        document: the parsed document, with its positions.
        file: the display path.

    Returns:
        One error per problem, sorted and without duplicates.
    """
    located = [_locate(error, document.data) for error in exc.errors(include_url=False)]
    errors = {
        _to_spec_error(item, model, document, file, message) for item, message in _fold(located)
    }
    return sorted(errors)


def _locate(error: ErrorDetails, data: Any) -> _Located:
    segments: list[_yaml.Segment] = []
    union_at: tuple[_yaml.Segment, ...] | None = None
    at_key = False
    missing: str | None = None
    value = data
    loc = error["loc"]
    for index, step in enumerate(loc):
        if _contains(value, step):
            segments.append(step)
            value = value[step]
        elif step == "[key]":
            at_key = True
        elif error["type"] == "missing" and index == len(loc) - 1 and isinstance(step, str):
            missing = step
        elif union_at is None:
            # A union member's tag (``str``, ``tuple[str, ...]``): not part of the data.
            union_at = tuple(segments)
    return _Located(tuple(segments), union_at, at_key, missing, error)


def _contains(value: Any, step: str | int) -> bool:
    """Whether ``step`` leads one level deeper into the parsed data."""
    if isinstance(value, dict):
        return isinstance(step, str) and step in value
    if isinstance(value, list):
        return isinstance(step, int) and 0 <= step < len(value)
    return False


def _fold(located: Sequence[_Located]) -> list[tuple[_Located, str | None]]:
    """Merge the errors each union member reported into what the user needs to hear.

    ``command: 5`` fails as a string and as a list: one message, "must be a string or a
    list". ``command: [a, 1]`` fails as a string at ``command`` but as a list only at
    ``command[1]``: the list member got further, so only its error is kept. ``command:
    "a\0"`` is a string with a bad value and not a list: the member whose type matched
    speaks, and "must be a list" is dropped.
    """
    plain: list[tuple[_Located, str | None]] = [(i, None) for i in located if i.union_at is None]
    unions: dict[tuple[_yaml.Segment, ...], list[_Located]] = {}
    for item in located:
        if item.union_at is not None:
            unions.setdefault(item.union_at, []).append(item)
    for members in unions.values():
        deepest = max(len(m.segments) for m in members)
        best = [m for m in members if len(m.segments) == deepest]
        matched = [m for m in best if m.error["type"] not in _NOUNS]
        best = matched or best
        if len(best) > 1 and all(m.error["type"] in _NOUNS for m in best):
            nouns = list(dict.fromkeys(_NOUNS[m.error["type"]] for m in best))
            plain.append((best[0], "must be " + " or ".join(nouns)))
        else:
            plain.extend((m, None) for m in best)
    return plain


def _to_spec_error(
    item: _Located,
    model: type[BaseModel],
    document: _yaml.Document,
    file: str,
    message: str | None,
) -> SpecError:
    here = _yaml.format_path(item.segments)
    root = document.positions.get("", (1, 1))
    if item.missing is not None:
        path = _yaml.format_path((*item.segments, item.missing))
        line, column = document.positions.get(here, root)
    elif item.at_key or item.error["type"] == "extra_forbidden":
        path = here
        line, column = document.key_positions.get(here, document.positions.get(here, root))
    else:
        path = here
        line, column = document.positions.get(here, root)
    text = message if message is not None else _message(item, model)
    return SpecError(file, line, column, path, text)


def _message(item: _Located, model: type[BaseModel]) -> str:
    error = item.error
    kind = error["type"]
    handler = _HANDLERS.get(kind)
    if handler is not None:
        return handler(item, model)
    if kind in _NOUNS:
        return f"must be {_NOUNS[kind]}"
    return str(error["msg"]).replace("Input should be", "should be")


def _ctx(item: _Located, key: str) -> Any:
    return (item.error.get("ctx") or {}).get(key)


def _unknown_field(item: _Located, model: type[BaseModel]) -> str:
    name = str(item.error["loc"][-1])
    owner = _model_at(model, item.error["loc"][:-1])
    valid = [f.alias or n for n, f in owner.model_fields.items()] if owner else []
    return f'unknown field "{name}"' + _suggestion(name, valid, list_all=True)


def _suggestion(given: str, valid: Sequence[str], *, list_all: bool) -> str:
    """``; did you mean "x"?`` for a close match, else optionally the list of valid values."""

    def squash(text: str) -> str:
        return text.replace("_", "").replace("-", "").lower()

    exact = [v for v in valid if squash(v) == squash(given)]
    close = exact or difflib.get_close_matches(given, valid, n=1, cutoff=0.6)
    if close:
        return f'; did you mean "{close[0]}"?'
    if list_all and valid:
        return "; valid fields are " + ", ".join(valid)
    return ""


def _choices(item: _Located, _model: type[BaseModel]) -> str:
    expected = re.findall(r"'([^']*)'", str(_ctx(item, "expected") or ""))
    given = item.error.get("input")
    if len(expected) == 1:
        return f'must be "{expected[0]}"'
    hint = _suggestion(given, expected, list_all=False) if isinstance(given, str) else ""
    return "must be one of " + ", ".join(expected) + hint


def _pattern(item: _Located, _model: type[BaseModel]) -> str:
    pattern = _ctx(item, "pattern")
    given = item.error.get("input")
    if pattern == _models.NAME_PATTERN:
        return (
            f'"{given}" is not a valid name: use only letters, digits, - and _,'
            " at most 64 characters"
        )
    if pattern == _models.ENV_NAME_PATTERN:
        return (
            f'"{given}" is not a valid environment variable name: use letters, digits'
            " and _, not starting with a digit"
        )
    return f'"{given}" does not match the pattern {pattern}'


def _string_type(item: _Located, _model: type[BaseModel]) -> str:
    if isinstance(item.error.get("input"), _SCALAR_TYPES):
        return "must be a string; put quotes around it"
    return "must be a string"


def _too_short(item: _Located, _model: type[BaseModel]) -> str:
    size = _ctx(item, "min_length")
    return "must not be empty" if size == 1 else f"must be at least {size} long"


def _value_error(item: _Located, _model: type[BaseModel]) -> str:
    return str(item.error["msg"]).removeprefix("Value error, ")


def _bound(symbol: str, key: str) -> Callable[[_Located, type[BaseModel]], str]:
    return lambda item, _model: f"must be {symbol} {_ctx(item, key)}"


_HANDLERS: dict[str, Callable[[_Located, type[BaseModel]], str]] = {
    "missing": lambda _item, _model: "is required",
    "extra_forbidden": _unknown_field,
    "greater_than_equal": _bound(">=", "ge"),
    "greater_than": _bound(">", "gt"),
    "less_than_equal": _bound("<=", "le"),
    "less_than": _bound("<", "lt"),
    "int_from_float": lambda _item, _model: "must be a whole number",
    "string_type": _string_type,
    "string_pattern_mismatch": _pattern,
    "string_too_short": _too_short,
    "too_short": _too_short,
    "literal_error": _choices,
    "enum": _choices,
    "value_error": _value_error,
}


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc``, found through annotations."""
    current: Any = model
    for step in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {f.alias or n: f for n, f in current.model_fields.items()}
            if step not in fields:
                return None
            current = fields[str(step)].annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) in (tuple, list):
            current = get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the one type that matters."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
