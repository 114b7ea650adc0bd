"""What a plan changes, per object, in words: the lines ``simfleet plan`` prints.

The actions say *how* (add these 8 tasks, stop that one); a reviewer of a pull request
wants *what*: "create simulation cartpole: 8 simulators of cartpole:1.0", "scale 8 → 12",
"roll out image cartpole:1.0 → cartpole:1.1 (8 simulators)", "needs replacement: vmSize
…", "prune". A rollout is described whole (all simulators still on an old template),
though one pass only takes its first step. Nothing here can show a secret: only images,
counts and names appear, and run options, which are shown in full (old → new) because
they decide what a container may do to its host.

Each phase of a pass asks for its own words here, from the view and the actions it has
just decided (see :mod:`._simulations`, :mod:`._pools`, :mod:`._pruning`), and only when
the caller wants them (``plan(..., explain=True)``): nothing is derived a second time,
and no action is matched by type after the fact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from controller.planner._actions import (
    CreatePool,
    DeleteJob,
    NewTask,
    ObjectKind,
    ResizePool,
    ShrinkPool,
    StopReason,
    StopTask,
)
from controller.planner._observed import ExitReason, ObservedJob, ObservedTask
from controller.planner._reports import Change, Verb
from controller.planner._view import SimulationView

_SIM = ObjectKind.SIMULATION


def pool_created(action: CreatePool) -> Change:
    """A pool created now, with its size and the images its nodes pull as they start."""
    detail = f"{action.spec.vm_size}, {action.dedicated} dedicated + {action.spot} spot nodes"
    if action.images:
        detail += f", prefetching {', '.join(action.images)}"
    return Change(ObjectKind.POOL, action.name, Verb.CREATE, detail)


def pool_resized(action: ResizePool | ShrinkPool) -> Change:
    """A pool's node targets changed now (a shrink: by removing idle nodes only)."""
    detail = f"{action.from_dedicated}+{action.from_spot} → {action.dedicated}+{action.spot} nodes"
    if isinstance(action, ShrinkPool):
        detail += ", removing idle nodes only"
    return Change(ObjectKind.POOL, action.name, Verb.RESIZE, detail)


def login_recorded(name: str, rotated: str) -> Change:
    """A pool's registry login digest recorded now: after a rotation, or for the first time."""
    return Change(ObjectKind.POOL, name, Verb.UPDATE, rotated or "record its registry login digest")


def pruned_pool(name: str) -> Change:
    """A pool deleted now."""
    return Change(ObjectKind.POOL, name, Verb.PRUNE, "no spec defines it any more")


def pool_replacement(name: str, reasons: Sequence[str]) -> Change:
    """A pool whose fixed fields changed: reported, never done."""
    return Change(ObjectKind.POOL, name, Verb.NEEDS_REPLACEMENT, ", ".join(reasons), applies=False)


def pool_replaced(
    current: str, leaving: Sequence[str], reasons: Sequence[str], moving: int
) -> Change:
    """A pool replaced as a rollout (see :mod:`._replacement`): what the whole move does."""
    why = f" ({', '.join(reasons)})" if reasons else ""
    old = ", ".join(leaving)
    detail = (
        f"replaces {old}{why}: create pool {current}, move {moving} simulator(s),"
        f" delete old pool {old}"
    )
    return Change(ObjectKind.POOL, current, Verb.REPLACE, detail)


def pool_leaving(name: str, message: str) -> Change:
    """A pool being replaced: where its move stands."""
    return Change(ObjectKind.POOL, name, Verb.REPLACE, message)


def moving(view: SimulationView) -> list[Change]:
    """A simulation whose simulators move to a replacement pool, if it is one."""
    left = sum(1 for s in view.slots.values() for t in (*s.live, *s.duplicates) if t.job)
    if not left:
        return []
    return [
        Change(_SIM, view.name, Verb.REPLACE, f"move {left} simulator(s) to pool {view.pool_id}")
    ]


def moved_job(action: DeleteJob) -> Change:
    """A simulation's job on a replaced pool, deleted now that nothing runs in it."""
    detail = f"delete job {action.name}: its simulators moved to pool {action.moved}"
    return Change(_SIM, action.name, Verb.REPLACE, detail)


def cannot_plan(name: str, failure: str) -> Change:
    """A simulation whose planning raised: left as it is."""
    return Change(_SIM, name, Verb.CANNOT_PLAN, failure, applies=False)


def created(view: SimulationView) -> Change:
    """A simulation that gets its job now."""
    spec = view.sim.spec
    detail = f"{spec.simulators} simulators of {spec.image}"
    if spec.container_run_options:
        detail += f" with run options {_shown(spec.container_run_options)}"
    return Change(_SIM, view.name, Verb.CREATE, detail)


def reshaped(view: SimulationView) -> list[Change]:
    """Scale and rollout of an existing simulation, described whole."""
    changes = []
    count = view.desired
    fleet = (
        count  # every slot below the count holds a current simulator, and none above
        if not view.vacant and not view.beyond
        else sum(1 for slot in view.slots.values() if _in_fleet(slot.live, slot.latest))
    )
    if fleet != count:
        changes.append(Change(_SIM, view.name, Verb.SCALE, f"{fleet} → {count} simulators"))
    if view.olds or any(
        t.revision != view.revision for s in view.crowded if s.index < count for t in s.duplicates
    ):
        old = _old_tasks(view.job, view.revision, count)
        if old:
            spec = view.sim.spec
            what = _template_change(old, spec.image, spec.container_run_options)
            changes.append(
                Change(_SIM, view.name, Verb.ROLL_OUT, f"{what} ({len(old)} simulators)")
            )
    return changes


def recycled(retire: Iterable[StopTask], name: str) -> list[Change]:
    """Simulators retired because they ran their ``maxLifetime``."""
    count = sum(1 for a in retire if a.reason is StopReason.RECYCLE)
    return [Change(_SIM, name, Verb.RECYCLE, f"{count} past maxLifetime")] if count else []


def restarted(view: SimulationView, started: Iterable[NewTask]) -> list[Change]:
    """Simulators started again in slots whose current-template simulator exited."""
    count = sum(
        1
        for t in started
        if t.revision == view.revision
        and t.attempt > 0
        and not ((s := view.slots.get(t.slot)) is not None and (s.live or s.duplicates))
    )
    return [Change(_SIM, view.name, Verb.RESTART, f"{count} exited simulators")] if count else []


def pruned_job(name: str, job: ObservedJob | None) -> Change:
    """A job deleted now, with the simulators that stop with it."""
    n = sum(1 for t in job.tasks if t.live) if job is not None else 0
    detail = f"no spec defines it any more; its {n} simulators stop"
    return Change(_SIM, name, Verb.PRUNE, detail)


def waiting_prunes(waiting: Mapping[tuple[str, str], datetime], now: datetime) -> list[Change]:
    """Objects whose definition is gone, still inside the prune delay."""
    return [
        Change(
            ObjectKind(kind),
            name,
            Verb.PRUNE,
            f"no spec defines it any more; will be pruned in {(due - now).total_seconds():.0f}s"
            " unless it comes back",
            applies=False,
        )
        for (kind, name), due in sorted(waiting.items())
    ]


def _in_fleet(live: Sequence[ObservedTask], latest: ObservedTask | None) -> bool:
    """A slot whose newest task is live or ended by itself (not stopped by simfleet)."""
    return bool(live) or (
        latest is not None
        and latest.exit is not None
        and latest.exit.reason is not ExitReason.STOPPED
    )


def _old_tasks(job: ObservedJob | None, current: str, count: int) -> list[ObservedTask]:
    """Live tasks on another template in slots that stay, in the backend's order."""
    if job is None:
        return []
    return [t for t in job.tasks if t.live and t.revision != current and t.slot < count]


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
