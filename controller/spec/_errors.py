"""Spec errors as values: every problem names its file, line, column and field path.

Loading never raises on bad input; it returns :class:`SpecError` values, so one bad file
shows all of its problems at once and other files go on being reconciled.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in one spec file, printed as ``file:line:col: path: message``.

    ``line`` and ``column`` are 1-based, as editors count. ``path`` is the dotted field path
    inside the document (``spec.simulators``, ``spec.env.FOO``), empty for file-level
    problems such as a YAML syntax error.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
