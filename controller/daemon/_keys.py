"""The controller's revision key: a random secret kept in the state directory.

Secret values enter a template revision (and so every task id) only through an HMAC
under this key (:func:`controller.planner.secret_digest`), so nobody who sees an id can
test guesses of a secret offline. The key is made once, on first use, readable by the
controller's user only, and never printed. ``plan``, ``apply`` and ``run`` on the same
state directory share it, so they agree on revisions. Losing it (a new machine, a wiped
state directory) changes the revision of simulations with secrets: one rolling update
within their rollout limits — never an outage or a duplicate slot.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

KEY_FILE: Final = "revision.key"
KEY_BYTES: Final = 32


class RevisionKeyError(Exception):
    """The key file exists but cannot be read or holds no valid key."""


def revision_key(state_dir: Path, path: Path | None = None) -> bytes:
    """The key in ``path`` (default: under ``state_dir``), made (mode 0600) if there is
    none yet. Replicas of one fleet, and a CI ``apply`` beside them, give the same file
    (``--revision-key-file``): with different keys, every takeover would roll the
    simulations that have secrets, and ``apply --wait`` would never see its specs converged.

    Raises:
        RevisionKeyError: the file cannot be read or written, or is not a key simfleet wrote.
    """
    path = path or state_dir / KEY_FILE
    state_dir = path.parent
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another simfleet made it just now
        return _read(path)
    except OSError as exc:
        raise RevisionKeyError(
            f"cannot create the revision key {path}: {exc.strerror or exc}"
        ) from None
    with os.fdopen(fd, "w") as stream:
        stream.write(secrets.token_hex(KEY_BYTES) + "\n")
    return _read(path)


def _read(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise RevisionKeyError(f"cannot read the revision key {path}: {exc}") from None
    with contextlib.suppress(ValueError):
        key = bytes.fromhex(text)
        if len(key) == KEY_BYTES:
            return key
    raise RevisionKeyError(f"{path} does not hold a revision key; remove it to make a new one")
