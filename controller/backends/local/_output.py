"""Reading a simulator's rotated stdout/stderr as one stream, and its redacted stderr tail.

The wrapper (:mod:`._wrapper`) writes each stream into ``stdout.txt`` and, when that is
full, renames it ``stdout.txt.<offset>``, where ``<offset>`` is the position of the file's
first byte in the whole stream; the oldest files are deleted. Offsets are therefore
absolute and stable: ``simfleet logs --follow`` keeps reading where it stopped across any
number of rotations, and a reader asking for bytes that were already deleted gets the
oldest bytes still kept (the chunk's ``offset`` says where they start). The current file
starts where the newest rotated file ends, since a file is only rotated once full.

The stderr tail kept in a task's exit information is masked *before* it is cut: a larger
window is read, its first (possibly partial) line dropped, every line of the task's
secrets masked, and only then are the last lines kept, so a cut can never leave a piece of
a secret line unmasked.

This module only reads; it must never hold the files open or write to them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from controller.backends import TAIL_BYTES, TAIL_LINES, OutputChunk, redacted_tail

#: How much of the end of stderr is read to cut a tail from.
TAIL_WINDOW = 8 * TAIL_BYTES
_ATTEMPTS = 5


@dataclass(frozen=True)
class _Part:
    """One file of a stream: where it starts, how big it is, and (current file) its handle."""

    path: Path
    start: int
    size: int
    file: BinaryIO | None = None


def read_stream(
    task_dir: Path, name: str, offset: int = 0, length: int | None = None
) -> OutputChunk:
    """Bytes of one output stream, across its rotated files.

    Args:
        task_dir: the task folder.
        name: ``stdout.txt`` or ``stderr.txt``.
        offset: where to start in the stream; negative counts from its end.
        length: at most this many bytes; None reads to the end.

    Returns:
        The bytes, the stream offset of the first one, and the stream's size so far.
    """
    for _ in range(_ATTEMPTS):
        try:
            current: BinaryIO | None = (task_dir / name).open("rb")
        except FileNotFoundError:
            current = None
        except OSError:
            return OutputChunk(b"", 0, 0)
        with current or contextlib.nullcontext():
            parts = _parts(task_dir, name, current)
            if parts is None:
                continue  # rotated while listing: look again
            if not parts:
                return OutputChunk(b"", 0, 0)
            size = parts[-1].start + parts[-1].size
            kept = parts[0].start
            start = max(size + offset, kept) if offset < 0 else min(max(offset, kept), size)
            end = size if length is None else min(size, start + max(0, length))
            data = _read(parts, start, end)
            if data is not None:
                return OutputChunk(data, start, size)
    return OutputChunk(b"", 0, 0)  # pragma: no cover - a writer rotating non-stop


def tail(
    task_dir: Path,
    name: str,
    secrets: Iterable[str] = (),
    *,
    lines: int = TAIL_LINES,
    max_bytes: int = TAIL_BYTES,
) -> str:
    """The last ``lines`` lines of a stream, at most ``max_bytes``, secrets masked.

    Args:
        task_dir: the task folder.
        name: usually ``stderr.txt``.
        secrets: values whose lines must not appear (see the module docstring).
        lines: how many lines at most.
        max_bytes: how many bytes at most.

    Returns:
        The text without its final newline, undecodable bytes replaced.
    """
    chunk = read_stream(task_dir, name, -TAIL_WINDOW)
    # the window may start inside a line: never keep a piece of one
    kept = redacted_tail(chunk.data, secrets, cut=chunk.offset > 0, lines=lines)
    data = kept.encode()
    if len(data) > max_bytes:
        kept = data[-max_bytes:].decode("utf-8", errors="ignore")
        if "\n" in kept:
            kept = kept.partition("\n")[2]
    return kept


def _parts(task_dir: Path, name: str, current: BinaryIO | None) -> list[_Part] | None:
    """The stream's files in order, or None if a rotation got in the way.

    ``current`` is the open current file: reading through it is reading the very file
    whose start was computed, even if it is rotated a moment later.
    """
    current_stat = None if current is None else os.fstat(current.fileno())
    pattern = re.compile(re.escape(name) + r"\.(\d+)")
    rotated: list[_Part] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(task_dir):
            match = pattern.fullmatch(entry.name)
            if match is None:
                continue
            try:
                info = entry.stat()
            except FileNotFoundError:
                return None
            if current_stat is not None and info.st_ino == current_stat.st_ino:
                return None  # the current file was just rotated
            rotated.append(_Part(Path(entry.path), int(match[1]), info.st_size))
    rotated.sort(key=lambda p: p.start)
    if current_stat is None:
        return rotated
    start = rotated[-1].start + rotated[-1].size if rotated else 0
    return [*rotated, _Part(task_dir / name, start, current_stat.st_size, current)]


def _read(parts: list[_Part], start: int, end: int) -> bytes | None:
    """Bytes ``[start, end)`` of the stream, or None if a file vanished meanwhile."""
    pieces = []
    for part in parts:
        low, high = max(start, part.start), min(end, part.start + part.size)
        if low >= high:
            continue
        if part.file is not None:
            part.file.seek(low - part.start)
            pieces.append(part.file.read(high - low))
            continue
        try:
            with part.path.open("rb") as file:
                file.seek(low - part.start)
                pieces.append(file.read(high - low))
        except FileNotFoundError:
            return None
    return b"".join(pieces)
