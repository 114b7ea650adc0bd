"""Spec errors as values: every problem names its file, line, column and field path.

Loading never raises on bad input; it returns :class:`SpecError` values, so one bad file
shows all of its problems at once and other files go on being reconciled.

An error often quotes what the user wrote (a key, a name, a file name), and that text may
hold anything: a NUL byte, a terminal escape sequence, a lone surrogate that no UTF-8
stream can encode, a newline that would split one ``file:line:col:`` line into two. So
every error is made printable once, when it is created: such characters are written as
escapes (``\\x1b``, ``\\ud800``), and everything that prints, logs or serves an error
(``validate``, the daemon's log, ``/status``) gets safe text without thinking about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: Characters an error must never carry as they are: C0 and C1 controls (tab and newline
#: included: an error is one line), lone surrogates, Unicode line and paragraph
#: separators, bidirectional overrides and isolates (they reorder what a terminal shows),
#: and the byte-order mark.
_UNPRINTABLE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)
#: How much of a user's value an error quotes; the rest is cut (a 1 MiB name is possible).
QUOTE_LIMIT: Final = 64


def printable(text: str) -> str:
    """``text`` with every character a terminal or UTF-8 cannot show safely escaped.

    Args:
        text: any string, possibly holding control characters or lone surrogates.

    Returns:
        The same text, with those characters written as ``\\xNN`` or ``\\uNNNN``.
    """
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """At most ``limit`` characters of ``text``, with ``…`` where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in one spec file, printed as ``file:line:col: path: message``.

    ``line`` and ``column`` are 1-based, as editors count. ``path`` is the dotted field path
    inside the document (``spec.simulators``, ``spec.env.FOO``), empty for file-level
    problems such as a YAML syntax error. ``file``, ``path`` and ``message`` are made
    :func:`printable` when the error is created.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __post_init__(self) -> None:
        for name in ("file", "path", "message"):
            object.__setattr__(self, name, printable(getattr(self, name)))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
