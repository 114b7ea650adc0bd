"""Typed values parsed once from spec text: durations, int-or-percent, ``auto`` counts.

Spec files say ``10s``, ``25%`` and ``auto``; everything past :mod:`controller.spec` sees a
``timedelta``, a :class:`Percent` or :data:`AUTO`, and never parses text again. Each type
is an ``Annotated`` pydantic type so the model fields stay one line and the JSON Schema
shows users the accepted spelling.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from controller.spec._errors import shorten

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: Beyond this many seconds a value is infinitely long as far as any check here goes;
#: ``float()`` of a larger ``int`` would raise ``OverflowError``.
_HUGE: Final = 1e300
#: The largest count a spec may write (simulators, node counts, a rollout's surge):
#: far above any Batch quota, far below anything that overflows a request's int32.
MAX_COUNT: Final = 100_000


class _NotADurationError(ValueError):
    """``value`` is not spelled as a duration; the caller says what would be."""


def _not_a_duration(value: object, spelling: str) -> str:
    if isinstance(value, str):
        return f"{shorten(value)!r} is not a duration; {spelling}"
    return f"must be a duration; {spelling}"


def _seconds(value: object) -> float:
    """The seconds ``value`` spells, possibly negative, infinite or NaN.

    Raises:
        _NotADurationError: ``value`` is not spelled as a duration. Never any other
            exception: huge numbers come out as infinity, for the caller to refuse.
    """
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool):
        raise _NotADurationError
    if isinstance(value, int):
        if abs(value) >= _HUGE:
            return math.inf if value > 0 else -math.inf
        return float(value)
    if isinstance(value, float):
        return value
    if not isinstance(value, str):
        raise _NotADurationError
    text = value.strip().lower()
    body = text.removeprefix("-")
    sign = -1.0 if body != text else 1.0
    if _NUMBER.fullmatch(body):
        return sign * float(body)
    if body and _DURATION_PART.sub("", body) == "":
        parts = _DURATION_PART.findall(body)
        return sign * sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    raise _NotADurationError


def parse_duration(value: object) -> timedelta:
    """Parse ``90``, ``90s``, ``5m``, ``1h30m`` or ``150d`` into a ``timedelta``.

    A bare number means seconds. Fields bound their durations with :class:`DurationRange`;
    this function only refuses what no ``timedelta`` can be.

    Raises:
        ValueError: with a message fit for users, for anything that is not a duration,
            negative, infinite, NaN, or too long for a ``timedelta``. Never any other
            exception, whatever ``value`` is.
    """
    try:
        seconds = _seconds(value)
    except _NotADurationError:
        spelling = "use a number with a unit: 10s, 5m, 1h, 150d"
        raise ValueError(_not_a_duration(value, spelling)) from None
    if math.isnan(seconds):
        raise ValueError("must be a duration, not NaN")
    if seconds < 0:
        raise ValueError("must not be negative")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"is too long: at most {timedelta.max.days:,} days") from None


def format_duration(value: timedelta) -> str:
    """The shortest spelling of ``value`` that :func:`parse_duration` reads back."""
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class DurationRange:
    """A duration field's type, bounded: ``Annotated[timedelta, DurationRange(lo, hi)]``.

    Every duration field has both bounds, so no value can make date arithmetic downstream
    overflow (``now + 900000000d`` does) and no back-off can be zero. A value outside them
    (negative, ``.inf``, ``.nan``, ``1e15``, ``999999999999d``) is an error naming the
    range. The JSON Schema shows the range too.

    Attributes:
        minimum: the shortest value allowed.
        maximum: the longest value allowed.
        why: appended to the error, after a colon, when the limit has a reason to give.
    """

    minimum: timedelta
    maximum: timedelta
    why: str = ""

    def parse(self, value: object) -> timedelta:
        """``value`` as a ``timedelta`` within the range, or ``ValueError`` saying why not."""
        try:
            seconds = _seconds(value)
        except _NotADurationError:
            spelling = f"use a number with a unit (ms, s, m, h, d) {self.span()}, like 10s"
            raise ValueError(_not_a_duration(value, spelling)) from None
        # NaN compares false both ways, so it fails this test as it should.
        if not self.minimum.total_seconds() <= seconds <= self.maximum.total_seconds():
            raise ValueError(self.describe() + (f": {self.why}" if self.why else ""))
        return timedelta(seconds=seconds)

    def span(self) -> str:
        """``between 1s and 1d``: the range, as errors and the schema state it."""
        shortest, longest = format_duration(self.minimum), format_duration(self.maximum)
        return f"between {shortest} and {longest}"

    def describe(self) -> str:
        """``must be between 1s and 1d``."""
        return f"must be {self.span()}"

    def __get_pydantic_core_schema__(
        self, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(
                format_duration, return_schema=core_schema.str_schema()
            ),
        )

    def __get_pydantic_json_schema__(
        self, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": ["string", "number"],
            "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$",
            "minimum": self.minimum.total_seconds(),
            "maximum": self.maximum.total_seconds(),
            "description": (
                f"A duration: 10s, 5m, 1h30m, 150d (a bare number is seconds); {self.span()}."
            ),
        }


@dataclass(frozen=True, slots=True)
class Percent:
    """A percentage of a simulation's desired count, as in ``maxSurge: 25%``."""

    value: int

    def __str__(self) -> str:
        return f"{self.value}%"


def _count(value: int) -> int:
    """A count within ``0 … MAX_COUNT``, or ``ValueError``."""
    if value < 0:
        raise ValueError("must be >= 0")
    if value > MAX_COUNT:
        raise ValueError(f"must be <= {MAX_COUNT}")
    return value


def parse_int_or_percent(value: object) -> int | Percent:
    """Parse ``2`` or ``"25%"``; negative values and percentages over 100 are refused."""
    if isinstance(value, Percent):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a whole number or a percentage such as 25%")
    if isinstance(value, int):
        return _count(value)
    if isinstance(value, str):
        text = value.strip()
        # ASCII digits only ("²".isdigit() is true), and few enough that int() is cheap.
        if re.fullmatch(r"[0-9]+%", text):
            if len(text) > 4 or int(text[:-1]) > 100:
                raise ValueError("a percentage must be at most 100%")
            return Percent(int(text[:-1]))
        if re.fullmatch(r"[0-9]+", text):
            return _count(int(text)) if len(text) <= 9 else _count(MAX_COUNT + 1)
        value = shorten(value)
    raise ValueError(f"{value!r} is neither a whole number nor a percentage such as 25%")


IntOrPercent = Annotated[
    int | Percent,
    BeforeValidator(parse_int_or_percent),
    PlainSerializer(lambda v: str(v) if isinstance(v, Percent) else v),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
                {"type": "string", "pattern": r"^[0-9]+%$"},
            ],
            "description": "A count or a percentage of the desired simulators, like 25%.",
        }
    ),
]


class Auto(StrEnum):
    """The one spelling of "size this for me"."""

    AUTO = "auto"


AUTO: Final = Auto.AUTO


def parse_count_or_auto(value: object) -> int | Auto:
    """Parse a node count: a whole number >= 0, or ``auto``."""
    if isinstance(value, Auto):
        return value
    if isinstance(value, str) and value.strip().lower() == "auto":
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int):
        shown = shorten(value) if isinstance(value, str) else value
        raise ValueError(f'{shown!r} must be a whole number or "auto"')
    return _count(value)


def _serialize_count(value: int | Auto) -> Any:
    return str(value) if isinstance(value, Auto) else value


CountOrAuto = Annotated[
    int | Auto,
    BeforeValidator(parse_count_or_auto),
    PlainSerializer(_serialize_count),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
                {"const": "auto"},
            ],
            "description": 'A node count, or "auto" to size it to the simulators on the pool.',
        }
    ),
]
