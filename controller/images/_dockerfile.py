"""``simfleet image init``: a Dockerfile for a folder holding a simulator.

The file is plain and reviewable: a base image, the folder copied to ``/simulation``,
its ``requirements.txt`` installed when there is one, and the command that starts the
simulator (``main.py`` when present, else the folder's only Python file, else what the
user says). The same image then runs on Batch and under ``--runtime docker``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASE = "python:3.11-slim"
WORKDIR = "/simulation"
DOCKERIGNORE = ".git\n.simfleet\n__pycache__\n*.pyc\n.venv\n"


class InitError(Exception):
    """The folder does not say how to start the simulator, or a file is in the way."""


@dataclass(frozen=True)
class Written:
    """What ``init`` wrote."""

    dockerfile: Path
    command: tuple[str, ...]


def detect_command(folder: Path) -> tuple[str, ...]:
    """``python3 main.py`` if there is a main.py, else the folder's single ``*.py``."""
    if (folder / "main.py").is_file():
        return ("python3", "main.py")
    scripts = sorted(p.name for p in folder.glob("*.py") if p.is_file())
    if len(scripts) == 1:
        return ("python3", scripts[0])
    found = ", ".join(scripts) or "none"
    raise InitError(
        f"cannot tell how to start the simulator (Python files: {found}); pass --command"
    )


def dockerfile_text(folder: Path, base: str, command: tuple[str, ...]) -> str:
    """The Dockerfile for ``folder``."""
    lines = [
        "# Written by `simfleet image init`; edit freely.",
        f"FROM {base}",
        f"WORKDIR {WORKDIR}",
    ]
    if (folder / "requirements.txt").is_file():
        lines += [
            "COPY requirements.txt .",
            "RUN pip install --no-cache-dir -r requirements.txt",
        ]
    lines += [
        "COPY . .",
        "ENV PYTHONUNBUFFERED=1",
        f"CMD {json.dumps(list(command))}",
    ]
    return "\n".join(lines) + "\n"


def init(
    folder: Path, *, base: str = DEFAULT_BASE, command: str | None = None, force: bool = False
) -> Written:
    """Write ``Dockerfile`` and ``.dockerignore`` into ``folder``.

    Args:
        folder: the simulator's folder.
        base: the base image.
        command: how to start the simulator (a shell-style string), or None to detect it.
        force: overwrite an existing Dockerfile.

    Raises:
        InitError: no folder, a Dockerfile already there, or no way to tell the command.
    """
    if not folder.is_dir():
        raise InitError(f"{folder} is not a folder")
    dockerfile = folder / "Dockerfile"
    if dockerfile.exists() and not force:
        raise InitError(f"{dockerfile} exists; pass --force to overwrite it")
    argv = tuple(shlex.split(command)) if command else detect_command(folder)
    if not argv:
        raise InitError("--command is empty")
    dockerfile.write_text(dockerfile_text(folder, base, argv))
    ignore = folder / ".dockerignore"
    if not ignore.exists():
        ignore.write_text(DOCKERIGNORE)
    return Written(dockerfile, argv)
