"""Conflicts: a spec asks for an id that someone else's object already has.

A Batch id names one object in an account, whoever made it. When a spec asks for a pool
or a job whose id is taken by another fleet's object (see ``--fleet``) or by one simfleet
did not create, that object is not this controller's: it is never modified or deleted,
and status and plan name its owner, so the operator knows whom to ask or what to rename.
A simulation whose pool is someone else's is held too: a job on it would run on nodes
another controller sizes, and could be starved or deleted at its next pass.
"""

from __future__ import annotations


def whose(owner: str) -> str:
    """``owner`` (``ObservedJob.owner``) as the end of a sentence about the object."""
    return f"belongs to {owner}" if owner else "exists and was not created by simfleet"


def taken(kind: str, name: str, owner: str) -> str:
    """The status message of a pool or job whose id is someone else's."""
    return f"a {kind} named {name} {whose(owner)}; leaving it alone"


def foreign_pool(pool: str, owner: str) -> str:
    """The status message of a simulation whose pool is someone else's."""
    return f"its pool {pool} {whose(owner)}; no simulator is started on it"
