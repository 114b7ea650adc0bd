"""All spec files combined into one desired state, keeping last good versions.

A controller must not tear down a simulation because someone saved a file with a typo.
So a file that fails to load contributes the objects of its last good version (held in
the previous :class:`Catalog`), and its errors are reported until it is fixed. The same
holds when two files claim one name: both places are reported, each naming the other, and
the object keeps its previous version, or is left out if it never had one. Nothing here
reads files; :mod:`controller.spec._loading` does, and this module only combines results.

Names compare without regard to case, as Batch ids do: ``CartPole`` and ``cartpole``
would be the same Batch job. Pools and Simulations are separate namespaces.

A Simulation's ``pool:`` must name a Pool exactly as the Pool spells it. A dangling
reference (``pool: simz``) or one that differs only in case (``pool: SIMS`` for Pool
``sims``, which Batch would take for the same pool and simfleet must not take for another)
is an error at ``spec.pool``, with a did-you-mean, and the Simulation is treated like one
whose file failed: its previous version stays in force, or it is left out if it never had
one. As with every spec error, pruning waits until it is fixed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from controller.spec._errors import SpecError, shorten
from controller.spec._models import PoolSpec, SimulationSpec

if TYPE_CHECKING:
    from controller.spec._loading import DirectoryResult, FileResult

Kind = Literal["Pool", "Simulation"]


@dataclass(frozen=True)
class SpecObject:
    """One valid document: a Pool or a Simulation, and where it was written.

    Attributes:
        kind: ``Pool`` or ``Simulation``.
        name: ``metadata.name``, as written.
        spec: the validated spec.
        file: the display path of the file (``specs/cartpole.yaml``).
        line: 1-based line of the ``metadata.name`` value.
        column: 1-based column of the ``metadata.name`` value.
        positions: dotted field path (YAML spelling, ``spec.secretEnv.KEY.fromEnv``) →
            ``(line, column)`` of its value, for every value in the document, so later
            layers can point at the field a problem comes from.
    """

    kind: Kind
    name: str
    spec: PoolSpec | SimulationSpec
    file: str
    line: int
    column: int
    positions: Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class Catalog:
    """The desired state of one pass, and everything wrong with the files it came from.

    Attributes:
        pools: Pool objects by name.
        simulations: Simulation objects by name.
        errors: every error of every file, and duplicate names, sorted.
        files: per display path, the result in force: the new one if it loaded, else the
            last good one (else the failed one). Pass the catalog as ``previous`` next time.
        missing: the directory does not exist.
        empty: there is no spec file at all (a missing directory counts as empty).
    """

    pools: Mapping[str, SpecObject]
    simulations: Mapping[str, SpecObject]
    errors: tuple[SpecError, ...]
    files: Mapping[str, FileResult]
    missing: bool
    empty: bool


def build_catalog(result: DirectoryResult, previous: Catalog | None = None) -> Catalog:
    """Combine one directory load into a catalog, falling back on ``previous`` per file.

    Args:
        result: what :func:`~controller.spec.load_directory` (or ``load_paths``) read.
        previous: the catalog of the last pass, whose good file versions and objects stay
            in force where the new files fail. ``None`` on the first pass.

    Returns:
        The combined catalog. Files that disappeared since ``previous`` are simply gone.
        A Simulation whose ``pool:`` names no Pool keeps its previous version (else it is
        left out), with an error; when ``result`` is not ``complete``, only a reference
        that differs from a Pool's name in case is an error.
    """
    errors: list[SpecError] = []
    in_force: dict[str, FileResult] = {}
    for file in sorted(result.files, key=lambda f: f.path):
        errors.extend(file.errors)
        last_good = previous.files.get(file.path) if previous is not None else None
        if file.errors and last_good is not None and not last_good.errors:
            in_force[file.path] = last_good
        else:
            in_force[file.path] = file
    objects = [obj for file in in_force.values() for obj in file.objects]
    pools = _namespace("Pool", objects, previous.pools if previous is not None else {}, errors)
    previous_simulations = previous.simulations if previous is not None else {}
    simulations = _namespace("Simulation", objects, previous_simulations, errors)
    pool_names = {obj.name for obj in objects if obj.kind == "Pool"} | set(pools)
    for name, obj in list(simulations.items()):
        error = _pool_reference_error(obj, pool_names, complete=result.complete)
        if error is None:
            continue
        errors.append(error)
        del simulations[name]
        kept = _by_key(previous_simulations).get(name.lower())
        if kept is not None:
            simulations[kept.name] = kept
    return Catalog(
        pools=MappingProxyType(pools),
        simulations=MappingProxyType(simulations),
        errors=tuple(sorted(set(errors))),
        files=MappingProxyType(in_force),
        missing=not result.exists,
        empty=not result.files,
    )


def _namespace(
    kind: Kind,
    objects: Iterable[SpecObject],
    previous: Mapping[str, SpecObject],
    errors: list[SpecError],
) -> dict[str, SpecObject]:
    """Objects of one kind by name; a name defined twice keeps its previous version."""
    by_key: dict[str, list[SpecObject]] = {}
    for obj in objects:
        if obj.kind == kind:
            by_key.setdefault(obj.name.lower(), []).append(obj)
    previous_by_key = _by_key(previous)
    chosen: dict[str, SpecObject] = {}
    for key, claims in by_key.items():
        if len(claims) == 1:
            chosen[claims[0].name] = claims[0]
            continue
        for claim in claims:
            for other in claims:
                if other is not claim:
                    errors.append(
                        SpecError(
                            claim.file,
                            claim.line,
                            claim.column,
                            "metadata.name",
                            f'{kind} "{claim.name}" is also defined at'
                            f" {other.file}:{other.line}:{other.column}",
                        )
                    )
        kept = previous_by_key.get(key)
        if kept is not None:
            chosen[kept.name] = kept
    return chosen


def _by_key(objects: Mapping[str, SpecObject]) -> dict[str, SpecObject]:
    """Objects by their name in lower case, the way Batch compares ids."""
    return {obj.name.lower(): obj for obj in objects.values()}


def _pool_reference_error(
    obj: SpecObject, pool_names: Iterable[str], *, complete: bool
) -> SpecError | None:
    """The error of a Simulation whose ``pool:`` names no Pool exactly, or ``None``.

    Args:
        obj: a Simulation.
        pool_names: every Pool name written in the files in force, as spelled there.
        complete: whether those files are the whole specs directory; if not, a name found
            nowhere may be defined in a file that was not read.
    """
    assert isinstance(obj.spec, SimulationSpec)
    written = obj.spec.pool
    names = sorted(pool_names)
    if written in names:
        return None
    by_lower = {name.lower(): name for name in names}
    same = by_lower.get(written.lower())
    if same is None and not complete:
        return None
    if same is not None:
        hint = f'; did you mean "{same}"? (write the name as the Pool spells it)'
    else:
        close = difflib.get_close_matches(written.lower(), list(by_lower), n=1, cutoff=0.6)
        if close:
            hint = f'; did you mean "{by_lower[close[0]]}"?'
        elif names:
            hint = "; the Pools defined are " + ", ".join(shorten(n) for n in names[:10])
        else:
            hint = "; no spec defines a Pool"
    line, column = obj.positions.get("spec.pool", (obj.line, obj.column))
    message = f'Pool "{written}" is not defined{hint}'
    return SpecError(obj.file, line, column, "spec.pool", message)
