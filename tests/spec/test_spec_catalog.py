"""Combining files into one catalog: duplicates, last good versions, missing and empty."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.reconcile import desired_state
from controller.spec import Catalog, SimulationSpec, build_catalog, load_directory, load_paths

Write = Callable[[str, str], Path]

POOL = "apiVersion: simfleet/v1\nkind: Pool\nmetadata:\n  name: {name}\nspec: {{vmSize: x}}\n"
SIMULATION = (
    "apiVersion: simfleet/v1\nkind: Simulation\nmetadata:\n  name: {name}\n"
    "spec: {{pool: {pool}, image: i, simulators: {count}}}\n"
)
BROKEN = "apiVersion: simfleet/v1\nkind: Simulation\nmetadata: {name: cartpole}\nspec: [\n"


def pool(name: str) -> str:
    return POOL.format(name=name)


def simulation(name: str, count: int = 1, pool: str = "sims") -> str:
    return SIMULATION.format(name=name, count=count, pool=pool)


def catalog(specs: Path, previous: Catalog | None = None) -> Catalog:
    return build_catalog(load_directory(specs), previous)


def simulators(found: Catalog, name: str) -> int:
    spec = found.simulations[name].spec
    assert isinstance(spec, SimulationSpec)
    return spec.simulators


def messages(found: Catalog) -> list[str]:
    return [str(error) for error in found.errors]


class TestCombining:
    def test_objects_of_all_files_by_name(self, write: Write, specs: Path) -> None:
        write("pool.yaml", pool("sims"))
        write("sims/a.yaml", simulation("a") + "---\n" + simulation("b"))
        found = catalog(specs)
        assert sorted(found.pools) == ["sims"]
        assert sorted(found.simulations) == ["a", "b"]
        assert found.errors == ()
        assert sorted(found.files) == ["specs/pool.yaml", "specs/sims/a.yaml"]
        assert (found.missing, found.empty) == (False, False)

    def test_pools_and_simulations_are_separate_namespaces(self, write: Write, specs: Path) -> None:
        write("a.yaml", pool("cartpole") + "---\n" + simulation("cartpole", pool="cartpole"))
        found = catalog(specs)
        assert (list(found.pools), list(found.simulations)) == (["cartpole"], ["cartpole"])

    @pytest.mark.parametrize(
        ("create", "missing", "empty"),
        [
            pytest.param(False, True, True, id="missing-counts-as-empty"),
            pytest.param(True, False, True, id="empty-directory"),
        ],
    )
    def test_missing_and_empty(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        create: bool,
        missing: bool,
        empty: bool,
    ) -> None:
        monkeypatch.chdir(tmp_path)
        if create:
            Path("specs").mkdir()
        found = catalog(Path("specs"))
        assert (found.missing, found.empty) == (missing, empty)
        assert (dict(found.pools), dict(found.simulations), found.errors) == ({}, {}, ())

    def test_a_file_without_documents_is_still_a_spec_file(self, write: Write, specs: Path) -> None:
        write("a.yaml", "# all commented out\n")
        found = catalog(specs)
        assert found.empty is False
        assert messages(found) == [
            "specs/a.yaml:1:1: the file holds no documents; delete the file to remove what"
            " it defined"
        ]


class TestDuplicateNames:
    def test_reported_at_both_places_each_naming_the_other(self, write: Write, specs: Path) -> None:
        write("a.yaml", simulation("cartpole"))
        write("b.yaml", "\n" + simulation("cartpole"))
        found = catalog(specs)
        assert messages(found) == [
            'specs/a.yaml:4:9: metadata.name: Simulation "cartpole" is also defined at'
            " specs/b.yaml:5:9",
            'specs/b.yaml:5:9: metadata.name: Simulation "cartpole" is also defined at'
            " specs/a.yaml:4:9",
        ]
        assert dict(found.simulations) == {}

    def test_names_compare_without_case(self, write: Write, specs: Path) -> None:
        write("a.yaml", pool("Sims"))
        write("b.yaml", pool("sims"))
        found = catalog(specs)
        assert messages(found) == [
            'specs/a.yaml:4:9: metadata.name: Pool "Sims" is also defined at specs/b.yaml:4:9',
            'specs/b.yaml:4:9: metadata.name: Pool "sims" is also defined at specs/a.yaml:4:9',
        ]
        assert dict(found.pools) == {}

    def test_within_one_file(self, write: Write, specs: Path) -> None:
        write("a.yaml", pool("sims") + "---\n" + pool("sims"))
        assert messages(catalog(specs)) == [
            'specs/a.yaml:4:9: metadata.name: Pool "sims" is also defined at specs/a.yaml:10:9',
            'specs/a.yaml:10:9: metadata.name: Pool "sims" is also defined at specs/a.yaml:4:9',
        ]

    def test_three_definitions_each_name_the_other_two(self, write: Write, specs: Path) -> None:
        for name in ("a.yaml", "b.yaml", "c.yaml"):
            write(name, pool("sims"))
        found = catalog(specs)
        assert len(found.errors) == 6
        assert {e.file for e in found.errors} == {"specs/a.yaml", "specs/b.yaml", "specs/c.yaml"}

    def test_the_previous_version_stays_in_force(self, write: Write, specs: Path) -> None:
        write("pool.yaml", pool("sims"))
        write("a.yaml", simulation("cartpole", count=3))
        first = catalog(specs)
        write("b.yaml", simulation("cartpole", count=9))
        second = catalog(specs, first)
        assert len(second.errors) == 2
        assert simulators(second, "cartpole") == 3
        assert second.simulations["cartpole"] is first.simulations["cartpole"]

    def test_the_name_comes_back_once_the_duplicate_is_gone(
        self, write: Write, specs: Path
    ) -> None:
        write("pool.yaml", pool("sims"))
        write("a.yaml", simulation("cartpole", count=3))
        write("b.yaml", simulation("cartpole", count=9))
        first = catalog(specs)
        (specs / "a.yaml").unlink()
        second = catalog(specs, first)
        assert (second.errors, simulators(second, "cartpole")) == ((), 9)


class TestLastGoodVersion:
    def test_a_broken_file_keeps_its_last_good_objects(self, write: Write, specs: Path) -> None:
        write("pool.yaml", pool("sims"))
        write("a.yaml", simulation("cartpole", count=3))
        write("other.yaml", simulation("other"))
        good = catalog(specs)
        write("a.yaml", BROKEN)
        write("other.yaml", simulation("other", count=5))
        broken = catalog(specs, good)
        assert simulators(broken, "cartpole") == 3
        assert simulators(broken, "other") == 5  # other files go on being reconciled
        assert messages(broken) == [
            "specs/a.yaml:5:1: expected the node content, but found '<stream end>'"
        ]
        assert broken.files["specs/a.yaml"] is good.files["specs/a.yaml"]

    def test_the_last_good_version_survives_several_broken_passes(
        self, write: Write, specs: Path
    ) -> None:
        write("pool.yaml", pool("sims"))
        write("a.yaml", simulation("cartpole", count=3))
        found = catalog(specs)
        for text in (BROKEN, "kind: x\n", BROKEN):
            write("a.yaml", text)
            found = catalog(specs, found)
            assert simulators(found, "cartpole") == 3
            assert len(found.errors) == 1

    def test_a_fixed_file_takes_over(self, write: Write, specs: Path) -> None:
        write("pool.yaml", pool("sims"))
        write("a.yaml", simulation("cartpole", count=3))
        good = catalog(specs)
        write("a.yaml", BROKEN)
        broken = catalog(specs, good)
        write("a.yaml", simulation("cartpole", count=7))
        fixed = catalog(specs, broken)
        assert (fixed.errors, simulators(fixed, "cartpole")) == ((), 7)

    def test_a_file_that_never_loaded_contributes_nothing(self, write: Write, specs: Path) -> None:
        write("a.yaml", BROKEN)
        found = catalog(specs, catalog(specs))
        assert dict(found.simulations) == {}
        assert len(found.errors) == 1
        assert found.files["specs/a.yaml"].errors == found.errors

    def test_a_removed_file_is_simply_gone(self, write: Write, specs: Path) -> None:
        write("a.yaml", simulation("cartpole"))
        write("keep.yaml", pool("sims"))
        first = catalog(specs)
        (specs / "a.yaml").unlink()
        second = catalog(specs, first)
        assert (dict(second.simulations), sorted(second.files)) == ({}, ["specs/keep.yaml"])

    def test_a_broken_file_that_is_then_removed_is_gone(self, write: Write, specs: Path) -> None:
        write("a.yaml", simulation("cartpole"))
        good = catalog(specs)
        write("a.yaml", BROKEN)
        broken = catalog(specs, good)
        (specs / "a.yaml").unlink()
        gone = catalog(specs, broken)
        assert (dict(gone.simulations), gone.errors, gone.empty) == ({}, (), True)


class TestPoolReferences:
    """``pool:`` names a Pool exactly; otherwise the Simulation is held like a broken file.

    ``pool: SIMS16`` against Pool ``sims16`` once passed ``validate``; Batch takes the two
    for the same pool, and the daemon called the pool undefined without any spec error.
    """

    def test_a_dangling_reference_is_an_error_with_a_suggestion(
        self, write: Write, specs: Path
    ) -> None:
        write("pool.yaml", pool("sims16"))
        write("a.yaml", simulation("cartpole", pool="sims61"))
        found = catalog(specs)
        assert messages(found) == [
            'specs/a.yaml:5:14: spec.pool: Pool "sims61" is not defined; did you mean "sims16"?'
        ]
        assert dict(found.simulations) == {}

    def test_a_reference_in_another_case_is_an_error(self, write: Write, specs: Path) -> None:
        write("pool.yaml", pool("sims16"))
        write("a.yaml", simulation("cartpole", pool="SIMS16"))
        assert messages(catalog(specs)) == [
            'specs/a.yaml:5:14: spec.pool: Pool "SIMS16" is not defined; did you mean'
            ' "sims16"? (write the name as the Pool spells it)'
        ]

    @pytest.mark.parametrize(
        ("pools", "expected"),
        [
            pytest.param([], "no spec defines a Pool", id="none"),
            pytest.param(["alpha", "beta"], "the Pools defined are alpha, beta", id="far-off"),
        ],
    )
    def test_without_a_close_name_the_pools_are_listed(
        self, write: Write, specs: Path, pools: list[str], expected: str
    ) -> None:
        for name in pools:
            write(f"{name}.yaml", pool(name))
        write("a.yaml", simulation("cartpole", pool="zzz"))
        assert messages(catalog(specs)) == [
            f'specs/a.yaml:5:14: spec.pool: Pool "zzz" is not defined; {expected}'
        ]

    def test_the_previous_version_stays_in_force(self, write: Write, specs: Path) -> None:
        write("pool.yaml", pool("sims"))
        write("a.yaml", simulation("cartpole", count=3))
        write("b.yaml", simulation("other", count=1))
        good = catalog(specs)
        write("a.yaml", simulation("cartpole", count=9, pool="SIMS"))
        write("b.yaml", simulation("other", count=2))
        held = catalog(specs, good)
        assert held.simulations["cartpole"] is good.simulations["cartpole"]
        assert simulators(held, "other") == 2  # other simulations go on being reconciled
        assert len(held.errors) == 1
        # And the held version survives more passes with the error.
        assert catalog(specs, held).simulations["cartpole"] is good.simulations["cartpole"]

    def test_a_pool_defined_twice_is_not_also_called_undefined(
        self, write: Write, specs: Path
    ) -> None:
        write("a.yaml", pool("sims"))
        write("b.yaml", pool("sims"))
        write("c.yaml", simulation("cartpole"))
        assert {e.path for e in catalog(specs).errors} == {"metadata.name"}

    def test_a_pool_of_a_broken_file_keeps_its_simulations(self, write: Write, specs: Path) -> None:
        write("pool.yaml", pool("sims"))
        write("a.yaml", simulation("cartpole"))
        good = catalog(specs)
        write("pool.yaml", "kind: [\n")
        broken = catalog(specs, good)
        assert list(broken.simulations) == ["cartpole"]
        assert [e.file for e in broken.errors] == ["specs/pool.yaml"]

    def test_single_files_named_on_their_own_are_checked_only_for_case(
        self, write: Write, specs: Path
    ) -> None:
        # `validate a.yaml` (a pre-commit hook passes changed files) cannot see a Pool
        # defined in a file it was not given; it still sees a Pool it was given.
        a = write("a.yaml", simulation("cartpole", pool="elsewhere"))
        p = write("pool.yaml", pool("sims"))
        b = write("b.yaml", simulation("other", pool="Sims"))
        found = build_catalog(load_paths([a, p, b]))
        assert [(e.file, e.path) for e in found.errors] == [("specs/b.yaml", "spec.pool")]
        assert list(found.simulations) == ["cartpole"]

    def test_the_simulation_is_held_and_pruning_waits(self, write: Write, specs: Path) -> None:
        write("pool.yaml", pool("sims"))
        write("a.yaml", simulation("cartpole", count=3))
        good = catalog(specs)
        write("a.yaml", simulation("cartpole", count=9, pool="simz"))
        write("new.yaml", simulation("fresh", pool="simz"))
        desired, errors = desired_state(catalog(specs, good), {}, revision_key=b"k" * 32)
        assert sorted(desired.simulations) == ["cartpole"]  # fresh is left out
        assert desired.simulations["cartpole"].spec.simulators == 3
        assert desired.prune_held_because == "2 spec error(s) must be fixed first"
        assert desired.notes["cartpole"] == (
            "specs/a.yaml has errors; its last good version stays in force"
        )
        assert len(errors) == 2
