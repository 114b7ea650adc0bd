"""Loading one file: typed values, documents, whole-or-nothing, size and encoding limits."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from controller.spec import (
    AUTO,
    FileResult,
    NodeImage,
    ParsedFiles,
    Percent,
    PoolSpec,
    Registry,
    RestartPolicy,
    SecretRef,
    SimulationSpec,
    SpecError,
    _models,
    _yaml,
    build_catalog,
    load_directory,
    load_file,
    load_paths,
)
from controller.spec._loading import NO_DOCUMENTS

Load = Callable[[str], FileResult]
Write = Callable[[str, str], Path]

#: The two documents of product.md's "Spec files" section, verbatim.
PRODUCT_EXAMPLE = """\
apiVersion: simfleet/v1
kind: Pool
metadata:
  name: sims                    # becomes the Batch pool id
spec:
  vmSize: standard_d4s_v5
  taskSlotsPerNode: 4           # simulators per node
  nodes:
    dedicated: 2                # a number, or "auto": sized to fit the simulators on this pool
    spot: 0                     # Spot (the API's "low priority") nodes
    max: 20                     # upper bound when a count is "auto"
  nodeImage:                    # optional; defaults to a current container-capable image
    publisher: microsoft-dsvm
    offer: ubuntu-hpc
    sku: "2204"
    version: latest
    nodeAgentSku: batch.node.ubuntu 22.04
  registries:                   # optional; how nodes pull private images
    - server: myacr.azurecr.io
      identity: /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<id>
    - server: other.azurecr.io
      username: other
      passwordFromEnv: OTHER_ACR_PASSWORD
---
apiVersion: simfleet/v1
kind: Simulation
metadata:
  name: cartpole                # becomes the Batch job id
spec:
  pool: sims
  simulators: 8
  image: myacr.azurecr.io/cartpole:1.0
  command: python3 /simulation/main.py --episodes 1000   # string (run by /bin/sh -c) or list
  env:
    SIM_MODE: train
  secretEnv:                    # values come from the controller's environment, never from the file
    SIM_ACCESS_KEY: {fromEnv: SIM_ACCESS_KEY}
  containerRunOptions: --shm-size=1g
  restartPolicy: Always         # Always (default) | OnFailure | Never
  restartBackoff: {initial: 10s, max: 5m, resetAfter: 10m}
  rollout: {maxSurge: 25%, maxUnavailable: 0}
  maxLifetime: 150d             # recycle a simulator before Batch's 180-day task limit
  suspend: false                # true: leave this simulation exactly as it is
"""  # noqa: E501 (verbatim from product.md)

MINIMAL_POOL = "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: sims}\nspec: {vmSize: x}\n"
MINIMAL_SIMULATION = (
    "apiVersion: simfleet/v1\nkind: Simulation\nmetadata:\n  name: cartpole\n"
    "spec: {pool: sims, image: cartpole:1.0}\n"
)


def lines(result: FileResult) -> list[str]:
    return [str(error) for error in result.errors]


class TestProductExample:
    def test_loads_both_documents_with_their_positions(self, load: Load) -> None:
        result = load(PRODUCT_EXAMPLE)
        assert result.errors == ()
        pool, simulation = result.objects
        assert (pool.kind, pool.name, pool.file, pool.line, pool.column) == (
            "Pool",
            "sims",
            "specs/t.yaml",
            4,
            9,
        )
        assert (simulation.kind, simulation.name, simulation.line, simulation.column) == (
            "Simulation",
            "cartpole",
            28,
            9,
        )
        assert simulation.positions["spec.simulators"] == (31, 15)
        assert simulation.positions["spec.secretEnv.SIM_ACCESS_KEY.fromEnv"] == (37, 31)
        assert pool.positions["spec.registries[1].server"] == (21, 15)

    def test_pool_values_are_typed(self, load: Load) -> None:
        pool = load(PRODUCT_EXAMPLE).objects[0].spec
        assert isinstance(pool, PoolSpec)
        assert pool.vm_size == "standard_d4s_v5"
        assert pool.task_slots_per_node == 4
        assert (pool.nodes.dedicated, pool.nodes.spot, pool.nodes.max) == (2, 0, 20)
        assert pool.node_image == NodeImage()
        assert pool.registries == (
            Registry(
                server="myacr.azurecr.io",
                identity="/subscriptions/<sub>/resourceGroups/<rg>/providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/<id>",
            ),
            Registry(
                server="other.azurecr.io", username="other", password_from_env="OTHER_ACR_PASSWORD"
            ),
        )

    def test_simulation_values_are_typed(self, load: Load) -> None:
        simulation = load(PRODUCT_EXAMPLE).objects[1].spec
        assert isinstance(simulation, SimulationSpec)
        assert simulation.pool == "sims"
        assert simulation.simulators == 8
        assert simulation.command == "python3 /simulation/main.py --episodes 1000"
        assert simulation.env == {"SIM_MODE": "train"}
        assert simulation.secret_env == {"SIM_ACCESS_KEY": SecretRef(from_env="SIM_ACCESS_KEY")}
        assert simulation.container_run_options == "--shm-size=1g"
        assert simulation.restart_policy is RestartPolicy.ALWAYS
        backoff = simulation.restart_backoff
        assert (backoff.initial, backoff.max, backoff.reset_after) == (
            timedelta(seconds=10),
            timedelta(minutes=5),
            timedelta(minutes=10),
        )
        assert simulation.rollout.max_surge == Percent(25)
        assert simulation.rollout.max_unavailable == 0
        assert simulation.max_lifetime == timedelta(days=150)
        assert simulation.suspend is False

    def test_defaults_fill_what_is_left_out(self, load: Load) -> None:
        pool = load(MINIMAL_POOL).objects[0].spec
        assert isinstance(pool, PoolSpec)
        assert pool.nodes.dedicated is AUTO
        assert pool.registries == ()
        assert pool.prefetch_images is False

    @pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False)])
    def test_prefetch_images_is_a_boolean(self, load: Load, value: str, expected: bool) -> None:
        pool = load(MINIMAL_POOL.replace("vmSize: x", f"vmSize: x, prefetchImages: {value}"))
        assert pool.objects[0].spec.prefetch_images is expected  # type: ignore[union-attr]

    @pytest.mark.parametrize("value", ['"yes"', "1"])
    def test_prefetch_images_is_nothing_but_a_boolean(self, load: Load, value: str) -> None:
        result = load(MINIMAL_POOL.replace("vmSize: x", f"vmSize: x, prefetchImages: {value}"))
        [error] = lines(result)
        assert error.startswith("specs/t.yaml:4:")
        assert "spec.prefetchImages:" in error

    def test_auto_counts_and_command_lists(self, load: Load) -> None:
        text = (
            "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: p}\n"
            "spec: {vmSize: x, nodes: {dedicated: auto, spot: Auto, max: 4}}\n---\n"
            + MINIMAL_SIMULATION.replace("}", ", command: [python3, main.py]}")
        )
        pool, simulation = (obj.spec for obj in load(text).objects)
        assert isinstance(pool, PoolSpec)
        assert isinstance(simulation, SimulationSpec)
        assert (pool.nodes.dedicated, pool.nodes.spot) == (AUTO, AUTO)
        assert simulation.command == ("python3", "main.py")


class TestDocuments:
    def test_several_documents_and_empty_ones(self, load: Load) -> None:
        result = load("---\n" + MINIMAL_POOL + "---\n---\n" + MINIMAL_SIMULATION + "...\n")
        assert [(o.kind, o.name) for o in result.objects] == [
            ("Pool", "sims"),
            ("Simulation", "cartpole"),
        ]

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param("# nothing yet\n", id="only-comments"),
            pytest.param("---\n", id="only-a-separator"),
            pytest.param("---\n---\n...\n", id="only-separators"),
            pytest.param("  \n\n\t\n", id="only-whitespace"),
            pytest.param("~\n---\nnull\n", id="only-null-documents"),
        ],
    )
    def test_a_file_with_no_documents_is_an_error(self, load: Load, text: str) -> None:
        # A truncated or half-written file looks like this; loading it as "defines
        # nothing" would prune everything it defined a moment ago.
        result = load(text)
        assert (result.objects, result.errors) == (
            (),
            (SpecError("specs/t.yaml", 1, 1, "", NO_DOCUMENTS),),
        )
        assert NO_DOCUMENTS == (
            "the file holds no documents; delete the file to remove what it defined"
        )

    def test_one_bad_document_drops_the_whole_file(self, load: Load) -> None:
        result = load(MINIMAL_POOL + "---\n" + MINIMAL_SIMULATION.replace("sims", "-x y"))
        assert result.objects == ()
        assert len(result.errors) == 1

    def test_errors_of_every_document_are_reported(self, load: Load) -> None:
        result = load(
            MINIMAL_POOL.replace("{vmSize: x}", "{}") + "---\n" + MINIMAL_SIMULATION + "a: 1\n"
        )
        assert lines(result) == [
            "specs/t.yaml:4:7: spec.vmSize: is required",
            'specs/t.yaml:11:1: a: unknown field "a"; valid fields are apiVersion, kind,'
            " metadata, spec",
        ]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "- a\n- b\n",
                "specs/t.yaml:1:1: a spec document must be a mapping with apiVersion, kind,"
                " metadata and spec",
                id="list-document",
            ),
            pytest.param(
                "--- hello\n",
                "specs/t.yaml:1:5: a spec document must be a mapping with apiVersion, kind,"
                " metadata and spec",
                id="scalar-document",
            ),
            pytest.param(
                "apiVersion: simfleet/v1\nmetadata: {name: a}\n",
                "specs/t.yaml:1:1: kind: is required: Pool or Simulation",
                id="missing-kind",
            ),
            pytest.param(
                "apiVersion: simfleet/v1\nkind: Simulaton\n",
                'specs/t.yaml:2:7: kind: unknown kind "Simulaton"; did you mean "Simulation"?',
                id="misspelt-kind",
            ),
            pytest.param(
                "apiVersion: simfleet/v1\nkind: pool\n",
                'specs/t.yaml:2:7: kind: unknown kind "pool"; did you mean "Pool"?',
                id="lowercase-kind",
            ),
            pytest.param(
                "apiVersion: simfleet/v1\nkind: Deployment\n",
                'specs/t.yaml:2:7: kind: unknown kind "Deployment"; valid kinds are Pool,'
                " Simulation",
                id="unknown-kind",
            ),
            pytest.param(
                "apiVersion: simfleet/v1\nkind: [Pool]\n",
                "specs/t.yaml:2:7: kind: must be Pool or Simulation",
                id="kind-not-a-string",
            ),
        ],
    )
    def test_document_shape_errors(self, load: Load, text: str, expected: str) -> None:
        assert lines(load(text)) == [expected]


class TestFileLimits:
    def test_a_file_of_exactly_one_mebibyte_loads(self, write: Write) -> None:
        text = MINIMAL_POOL + "#" * (1024 * 1024 - len(MINIMAL_POOL) - 1) + "\n"
        path = write("big.yaml", text)
        assert path.stat().st_size == 1024 * 1024
        result = load_file(path)
        assert (result.errors, len(result.objects)) == ((), 1)

    def test_one_byte_more_is_refused_at_line_one(self, write: Write) -> None:
        text = MINIMAL_POOL + "#" * (1024 * 1024 - len(MINIMAL_POOL)) + "\n"
        result = load_file(write("big.yaml", text))
        assert result.objects == ()
        assert lines(result) == [
            "specs/big.yaml:1:1: the file is larger than 1 MiB (1,048,576 bytes); split it up"
        ]

    def test_a_huge_file_is_not_read_whole(self, specs: Path) -> None:
        path = specs / "huge.yaml"
        with path.open("wb") as stream:
            stream.truncate(64 * 1024**3)  # sparse: 64 GiB of zeros, no disk used
        result = load_file(path)
        assert result.errors[0].message.startswith("the file is larger than 1 MiB")
        # The digest covers exactly the bytes read: 1 MiB + 1.
        assert result.digest == hashlib.sha256(bytes(1024 * 1024 + 1)).hexdigest()


class TestUnreadableFiles:
    def test_invalid_utf8_is_reported_where_it_is(self, specs: Path) -> None:
        path = specs / "latin1.yaml"
        path.write_bytes(b"apiVersion: simfleet/v1\nkind: P\xf6ol\n")
        assert lines(load_file(path)) == ["specs/latin1.yaml:2:8: not valid UTF-8 (byte 0xf6)"]

    def test_a_byte_order_mark_is_accepted(self, specs: Path) -> None:
        path = specs / "bom.yaml"
        path.write_bytes(b"\xef\xbb\xbf" + MINIMAL_POOL.encode())
        assert len(load_file(path).objects) == 1

    def test_a_missing_file_is_an_error_without_digest(self, specs: Path) -> None:
        result = load_file(specs / "gone.yaml")
        assert lines(result) == ["specs/gone.yaml:1:1: no such file or directory"]
        assert result.digest == ""

    def test_a_directory_is_not_a_file(self, specs: Path) -> None:
        (specs / "dir.yaml").mkdir()
        assert lines(load_file(specs / "dir.yaml")) == ["specs/dir.yaml:1:1: not a regular file"]

    def test_display_name_is_used_in_errors(self, specs: Path) -> None:
        path = specs / "a.yaml"
        path.write_text("kind: x\n")
        result = load_file(path, display="shown/a.yaml")
        assert result.path == "shown/a.yaml"
        assert {e.file for e in result.errors} == {"shown/a.yaml"}

    def test_absolute_paths_display_relative_to_the_current_directory(self, specs: Path) -> None:
        path = specs / "a.yaml"
        path.write_text(MINIMAL_POOL)
        assert load_file(path.absolute()).path == "specs/a.yaml"

    def test_digest_is_of_the_bytes_read(self, write: Write) -> None:
        path = write("a.yaml", MINIMAL_POOL)
        assert load_file(path).digest == hashlib.sha256(MINIMAL_POOL.encode()).hexdigest()


class TestLoadPaths:
    def test_files_and_directories_together(self, write: Write, specs: Path) -> None:
        write("a.yaml", MINIMAL_POOL)
        write("sub/b.yml", MINIMAL_SIMULATION)
        single = Path("single.txt")
        single.write_text(MINIMAL_POOL.replace("sims", "other"))
        result = load_paths([single, specs])
        assert result.exists
        assert result.root == "single.txt, specs"
        assert [f.path for f in result.files] == ["single.txt", "specs/a.yaml", "specs/sub/b.yml"]

    def test_a_file_named_twice_is_read_once(self, write: Write) -> None:
        path = write("a.yaml", MINIMAL_POOL)
        assert [f.path for f in load_paths([path, Path("specs")]).files] == ["specs/a.yaml"]

    def test_a_missing_path_is_an_error(self, specs: Path) -> None:
        result = load_paths([Path("nope.yaml")])
        assert not result.exists
        assert [str(e) for f in result.files for e in f.errors] == [
            "nope.yaml:1:1: no such file or directory"
        ]

    def test_no_paths_is_not_silently_valid(self) -> None:
        result = load_paths([])
        assert (result.exists, result.files) == (False, ())


class TestUnexpectedFailures:
    """Any exception while reading one file is that file's error, never the whole load's.

    ``maxLifetime: .inf`` once raised ``OverflowError`` from inside loading: the daemon
    died (stopping the fleet on its way out) and ``validate`` printed a traceback. Bounds
    now refuse that value, and whatever else may raise is caught per file.
    """

    @pytest.fixture
    def failing_validation(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Validating a Simulation raises, as a bug in a validator would."""

        def explode(*_args: object, **_kwargs: object) -> None:
            message = "date value out of range"
            raise OverflowError(message)

        monkeypatch.setattr(_models.SimulationDocument, "model_validate", explode)

    @pytest.mark.usefixtures("failing_validation")
    def test_becomes_an_error_on_the_file(self, write: Write) -> None:
        result = load_file(write("a.yaml", MINIMAL_SIMULATION))
        assert result.objects == ()
        assert lines(result) == [
            "specs/a.yaml:1:1: internal error while reading the file: OverflowError: date"
            " value out of range"
        ]

    def test_other_files_load_and_the_last_good_version_stays(
        self, write: Write, specs: Path, request: pytest.FixtureRequest
    ) -> None:
        write("pool.yaml", MINIMAL_POOL)
        write("sim.yaml", MINIMAL_SIMULATION)
        good = build_catalog(load_directory(specs))
        write("pool.yaml", MINIMAL_POOL.replace("{vmSize: x}", "{vmSize: y}"))
        request.getfixturevalue("failing_validation")
        catalog = build_catalog(load_directory(specs), good)
        assert catalog.simulations["cartpole"] is good.simulations["cartpole"]
        pool = catalog.pools["sims"].spec
        assert isinstance(pool, PoolSpec)
        assert pool.vm_size == "y"
        assert [str(e) for e in catalog.errors] == [
            "specs/sim.yaml:1:1: internal error while reading the file: OverflowError: date"
            " value out of range"
        ]


class TestParsedFiles:
    """A reload parses only the files whose bytes changed (issue 8: parsing 50 files was
    44 ms of every edit's latency in the daemon)."""

    def test_unchanged_files_are_not_parsed_again(
        self, write: Write, specs: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        write("pool.yaml", MINIMAL_POOL)
        write("sim.yaml", MINIMAL_SIMULATION)
        parsed = ParsedFiles()
        first = load_directory(specs, parsed)
        parses: list[str] = []
        original = _yaml.parse

        def counted(text: str, shown: str) -> _yaml.Stream:
            parses.append(shown)
            return original(text, shown)

        monkeypatch.setattr(_yaml, "parse", counted)
        write("sim.yaml", MINIMAL_SIMULATION.replace("cartpole:1.0", "cartpole:2.0"))
        second = load_directory(specs, parsed)
        assert parses == ["specs/sim.yaml"]
        assert second.files[0] is first.files[0]  # pool.yaml, reused as it was
        sim = second.files[1].objects[0].spec
        assert isinstance(sim, SimulationSpec)
        assert sim.image == "cartpole:2.0"

    def test_a_change_that_keeps_size_and_time_is_still_seen(
        self, write: Write, specs: Path
    ) -> None:
        path = write("sim.yaml", MINIMAL_SIMULATION)
        parsed = ParsedFiles()
        load_directory(specs, parsed)
        stat = path.stat()
        write("sim.yaml", MINIMAL_SIMULATION.replace("1.0", "2.0"))  # same length
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        sim = load_directory(specs, parsed).files[0].objects[0].spec
        assert isinstance(sim, SimulationSpec)
        assert sim.image == "cartpole:2.0"

    def test_an_error_is_kept_as_the_files_result(self, write: Write, specs: Path) -> None:
        write("sim.yaml", "kind: [")
        parsed = ParsedFiles()
        first = load_directory(specs, parsed).files[0]
        again = load_directory(specs, parsed).files[0]
        assert first.errors
        assert again is first
