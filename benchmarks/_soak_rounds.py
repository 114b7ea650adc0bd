"""The steps of a soak and the rounds they make up.

A round is a fault phase — random steps, each followed by a short look (checks) — then a
quiet phase: faults stop, every file is made good again, suspended simulations resume,
the daemon runs, and the fleet must converge within the bound; the time is recorded.

Steps and their weights (the backend adds its own crashes and service faults, see
:mod:`_soak_faults`): scaling, image and env changes (rollouts), suspend toggles, the
second simulation's file added and removed, a simulation moved to another file
non-atomically, bad files (each variant of :func:`_soak_specs.invalid`), a file emptied
or half-written and then completed in place (as a shell redirect or a slow generator
writes it), a stray bad file, a bad pool file, and ``kill -9`` of the controller at a
random moment (often right after an edit, so it lands mid-pass), sometimes restarted
with a secret rotated.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable

from _soak_specs import EXTRA, POOL_FILE, Simulation, broken_pool, header_prefix, invalid_kinds
from _soak_specs import invalid as invalid_text
from _soak_tally import Tally
from _soak_watch import GRACE, AbortError, Soak, bystanders_for

#: Seconds of faults per round, and of looking after each step.
ROUND = (15.0, 45.0)
DWELL = (0.2, 1.2)
#: How long a bad file (or a stray one) stays before it is fixed.
BAD_FOR = (1.0, 6.0)
#: How long an emptied, half-written or moving file stays so.
GAP = (0.1, 1.0)

Step = Callable[[], str | None]


class Steps:
    """Every step the soak takes; each returns the kind to count, or None if it cannot."""

    def __init__(self, soak: Soak) -> None:
        self.soak = soak
        self.rng: random.Random = soak.rng
        self.stray_count = 0
        self.table: dict[str, tuple[float, Step]] = {
            "scale": (4, self.scale),
            "image": (2, self.image),
            "env": (2, self.env),
            "suspend": (1.5, self.suspend),
            "extra": (1.5, self.toggle_extra),
            "move": (1, self.move),
            "bad file": (3, self.bad_file),
            "empty": (1.5, lambda: self.rewrite_slowly(empty=True)),
            "half": (1.5, lambda: self.rewrite_slowly(empty=False)),
            "stray": (1, self.stray_file),
            "bad pool": (0.5, self.bad_pool),
            "kill": (2, self.kill),
        }
        for kind, (weight, act) in soak.faults.kinds.items():
            self.table[kind] = (weight, self._fault(kind, act))

    def _fault(self, kind: str, act: Callable[[random.Random], bool]) -> Step:
        return lambda: kind if act(self.rng) else None

    def one(self) -> None:
        """Take one applicable step, chosen by weight."""
        names = list(self.table)
        weights = [weight for weight, _ in self.table.values()]
        for _ in range(20):
            kind = self.rng.choices(names, weights)[0]
            done = self.table[kind][1]()
            if done is not None:
                self.soak.tally.steps += 1
                self.soak.tally.faults[done] += 1
                return

    # ------------------------------------------------------------------------- edits

    def write(self, sim: Simulation) -> None:
        soak = self.soak
        soak.fleet.write(sim.path, soak.model.simulation_text(sim))
        soak.last_edit[sim.name] = time.monotonic()
        soak.peak[sim.name] = max(soak.peak.get(sim.name, 0), sim.simulators)

    def editable(self) -> list[Simulation]:
        covered = {name for w in self.soak.windows for name in w.simulations}
        return [s for n, s in self.soak.model.simulations.items() if n not in covered]

    def _pick(self) -> Simulation | None:
        sims = self.editable()
        return self.rng.choice(sims) if sims else None

    def scale(self) -> str | None:
        sim = self._pick()
        if sim is None:
            return None
        sizes = [n for n in range(sim.floor, sim.ceiling + 1) if n != sim.simulators]
        if not sizes:
            return None
        sim.simulators = self.rng.choice(sizes)
        self.write(sim)
        return "spec: scale up/down"

    def image(self) -> str | None:
        sim = self._pick()
        if sim is None:
            return None
        sim.image += 1
        self.write(sim)
        return "spec: image change (rollout)"

    def env(self) -> str | None:
        sim = self._pick()
        if sim is None:
            return None
        sim.generation += 1
        self.write(sim)
        return "spec: env change (rollout)"

    def suspend(self) -> str | None:
        sim = self._pick()
        if sim is None:
            return None
        sim.suspend = not sim.suspend
        self.write(sim)
        return "spec: suspend toggled"

    def toggle_extra(self) -> str | None:
        model = self.soak.model
        if model.extra is not None:
            added = model.extra
            model.extra = None
            added.path, added.suspend = f"{EXTRA}.yaml", False
            model.simulations[EXTRA] = added
            self.write(added)
            return "spec: second file added"
        removed = model.simulations.get(EXTRA)
        if removed is None or all(s.name != EXTRA for s in self.editable()):
            return None
        (self.soak.fleet.specs / removed.path).unlink()
        del model.simulations[EXTRA]
        model.extra = removed
        return "spec: second file removed"

    # --------------------------------------------------------- files briefly or long bad

    def _settled(self) -> Simulation | None:
        sims = self.soak.settled()
        return self.rng.choice(sims) if sims else None

    def move(self) -> str | None:
        """Move a simulation to another file the way a checkout may: not atomically."""
        sim = self._settled()
        if sim is None:
            return None
        window = self.soak.open_window("file moved", [sim])
        old = self.soak.fleet.specs / sim.path
        moved = not sim.path.startswith("moved/")
        sim.path = f"moved/{sim.name}.yaml" if moved else f"{sim.name}.yaml"
        delete_first = self.rng.random() < 0.5
        if delete_first:
            old.unlink()
            time.sleep(self.rng.uniform(*GAP))
            self.write(sim)
        else:
            self.write(sim)  # defined twice for a moment
            time.sleep(self.rng.uniform(*GAP))
            old.unlink()
        window.judge_at = time.monotonic() + GRACE
        return f"file: simulation moved, {'deleted' if delete_first else 'written'} first"

    def bad_file(self) -> str | None:
        sim = self._settled()
        if sim is None:
            return None
        kind = self.rng.choice(invalid_kinds())
        window = self.soak.open_window(f"bad file ({kind})", [sim])
        self.soak.fleet.write(sim.path, invalid_text(kind, self.soak.model.simulation_text(sim)))
        window.restore = lambda: self.write(sim)
        window.restore_at = time.monotonic() + self.rng.uniform(*BAD_FOR)
        return f"bad file: {kind}"

    def rewrite_slowly(self, *, empty: bool) -> str | None:
        """Truncate a file, then write it in place after a pause (``gen > file``)."""
        sim = self._settled()
        if sim is None:
            return None
        kind = "empty file, then written" if empty else "half-written file"
        window = self.soak.open_window(kind, [sim])
        good = self.soak.model.simulation_text(sim)
        first = "" if empty else header_prefix(good, self.rng)
        with (self.soak.fleet.specs / sim.path).open("w") as file:
            file.write(first)
            file.flush()
            time.sleep(self.rng.uniform(*GAP))
            file.write(good[len(first) :])
        window.judge_at = time.monotonic() + GRACE
        return f"file: {kind}"

    def stray_file(self) -> str | None:
        self.stray_count += 1
        path = self.soak.fleet.specs / f"zz-stray-{self.stray_count}.yaml"
        path.write_text("apiVersion: simfleet/v1\nkind: Simulation\nmetadata: {name: stray\n")
        self.soak.strays[path] = time.monotonic() + self.rng.uniform(*BAD_FOR)
        return "bad file: a stray file with a syntax error"

    def bad_pool(self) -> str | None:
        sims = self.soak.settled()
        if not sims:
            return None
        soak = self.soak
        window = soak.open_window("bad pool file", sims)
        soak.fleet.write(POOL_FILE, broken_pool(soak.model.pool_text()))

        def restore() -> None:
            soak.fleet.write(POOL_FILE, soak.model.pool_text())

        window.restore = restore
        window.restore_at = time.monotonic() + self.rng.uniform(*BAD_FOR)
        return "bad file: pool file with a syntax error"

    # -------------------------------------------------------------------- controller

    def kill(self) -> str | None:
        """``kill -9`` the controller, often just after an edit, and start it again."""
        soak = self.soak
        if not soak.daemon_up:
            return None
        if self.rng.random() < 0.5:
            edited = (self.scale if self.rng.random() < 0.5 else self.image)()
            if edited is not None:
                soak.tally.faults[edited] += 1
        time.sleep(self.rng.uniform(0.0, 0.6))
        soak.kill_daemon()
        soak.tally.kills += 1
        sims = self.editable()
        if sims and self.rng.random() < 0.3:
            sim = self.rng.choice(sims)
            soak.model.rotate(sim.secret_var)
            soak.fleet.env.update(soak.model.controller_env())
            soak.last_edit[sim.name] = time.monotonic()
            soak.tally.faults["controller restarted with a secret rotated"] += 1
        soak.observe(self.rng.uniform(0.0, 2.0))  # simulators run unsupervised meanwhile
        soak.ensure_daemon()
        return "controller kill -9"

    # ------------------------------------------------------------------------ quiet

    def quiet(self) -> float | None:
        """Faults stop; the time until the fleet converged, or None past the bound."""
        soak = self.soak
        since = time.monotonic()
        soak.faults.calm()
        soak.restore_all()
        for sim in soak.model.simulations.values():
            if sim.suspend:
                sim.suspend = False
                self.write(sim)
        soak.ensure_daemon()
        took = soak.converge(since)
        deadline = time.monotonic() + GRACE + 2
        while soak.windows and time.monotonic() < deadline:
            soak.observe(0.5)
        soak.reset_peaks()
        soak.scan_outputs()
        return took


def run(soak: Soak) -> Tally:
    """The whole run: set up, rounds until the time is up, final checks, clean up."""
    tally = soak.tally
    steps = Steps(soak)
    fleet = soak.fleet
    try:
        fleet.specs.mkdir()
        for path, text in soak.model.files().items():
            fleet.write(path, text)
        fleet.env.update(soak.model.controller_env())
        soak.bystanders = bystanders_for(fleet)
        print(f"  bystanders: {soak.bystanders.describe()}", flush=True)
        soak.reset_peaks()
        since = time.monotonic()
        soak.ensure_daemon()
        tally.first_convergence = soak.converge(since)
        end = soak.started + soak.seconds
        while time.monotonic() + 5 < end:
            tally.rounds += 1
            phase_end = min(end, time.monotonic() + soak.rng.uniform(*ROUND))
            before = tally.steps
            while time.monotonic() < phase_end:
                steps.one()
                soak.observe(soak.rng.uniform(*DWELL))
            took = steps.quiet()
            if took is not None:
                tally.convergence.append(took)
            print(
                f"  round {tally.rounds}: {tally.steps - before} steps, "
                f"converged in {'-' if took is None else f'{took:.1f} s'} ({soak.elapsed()})",
                flush=True,
            )
    except AbortError as error:
        tally.aborted = str(error)
    except Exception as error:  # the soak itself broke: say so in the table, then clean up
        traceback.print_exc()
        tally.aborted = f"the soak failed: {type(error).__name__}: {error}"
    finally:
        tally.duration = time.monotonic() - soak.started
        soak.finish()
    return tally
