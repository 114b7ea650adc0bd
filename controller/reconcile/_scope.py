"""What a spec edit changed: the simulations a step woken by the watcher must look at.

The rest of the fleet was observed and planned by an earlier step and nothing of theirs
changed in the specs, so a step may leave them to the next full one (a backend event, a
timer, the resync). Anything that concerns every simulation at once — a pool's spec, a
registry password, whether pruning is held — makes the step a full one.
"""

from __future__ import annotations

from controller.planner import Desired


def changed(previous: Desired | None, current: Desired) -> frozenset[str] | None:
    """Simulations added, removed or changed between two desired states; None when the
    step must cover everything (no previous state, or a change that is not per simulation)."""
    if (
        previous is None
        or previous.pools != current.pools
        or previous.registry_passwords != current.registry_passwords
        or previous.prune_held_because != current.prune_held_because
    ):
        return None
    names = set(previous.simulations) | set(current.simulations)
    return frozenset(
        name
        for name in names
        if previous.simulations.get(name) != current.simulations.get(name)
        or previous.notes.get(name) != current.notes.get(name)
    )
