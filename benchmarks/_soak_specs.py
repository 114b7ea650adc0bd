"""The fleet the soak wants, and the spec files that say it, good and bad.

The soak must know at every moment what the daemon *should* have in force, so it keeps
its own model of the fleet (:class:`FleetModel`) and renders the files from it; it never
reads them back. A bad file leaves the model untouched, exactly as the product promises
the daemon keeps a bad file's last good version.

The fleet: one pool ``soak`` (``auto`` sized; on Azure a few Spot nodes too, so that
preemption has something to hit), several main simulations that share ``--simulators``,
and a small ``extra`` simulation whose file comes and goes. Every simulation reads one
secret (``secretEnv``) from a controller variable of its own and prints it to stderr when
it starts, so the redaction of stderr tails is exercised too. The simulator is
``sleep`` after an ``exec``: cheap enough for 500 of them on a small machine, and the
census finds it by its name.

Bad variants (:func:`invalid`) are valid YAML that the spec contract refuses, or no
YAML at all; each must leave the last good version in force. They stay on the header
side of a file where a prefix could be *valid* (a half-written ``simulators: 45`` reads
as ``simulators: 4``), since such a write really changes the spec and proves nothing.
"""

from __future__ import annotations

import math
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

POOL = "soak"
POOL_FILE = "pool.yaml"
EXTRA = "extra"
SLOTS_PER_NODE = 8
#: The simulator: print the secret (redaction must hide it), then sleep.
COMMAND = 'echo "soak: starting, token $SOAK_TOKEN" >&2; exec sleep 100000'
#: Mirrors ``rollout.maxSurge`` below; the checks bound rollout pairs with it.
MAX_SURGE = 0.25


@dataclass
class Simulation:
    """One simulation as the soak wants it; ``path`` is its file under the specs dir."""

    name: str
    path: str
    ceiling: int  # its share of --simulators: scale edits stay within [ceiling/2, ceiling]
    simulators: int
    secret_var: str
    image: int = 1
    generation: int = 1
    suspend: bool = False

    @property
    def floor(self) -> int:
        return max(1, math.ceil(self.ceiling / 2))


@dataclass
class FleetModel:
    """What the specs say: the pool, the simulations defined now, the secret values."""

    backend: str
    marker: str
    simulators: int
    simulations: dict[str, Simulation] = field(default_factory=dict)
    extra: Simulation | None = None  # the extra simulation while its file is absent
    secret_values: dict[str, str] = field(default_factory=dict)  # controller var → value
    every_secret: dict[str, str] = field(default_factory=dict)  # every value ever → var

    @classmethod
    def initial(cls, backend: str, marker: str, simulators: int) -> FleetModel:
        """A fleet of ``simulators`` split into simulations of at most about 100.

        With 500: extra 50, then 450 over 5 simulations of 90. With 10: extra 1, 5 + 4.
        """
        model = cls(backend=backend, marker=marker, simulators=simulators)
        extra = max(1, simulators // 10)
        rest = max(2, simulators - extra)
        count = min(8, max(2, math.ceil(rest / 100)))
        sizes = [rest // count + (1 if i < rest % count else 0) for i in range(count)]
        for index, size in enumerate(sizes):
            name = f"sim{index}"
            model.simulations[name] = model._new(name, f"{name}.yaml", max(1, size), index)
        model.extra = model._new(EXTRA, f"{EXTRA}.yaml", extra, len(sizes))
        return model

    def _new(self, name: str, path: str, size: int, index: int) -> Simulation:
        var = f"SOAK_SECRET_{index}"
        self.rotate(var)
        return Simulation(name, path, size, size, var)

    def rotate(self, var: str) -> str:
        """A fresh secret value for controller variable ``var`` (remembered for the scan)."""
        value = f"soak-secret-{secrets.token_hex(12)}"
        self.secret_values[var] = value
        self.every_secret[value] = var
        return value

    def controller_env(self) -> dict[str, str]:
        return dict(self.secret_values)

    # ---------------------------------------------------------------------------- files

    def files(self) -> dict[str, str]:
        """Every good spec file: path under the specs dir → text."""
        texts = {POOL_FILE: self.pool_text()}
        for sim in self.simulations.values():
            texts[sim.path] = self.simulation_text(sim)
        return texts

    def pool_text(self) -> str:
        nodes = math.ceil(self.simulators * (1 + MAX_SURGE) / SLOTS_PER_NODE) + 2
        spot = max(1, nodes // 10) if self.backend == "azure" else 0
        return (
            f"apiVersion: simfleet/v1\nkind: Pool\nmetadata: {{name: {POOL}}}\n"
            f"spec:\n  vmSize: standard_d2s_v5\n  taskSlotsPerNode: {SLOTS_PER_NODE}\n"
            f"  nodes: {{dedicated: auto, spot: {spot}, max: {nodes + spot}}}\n"
        )

    def simulation_text(self, sim: Simulation) -> str:
        command = COMMAND.replace("'", "''")
        return (
            f"apiVersion: simfleet/v1\nkind: Simulation\nmetadata: {{name: {sim.name}}}\n"
            f"spec:\n  pool: {POOL}\n  simulators: {sim.simulators}\n"
            f"  image: soak/sim:{sim.image}\n"
            f"  command: [sh, -c, '{command}']\n"
            f"  env: {{SCENARIO_MARKER: {self.marker}, SOAK_GENERATION: '{sim.generation}'}}\n"
            f"  secretEnv: {{SOAK_TOKEN: {{fromEnv: {sim.secret_var}}}}}\n"
            f"  restartBackoff: {{initial: 1s, max: 4s, resetAfter: 1m}}\n"
            f"  rollout: {{maxSurge: {round(MAX_SURGE * 100)}%, maxUnavailable: 0}}\n"
            f"  suspend: {'true' if sim.suspend else 'false'}\n"
        )


# ------------------------------------------------------------------------ bad variants


def _sub(pattern: str, replacement: str) -> Callable[[str], str]:
    return lambda text: re.sub(pattern, replacement, text, count=1, flags=re.MULTILINE)


#: label → how a good simulation file becomes one the contract refuses.
_INVALID: dict[str, Callable[[str], str]] = {
    "syntax error": lambda text: text.replace("spec:\n", "spec: [\n", 1),
    "negative count": _sub(r"^  simulators: \d+", "  simulators: -3"),
    "wrong type": _sub(r"^  simulators: \d+", "  simulators: many"),
    "unknown field": _sub(r"^spec:\n", "spec:\n  replicas: 3\n"),
    "overflowing duration": _sub(r"max: 4s", "max: 999999999999d"),
    "infinite lifetime": _sub(r"^  suspend:", "  maxLifetime: .inf\n  suspend:"),
    "NUL byte in env": _sub(r"^  env: \{", '  env: {SOAK_NUL: "a\\0b", '),
    "blank image": _sub(r"^  image: .*$", '  image: " "'),
    "case-mismatched pool": _sub(rf"^  pool: {POOL}$", f"  pool: {POOL.upper()}"),
    "no documents": lambda _: "# emptied by the soak: a file with no documents\n",
    "duplicate env name": _sub(r"^  env: \{", "  env: {SOAK_TOKEN: plain, "),
}


def invalid_kinds() -> list[str]:
    return list(_INVALID)


def invalid(kind: str, good: str) -> str:
    """``good`` turned into the bad variant ``kind`` (see :func:`invalid_kinds`)."""
    bad = _INVALID[kind](good)
    assert bad != good, f"the {kind!r} variant did not change the file"
    return bad


def header_prefix(good: str, rng: random.Random) -> str:
    """What a writer that has not reached ``spec:`` yet leaves behind (never valid)."""
    end = good.index("spec:")
    return good[: rng.randint(1, end)]


def broken_pool(good: str) -> str:
    return good.replace("spec:\n", "spec: [\n", 1)
