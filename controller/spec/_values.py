"""Typed values parsed once from spec text: durations, int-or-percent, ``auto`` counts.

Spec files say ``10s``, ``25%`` and ``auto``; everything past :mod:`controller.spec` sees a
``timedelta``, a :class:`Percent` or :data:`AUTO`, and never parses text again. Each type
is an ``Annotated`` pydantic type so the model fields stay one line and the JSON Schema
shows users the accepted spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> timedelta:
    """Parse ``90``, ``90s``, ``5m``, ``1h30m`` or ``150d`` into a ``timedelta``.

    A bare number means seconds. Raises ``ValueError`` with a message fit for users.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 10s, 5m, 1h or 150d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("must be a duration such as 10s, 5m, 1h or 150d")
    text = value.strip().lower()
    if text and _DURATION_PART.sub("", text) == "" and _DURATION_PART.search(text):
        seconds = sum(
            float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text)
        )
        return timedelta(seconds=seconds)
    try:
        return parse_duration(float(text))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a duration; use a number with a unit: 10s, 5m, 1h, 150d"
        ) from None


def format_duration(value: timedelta) -> str:
    """The shortest spelling of ``value`` that :func:`parse_duration` reads back."""
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": ["string", "number"],
            "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$",
            "description": "A duration: 10s, 5m, 1h30m, 150d (a bare number is seconds).",
        }
    ),
]


@dataclass(frozen=True, slots=True)
class Percent:
    """A percentage of a simulation's desired count, as in ``maxSurge: 25%``."""

    value: int

    def __str__(self) -> str:
        return f"{self.value}%"


def parse_int_or_percent(value: object) -> int | Percent:
    """Parse ``2`` or ``"25%"``; negative values and percentages over 100 are refused."""
    if isinstance(value, Percent):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a whole number or a percentage such as 25%")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be >= 0")
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+%", text):
            percent = int(text[:-1])
            if percent > 100:
                raise ValueError("a percentage must be at most 100%")
            return Percent(percent)
        if text.isdigit():
            return int(text)
    raise ValueError(f"{value!r} is neither a whole number nor a percentage such as 25%")


IntOrPercent = Annotated[
    int | Percent,
    BeforeValidator(parse_int_or_percent),
    PlainSerializer(lambda v: str(v) if isinstance(v, Percent) else v),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\d+%$"},
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
        raise ValueError(f'{value!r} must be a whole number or "auto"')
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _serialize_count(value: int | Auto) -> Any:
    return str(value) if isinstance(value, Auto) else value


CountOrAuto = Annotated[
    int | Auto,
    BeforeValidator(parse_count_or_auto),
    PlainSerializer(_serialize_count),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 0}, {"const": "auto"}],
            "description": 'A node count, or "auto" to size it to the simulators on the pool.',
        }
    ),
]
