"""Fleet names: which controller an object in a Batch account belongs to.

One controller acts for one named fleet (``--fleet``). Every pool and job it creates
carries the fleet's name in its metadata, and its lease (see :mod:`._lease`) is named
after it, so the name must fit in a Batch id with room to spare: lowercase letters,
digits and ``-`` (Batch ids are case-insensitive, so ``A`` and ``a`` would be one fleet),
at most 40 characters. Objects made by simfleet before fleets existed carry only the
ownership mark and belong to :data:`DEFAULT_FLEET`.
"""

from __future__ import annotations

import re

#: The fleet of a controller started without ``--fleet``, and of every object created by
#: a simfleet version that had no fleets.
DEFAULT_FLEET = "default"
MAX_FLEET_LENGTH = 40
_FLEET = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def check_fleet_name(name: str) -> str:
    """``name`` if it can name a fleet; otherwise a ``ValueError`` that says what can."""
    if len(name) > MAX_FLEET_LENGTH or not _FLEET.fullmatch(name):
        raise ValueError(
            f"{name!r} cannot name a fleet: use lowercase letters, digits and '-' (not at "
            f"either end), at most {MAX_FLEET_LENGTH} characters"
        )
    return name
