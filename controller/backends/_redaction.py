"""Masking secret values in text, line by line, before anything stores or shows it.

A simulator may print its own secrets; its stderr tail reaches ``/status``, the local
state file and the log. Masking whole values is not enough: a multi-line secret (a PEM
key) cut by a tail boundary no longer matches as a whole, so every *line* of a secret
is masked on its own. Values shorter than :data:`MIN_SECRET_LENGTH` are not masked at all:
a one-character secret would turn every ``a`` of a log into ``****`` and tell a reader
the secret besides; the daemon warns about such values instead (:func:`too_short`).

Redaction is pure and cheap enough to run on every tail and log event: the pieces are
sorted longest first, so a secret that contains another is masked whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

MASK: Final = "****"
#: Shorter secret values (and lines of values) are left alone: see the module docstring.
MIN_SECRET_LENGTH: Final = 4


def secret_pieces(values: Iterable[str]) -> frozenset[str]:
    """The strings to mask for ``values``: each value's lines, stripped, long enough."""
    pieces: set[str] = set()
    for value in values:
        for line in value.splitlines() or [value]:
            piece = line.strip()
            if len(piece) >= MIN_SECRET_LENGTH:
                pieces.add(piece)
    return frozenset(pieces)


def too_short(values: Iterable[str]) -> int:
    """How many non-empty values are too short to be masked (the caller warns)."""
    return sum(1 for v in values if v and len(v.strip()) < MIN_SECRET_LENGTH)


class Redactor:
    """Masks a set of secret pieces in text; pieces are only ever added.

    Nothing is forgotten: after a key is rotated, old simulators' output may still hold
    the old value.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._pieces: tuple[str, ...] = ()
        self.update(values)

    def update(self, values: Iterable[str]) -> None:
        """Add the pieces of ``values`` (see :func:`secret_pieces`)."""
        pieces = secret_pieces(values) | frozenset(self._pieces)
        self._pieces = tuple(sorted(pieces, key=lambda p: (-len(p), p)))

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret piece replaced by :data:`MASK`."""
        for piece in self._pieces:
            if piece in text:
                text = text.replace(piece, MASK)
        return text


def redact(text: str, values: Iterable[str]) -> str:
    """``text`` with every line of every secret in ``values`` masked (one-off use)."""
    return Redactor(values).scrub(text)


def redacted_tail(data: bytes, values: Iterable[str], *, cut: bool, lines: int) -> str:
    """The last ``lines`` lines of some output, secrets masked, safe to store and show.

    Args:
        data: the end of an output file.
        values: the secret values of the simulator that wrote it.
        cut: ``data`` starts inside the file, so its first line may be a piece of a line,
            which no whole-line mask matches: it is dropped.
        lines: how many lines to keep.
    """
    text = data.decode("utf-8", errors="replace").rstrip("\n")
    if cut:
        text = text.partition("\n")[2]
    return "\n".join(redact(text, values).split("\n")[-lines:]) if text else ""
