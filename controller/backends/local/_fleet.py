"""Which fleet a state directory belongs to: ``local/fleet``, written when first used.

On Azure, every object carries its fleet; here the state directory is the whole account,
so the directory itself belongs to one fleet. The record is written (atomically) by the
first controller that locks a directory with none; a directory that already holds state
but no record was made before fleets existed and belongs to ``default``, like the Batch
objects of that time. A controller, or a read-only command (``plan``, ``logs``), for
another fleet is refused before it reads anything: it would otherwise adopt, plan
against or prune a fleet that is not its own. Commands ask :func:`check` first, so a
daemon for the wrong fleet ends at start instead of standing by for a lock it could
never use.
"""

from __future__ import annotations

import os
from pathlib import Path

from controller.backends._errors import PermanentBackendError
from controller.backends._fleets import DEFAULT_FLEET, check_fleet_name

FILE_NAME = "fleet"
#: Where a state directory keeps the local backend's files (see :mod:`._store`).
FOLDER = "local"
#: What a directory used before fleets existed holds: its state, or its tasks' folders.
_EARLIER_USE = ("state.json", "jobs")


def recorded(root: Path) -> str | None:
    """The fleet ``root`` (the backend's ``local/`` folder) belongs to; None while unused.

    Raises:
        PermanentBackendError: ``StateDirUnusable``: the record is not a fleet name.
        OSError: the record cannot be read.
    """
    try:
        text = (root / FILE_NAME).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return DEFAULT_FLEET if any((root / name).exists() for name in _EARLIER_USE) else None
    except UnicodeDecodeError:
        text = "?"
    try:
        return check_fleet_name(text)
    except ValueError:
        raise PermanentBackendError(
            f"{root / FILE_NAME} does not hold a fleet name ({text[:40]!r}); "
            "put the fleet this directory belongs to in it, or use another --state-dir",
            code="StateDirUnusable",
        ) from None


def claim(root: Path, fleet: str, *, record: bool) -> None:
    """Make sure ``root`` belongs to ``fleet``; with ``record`` (the controller that holds
    the lock), write the record if there is none yet.

    Raises:
        PermanentBackendError: ``FleetMismatch``: it belongs to another fleet.
        OSError: the record cannot be read or written.
    """
    owner = recorded(root)
    if owner is not None and owner != fleet:
        raise PermanentBackendError(
            f"{root.parent} belongs to fleet '{owner}', not '{fleet}': "
            f"use --fleet {owner}, or another --state-dir for fleet '{fleet}'",
            code="FleetMismatch",
        )
    if record and not (root / FILE_NAME).exists():
        temporary = root / f".{FILE_NAME}.{os.getpid()}"
        temporary.write_text(f"{fleet}\n", encoding="utf-8")
        temporary.replace(root / FILE_NAME)


def check(state_dir: Path, fleet: str) -> None:
    """Refuse to use ``state_dir`` for ``fleet`` if it belongs to another; writes nothing.

    Raises:
        PermanentBackendError: ``FleetMismatch``, or ``StateDirUnusable`` when the record
            cannot be read.
    """
    root = state_dir.absolute() / FOLDER
    try:
        claim(root, fleet, record=False)
    except OSError as error:
        raise PermanentBackendError(
            f"cannot use {root}: {error}", code="StateDirUnusable"
        ) from error
