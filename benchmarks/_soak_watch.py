"""One soak run against one backend: rounds of random steps, each round ending in a quiet
phase in which the fleet must converge within a bound; invariants checked all along.

The daemon is the real one (``python -m controller run``), started and killed through the
scenario tests' :class:`~tests.scenarios.conftest.Fleet`. A *step* (:mod:`_soak_rounds`)
edits the specs, writes a bad file, crashes a simulator, makes the backend fail or kills
the controller; between steps the runner looks (:meth:`Soak.check`) at what really runs:

* no slot holds two live simulators of one template, and the simulators beyond one per
  slot (a rollout's replacements) stay within ``maxSurge`` of the most simulators asked
  since the fleet last converged (a suspicion is confirmed by a second census, since a
  process census is not atomic);
* the bystanders (:mod:`_soak_bystanders`) are untouched;
* simulators a bad, empty, half-written or moving file covered (a *window*) are all still
  there after it was good again for longer than the prune delay, except those the soak
  crashed itself;
* the daemon did not exit by itself; no secret value shows in ``/status``.

Every wait has a deadline; the run ends after ``seconds`` plus the last quiet phase.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _soak_checks as checks
from _soak_bystanders import AzureBystanders, Bystanders, LocalBystanders
from _soak_faults import AzureFaults, Faults, LocalFaults
from _soak_specs import FleetModel, Simulation
from _soak_tally import Tally

from tests.scenarios.conftest import REPO, EmulatorDriver, Fleet, make_driver, processes_with

#: Passed as ``--prune-delay`` when the daemon has the option.
PRUNE_DELAY = 5.0
#: A window is judged this long after its file is good again (a prune may come late).
GRACE = PRUNE_DELAY + 4.0
#: Seconds between looks at ``/status`` and the bystanders while faults go on.
PEEK = 2.0
#: A simulation counts as settled this long after its last edit or a daemon start.
SETTLE = 3.0


class AbortError(Exception):
    """The run cannot go on: the daemon does not start even with every file good."""


@dataclass
class Window:
    """Simulations whose file is bad, empty, half-written or moving: nothing may stop.

    ``protected`` are the simulators running on the current template when it opened;
    each must still be alive when the window is judged, unless the soak crashed it.
    They are told by identity, not task id: a simulation pruned and created again reuses
    its task ids.
    """

    kind: str
    simulations: tuple[str, ...]
    protected: dict[str, str]  # identity (see _soak_faults) → task id
    opened: str
    restore: Callable[[], None] | None = None
    restore_at: float = 0.0
    judge_at: float | None = None


@dataclass
class Soak:
    """The state of one run; the steps live in :mod:`_soak_rounds` and act on it."""

    backend: str
    seconds: float
    bound: float
    rng: random.Random
    fleet: Fleet
    model: FleetModel
    tally: Tally
    faults: Faults
    daemon_args: tuple[str, ...]
    bystanders: Bystanders | None = None
    windows: list[Window] = field(default_factory=list)
    strays: dict[Path, float] = field(default_factory=dict)  # stray bad file → removal
    peak: dict[str, int] = field(default_factory=dict)  # most asked since convergence
    last_edit: dict[str, float] = field(default_factory=dict)
    daemon_up: bool = False
    daemon_started: float = 0.0
    census_cost: float = 0.05
    next_peek: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def create(
        cls, backend: str, simulators: int, seconds: float, bound: float, seed: int, root: Path
    ) -> Soak:
        fleet = Fleet(root=root, driver=make_driver(backend, root))
        model = FleetModel.initial(backend, fleet.marker, simulators)
        faults: Faults = (LocalFaults if backend == "local" else AzureFaults)(fleet, model)
        return cls(
            backend=backend,
            seconds=seconds,
            bound=bound,
            rng=random.Random(f"{seed}-{backend}"),
            fleet=fleet,
            model=model,
            tally=Tally(backend, seed, simulators, bound),
            faults=faults,
            daemon_args=daemon_args(),
        )

    def elapsed(self) -> str:
        return f"t+{time.monotonic() - self.started:.1f}s"

    # ---------------------------------------------------------------------- the daemon

    def start_daemon(self) -> bool:
        try:
            self.fleet.start(*self.daemon_args)
        except AssertionError as error:
            why = _last_line(str(error))
            self.tally.start_failures.append(f"{self.elapsed()}: {why}")
            print(f"    ! the daemon did not start: {why}", flush=True)
            if self.fleet.process is not None and self.fleet.process.poll() is None:
                self.fleet.kill9()
            return False
        self.daemon_up = True
        self.daemon_started = time.monotonic()
        return True

    def ensure_daemon(self) -> None:
        """Start the daemon if it is down; with every file good if it will not start."""
        if self.daemon_up or self.start_daemon():
            return
        self.restore_all()
        if not self.start_daemon():
            raise AbortError("the daemon does not start even with every spec file good")

    def restore_all(self) -> None:
        """Every file good again now: bad ones, strays, the pool."""
        now = time.monotonic()
        for window in self.windows:
            if window.restore is not None:
                window.restore()
                window.restore = None
                window.judge_at = now + GRACE
        for path in list(self.strays):
            path.unlink(missing_ok=True)
        self.strays.clear()

    def kill_daemon(self) -> None:
        self.daemon_up = False
        self.fleet.kill9()

    # ------------------------------------------------------------------------ looking

    def census(self) -> checks.Census:
        begun = time.monotonic()
        census = self.fleet.driver.live_by_simulation(self.fleet.marker)
        self.census_cost = time.monotonic() - begun
        return census

    def status(self) -> dict[str, Any] | None:
        """``/status`` (scanned for secrets), or None while the daemon is down."""
        if not self.daemon_up:
            return None
        try:
            raw = self.fleet.raw_status()
        except (OSError, http.client.HTTPException):
            return None  # killed, or killed while it answered
        self.scan("/status", raw)
        document: dict[str, Any] = json.loads(raw)
        return document

    def scan(self, source: str, text: str) -> None:
        for value in checks.secrets_in(text, self.model.every_secret):
            self.found_secret(f"{source} {checks.where(text, value)}", value)

    def found_secret(self, place: str, value: str) -> None:
        var = self.model.every_secret[value]
        current = self.model.secret_values.get(var) == value
        which = f"{var}'s {'current' if current else 'rotated-away'} value"
        self._note(self.tally.secrets, f"{place}: {which}", "secret")

    def scan_outputs(self) -> None:
        """Everything simfleet shows or stores, searched for every secret value ever used."""
        for path in ("/metrics", "/"):
            if self.daemon_up:
                url = f"http://127.0.0.1:{self.fleet.port}{path}"
                with (
                    contextlib.suppress(OSError, http.client.HTTPException),
                    urllib.request.urlopen(url, timeout=10) as r,
                ):
                    self.scan(path, r.read().decode(errors="replace"))
        for place, value in checks.secrets_in_state(self.fleet.state_dir, self.model.every_secret):
            self.found_secret(f"state dir {place}", value)
        self.scan("daemon log", self.fleet.log())

    def _note(self, into: set[str] | dict[str, str] | list[str], text: str, what: str) -> None:
        """Record a problem once, and say so as it happens."""
        if text in into:
            return
        if isinstance(into, set):
            into.add(text)
        elif isinstance(into, dict):
            into[text] = f"{self.elapsed()}: {text}"
        else:
            into.append(text)
        print(f"    ! {what}: {text} ({self.elapsed()})", flush=True)

    def check(self) -> checks.Census:
        """One look at everything the invariants cover; returns the census it took."""
        census = self.check_slots()
        if self.daemon_up and self.fleet.process is not None:
            code = self.fleet.process.poll()
            if code is not None:
                self.daemon_up = False
                why = f"exit code {code}: {_last_line(self.fleet.log())}"
                self._note(self.tally.daemon_exits, f"{self.elapsed()} {why}", "daemon exited")
                self.ensure_daemon()
        self.tend_files()
        if time.monotonic() >= self.next_peek:
            self.next_peek = time.monotonic() + PEEK
            if self.bystanders is not None:
                for problem in self.bystanders.problems():
                    self._note(self.tally.bystanders, problem, "bystander")
            self.status()
        return census

    def check_slots(self) -> checks.Census:
        """Duplicates and surges past maxSurge, each confirmed by a second census."""
        census = self.census()
        suspects = {str(p) for p in checks.doubled(census)}
        excess = self.excess(census)
        if suspects or excess:
            census = self.census()  # a process census is not atomic: see it twice
            for problem in checks.doubled(census):
                if str(problem) in suspects:
                    self._note(self.tally.doubled, str(problem), "doubled slot")
            for name, text in self.excess(census).items():
                if name in excess:
                    self._note(self.tally.surge_excess, text, "over maxSurge")
        return census

    def tend_files(self) -> None:
        """Fix bad files that are due, judge windows that are due, drop stray files."""
        now = time.monotonic()
        for window in list(self.windows):
            if window.restore is not None and now >= window.restore_at:
                window.restore()
                window.restore = None
                window.judge_at = time.monotonic() + GRACE
            if window.judge_at is not None and now >= window.judge_at:
                self.judge(window)
        for path, due in list(self.strays.items()):
            if now >= due:
                path.unlink(missing_ok=True)
                del self.strays[path]

    def excess(self, census: checks.Census) -> dict[str, str]:
        """Simulations with more surged simulators than maxSurge allows → why."""
        return {
            name: f"{name}: {n} simulators beyond one per slot, maxSurge allows {allowed}"
            for name, n in checks.surplus(census).items()
            if n > (allowed := checks.surge_allowance(self.peak.get(name, 0)))
        }

    def judge(self, window: Window) -> None:
        self.windows.remove(window)
        gone = sorted(set(window.protected) - self.faults.alive() - self.faults.crashed)
        if gone:
            stopped = [window.protected[identity] for identity in gone]
            text = (
                f"{window.kind} at {window.opened}: {len(gone)} of {len(window.protected)} "
                f"simulators stopped ({', '.join(stopped[:3])}{', …' if len(gone) > 3 else ''})"
            )
            self.tally.disrupted += len(gone)
            self._note(self.tally.disruptions, text, "stopped by a file")

    def observe(self, seconds: float) -> None:
        """Keep checking for ``seconds``, leaving the machine time between censuses."""
        end = time.monotonic() + seconds
        while True:
            self.check()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, max(0.25, 4 * self.census_cost)))

    # -------------------------------------------------------------------- convergence

    def settled(self) -> list[Simulation]:
        """Simulations whose status shows the model in force: a window may cover them."""
        now = time.monotonic()
        status = self.status()
        if status is None or now - self.daemon_started < SETTLE:
            return []
        covered = {name for w in self.windows for name in w.simulations}
        rows = {s["name"]: s for s in status["simulations"]}
        return [
            sim
            for name, sim in self.model.simulations.items()
            if name not in covered
            and not sim.suspend
            and now - self.last_edit.get(name, 0.0) > SETTLE
            and (row := rows.get(name)) is not None
            and (row["desired"], row["ready"], row["upToDate"]) == (sim.simulators,) * 3
        ]

    def open_window(self, kind: str, sims: Iterable[Simulation]) -> Window:
        """Protect the simulators now running on the current template of ``sims``."""
        names = {sim.name: sim for sim in sims}
        status = self.status() or {"simulations": []}
        rows = [
            (row_sim["name"], row)
            for row_sim in status["simulations"]
            if row_sim["name"] in names
            for row in row_sim["simulators"]
            if row["state"] == "running"
            and row["upToDate"]
            and row["slot"] < names[row_sim["name"]].simulators
        ]
        protected = self.faults.identities(rows)
        window = Window(kind, tuple(names), protected, opened=self.elapsed())
        self.windows.append(window)
        return window

    def converge(self, since: float) -> float | None:
        """Wait (bounded) until the fleet matches the model; the seconds it took from
        ``since``, or None after recording why it did not."""
        deadline = since + self.bound
        reasons = ["the daemon never answered /status"]
        census: checks.Census = {}
        while time.monotonic() < deadline:
            census = self.check()
            status = self.status()
            if status is not None:
                reasons = checks.unconverged(self.model, status, census)
                if not reasons:
                    return time.monotonic() - since
            time.sleep(0.5)
        self.tally.unconverged.append(f"{self.elapsed()}: " + "; ".join(reasons[:3]))
        print(f"    ! not converged within {self.bound:.0f} s: {reasons[:3]}", flush=True)
        self.tally.lost += [f"{self.elapsed()}: {s}" for s in checks.lost_slots(self.model, census)]
        return None

    def reset_peaks(self) -> None:
        self.peak = {name: sim.simulators for name, sim in self.model.simulations.items()}

    # ------------------------------------------------------------------------- ending

    def finish(self) -> None:
        """Final scans and checks, then stop everything this run started."""
        with contextlib.suppress(OSError, AssertionError):
            self.scan_outputs()
        if self.bystanders is not None:
            with contextlib.suppress(OSError):
                for problem in self.bystanders.problems():
                    self._note(self.tally.bystanders, problem, "bystander")
        driver = self.fleet.driver
        if isinstance(driver, EmulatorDriver) and driver.process.poll() is None:
            with contextlib.suppress(OSError):
                state = driver.state()
                self.tally.violations = list(state["violations"])
                self.tally.early_arrivals = len(state["earlyArrivals"])
        try:
            self.fleet.cleanup()
        except AssertionError:
            pass  # REST violations: already in the tally
        finally:
            if self.bystanders is not None:
                self.bystanders.close()
        left = processes_with(self.fleet.marker)
        if left:
            print(f"    ! processes left after cleanup: {sorted(left)}", flush=True)


def daemon_args() -> tuple[str, ...]:
    """``--prune-delay`` when this daemon has it (objects are pruned only after it)."""
    usage = subprocess.run(
        [sys.executable, "-m", "controller", "run", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return ("--prune-delay", f"{PRUNE_DELAY:g}") if "--prune-delay" in usage else ()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def bystanders_for(fleet: Fleet) -> Bystanders:
    driver = fleet.driver
    return AzureBystanders(driver) if isinstance(driver, EmulatorDriver) else LocalBystanders(fleet)
