"""What a plan changes, per object, in words: the lines ``simfleet plan`` prints.

The actions say *how* (add these 8 tasks, stop that one); a reviewer of a pull request
wants *what*: "create simulation cartpole: 8 simulators of cartpole:1.0", "scale 8 → 12",
"roll out image cartpole:1.0 → cartpole:1.1 (8 simulators)", "needs replacement: vmSize
…", "prune". A rollout is described whole (all simulators still on an old template),
though one pass only takes its first step. Nothing here can show a secret: only images,
counts and names appear, and run options, which are shown in full (old → new) because
they decide what a container may do to its host.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from controller.planner._ids import revision
from controller.planner._pools import replacement_reasons
from controller.planner._simulations import template_of
from controller.planner._slots import group
from controller.planner._types import (
    Action,
    AddTasks,
    Change,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    Desired,
    ExitReason,
    Observed,
    ObservedJob,
    ObservedTask,
    PoolConfig,
    ResizePool,
    StopReason,
    StopTask,
    subject,
)


def _pool_changes(desired: Desired, observed: Observed, actions: Sequence[Action]) -> list[Change]:
    changes = []
    for action in actions:
        match action:
            case CreatePool(name, spec, dedicated, spot):
                detail = f"{spec.vm_size}, {dedicated} dedicated + {spot} spot nodes"
                changes.append(Change("pool", name, "create", detail))
            case ResizePool(name, dedicated, spot, from_dedicated, from_spot):
                detail = f"{from_dedicated}+{from_spot} → {dedicated}+{spot} nodes"
                changes.append(Change("pool", name, "resize", detail))
            case DeletePool(name):
                changes.append(Change("pool", name, "prune", "no spec defines it any more"))
    for name, spec in sorted(desired.pools.items()):
        pool = observed.pools.get(name)
        if pool is not None and pool.owned:
            reasons = replacement_reasons(PoolConfig.of(spec), pool.config)
            if reasons:
                changes.append(
                    Change("pool", name, "needs replacement", ", ".join(reasons), applies=False)
                )
    return changes


def _simulation_changes(
    desired: Desired,
    observed: Observed,
    actions: Sequence[Action],
    failures: Mapping[tuple[str, str], str],
    in_scope: Callable[[str], bool],
) -> list[Change]:
    changes = []
    for name, sim in sorted(desired.simulations.items()):
        if not in_scope(name):
            continue
        failure = failures.get(("simulation", name))
        if failure is not None:
            changes.append(Change("simulation", name, "cannot plan", failure, applies=False))
            continue
        mine = [a for a in actions if subject(a) == ("simulation", name)]
        job = observed.jobs.get(name)
        count, image = sim.spec.simulators, sim.spec.image
        options = sim.spec.container_run_options
        if any(isinstance(a, CreateJob) for a in mine):
            detail = f"{count} simulators of {image}"
            if options:
                detail += f" with run options {_shown(options)}"
            changes.append(Change("simulation", name, "create", detail))
            continue
        if job is None or not job.owned or sim.spec.suspend:
            continue
        live = [t for t in job.tasks if t.live]
        current = revision(template_of(sim))
        slots = _fleet_slots(job, current)
        if len(slots) != count:
            changes.append(
                Change("simulation", name, "scale", f"{len(slots)} → {count} simulators")
            )
        old = [t for t in live if t.revision != current and t.slot < count]
        if old:
            what = _template_change(old, image, options)
            changes.append(
                Change("simulation", name, "roll out", f"{what} ({len(old)} simulators)")
            )
        recycled = sum(
            1 for a in mine if isinstance(a, StopTask) and a.reason is StopReason.RECYCLE
        )
        if recycled:
            changes.append(Change("simulation", name, "recycle", f"{recycled} past maxLifetime"))
        occupied = {t.slot for t in live}
        restarted = sum(
            1
            for a in mine
            if isinstance(a, AddTasks)
            for t in a.tasks
            if t.revision == current and t.attempt > 0 and t.slot not in occupied
        )
        if restarted:
            changes.append(Change("simulation", name, "restart", f"{restarted} exited simulators"))
    for action in actions:
        if isinstance(action, DeleteJob):
            job = observed.jobs.get(action.name)
            n = sum(1 for t in job.tasks if t.live) if job is not None else 0
            detail = f"no spec defines it any more; its {n} simulators stop"
            changes.append(Change("simulation", action.name, "prune", detail))
    return changes


def _most_common(values: list[str]) -> str | None:
    return Counter(values).most_common(1)[0][0] if values else None


def _shown(options: str) -> str:
    """Run options as a reviewer must see them: whole, quoted, or "(none)"."""
    return f"`{options}`" if options else "(none)"


def _template_change(old: Sequence[ObservedTask], image: str, options: str) -> str:
    """What a rollout changes, as far as the backend reports it: the image and the run
    options (in full), or just "new template" (command, env, secret values)."""
    parts = []
    was_image = _most_common([t.image for t in old if t.image])
    if was_image and was_image != image:
        parts.append(f"image {was_image} → {image}")
    was_options = _most_common([t.run_options for t in old if t.run_options is not None])
    if was_options is not None and was_options != options:
        parts.append(f"run options {_shown(was_options)} → {_shown(options)}")
    return ", ".join(parts) or "new template"


def _fleet_slots(job: ObservedJob, current: str) -> set[int]:
    """Slots whose newest task is live or ended by itself (not stopped by simfleet)."""
    return {
        index
        for index, slot in group(job.tasks, current).items()
        if slot.live
        or (
            slot.latest is not None
            and slot.latest.exit is not None
            and slot.latest.exit.reason is not ExitReason.STOPPED
        )
    }


def _waiting_prunes(waiting: Mapping[tuple[str, str], datetime], now: datetime) -> list[Change]:
    """Objects whose definition is gone, still inside the prune delay."""
    return [
        Change(
            kind,
            name,
            "prune",
            f"no spec defines it any more; will be pruned in {(due - now).total_seconds():.0f}s"
            " unless it comes back",
            applies=False,
        )
        for (kind, name), due in sorted(waiting.items())
    ]


def summarize(
    desired: Desired,
    observed: Observed,
    actions: Sequence[Action],
    failures: Mapping[tuple[str, str], str] | None = None,
    waiting: Mapping[tuple[str, str], datetime] | None = None,
    now: datetime | None = None,
    in_scope: Callable[[str], bool] = lambda _: True,
) -> tuple[Change, ...]:
    """Every change a plan makes or reports, pools first.

    Args:
        desired / observed / actions: the plan's inputs and actions.
        failures: objects whose planning raised, with the reason.
        waiting: objects waiting out the prune delay, with when it ends (needs ``now``).
        now: the planner's "now".
        in_scope: which simulations to describe (a scoped plan's).
    """
    changes = _pool_changes(desired, observed, actions) + _simulation_changes(
        desired, observed, actions, failures or {}, in_scope
    )
    if waiting and now is not None:
        changes += _waiting_prunes(waiting, now)
    return tuple(changes)
