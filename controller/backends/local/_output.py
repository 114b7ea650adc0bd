"""Reading a simulator's stdout/stderr files: byte ranges for ``simfleet logs``, and the
short stderr tail kept in a task's exit information.

The files are written by the simulator itself (see
:mod:`controller.backends.local._processes`); this module only reads them and must
never hold them open or write to them.
"""

from __future__ import annotations

import os
from pathlib import Path

from controller.backends import TAIL_BYTES, TAIL_LINES, OutputChunk, byte_range, last_lines


def read_chunk(path: Path, offset: int = 0, length: int | None = None) -> OutputChunk:
    """Bytes of an output file; a file not written yet reads as empty.

    Args:
        path: the output file.
        offset: where to start; negative counts from the end (-100: the last 100 bytes).
        length: at most this many bytes; None reads to the end.

    Returns:
        The bytes, where they start and the file's size at the time of reading.
    """
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            start, end = byte_range(offset, length, size)
            file.seek(start)
            data = file.read(end - start)
    except FileNotFoundError:
        return OutputChunk(b"", 0, 0)
    return OutputChunk(data, start, size)


def tail(path: Path, *, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
    """The last ``lines`` lines of a text file, at most ``max_bytes`` bytes of it.

    Args:
        path: the file (usually stderr.txt).
        lines: how many lines at most.
        max_bytes: how many bytes at most are read from the end.

    Returns:
        The text without its final newline, undecodable bytes replaced.
    """
    return last_lines(read_chunk(path, -max_bytes).data, lines)
