"""Validation errors read as ``file:line:col: path: message``, at the right place.

Every row is one small file and the exact lines ``simfleet validate`` prints for it. The
rule for positions: a wrong value is reported at the value, a missing field at the mapping
that lacks it, an unknown field or a bad key at the key.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from controller.spec import FileResult, SimulationSpec

Load = Callable[[str], FileResult]

SIM_HEAD = """\
apiVersion: simfleet/v1
kind: Simulation
metadata:
  name: cartpole
spec:
  pool: sims
  image: cartpole:1.0
"""
# SIM_HEAD is 7 lines long: a field appended to it is on line 8, its value at column 3 +
# the key's length + 2.

POOL_HEAD = """\
apiVersion: simfleet/v1
kind: Pool
metadata:
  name: sims
spec:
  vmSize: standard_d4s_v5
"""


def lines(result: FileResult) -> list[str]:
    return [str(error) for error in result.errors]


class TestNumbersAndBounds:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                SIM_HEAD + "  simulators: -1\n",
                ["specs/t.yaml:8:15: spec.simulators: must be >= 0"],
                id="below-minimum",
            ),
            pytest.param(
                SIM_HEAD + "  simulators: 100001\n",
                ["specs/t.yaml:8:15: spec.simulators: must be <= 100000"],
                id="above-maximum",
            ),
            pytest.param(
                SIM_HEAD + "  simulators: 2.5\n",
                ["specs/t.yaml:8:15: spec.simulators: must be a whole number"],
                id="float-for-int",
            ),
            pytest.param(
                SIM_HEAD + "  simulators: many\n",
                ["specs/t.yaml:8:15: spec.simulators: must be a whole number"],
                id="text-for-int",
            ),
            pytest.param(
                POOL_HEAD + "  taskSlotsPerNode: 0\n",
                ["specs/t.yaml:7:21: spec.taskSlotsPerNode: must be >= 1"],
                id="pool-slots-minimum",
            ),
            pytest.param(
                POOL_HEAD + "  nodes: {dedicated: -1}\n",
                ["specs/t.yaml:7:22: spec.nodes.dedicated: must be >= 0"],
                id="node-count-negative",
            ),
            pytest.param(
                POOL_HEAD + "  nodes: {spot: lots}\n",
                ["specs/t.yaml:7:17: spec.nodes.spot: 'lots' must be a whole number or \"auto\""],
                id="node-count-neither-number-nor-auto",
            ),
        ],
    )
    def test_reports_the_value_with_its_bound(
        self, load: Load, text: str, expected: list[str]
    ) -> None:
        assert lines(load(text)) == expected


class TestMissingAndUnknownFields:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "apiVersion: simfleet/v1\nkind: Simulation\nmetadata:\n  name: c\n"
                "spec:\n  pool: sims\n",
                ["specs/t.yaml:6:3: spec.image: is required"],
                id="missing-field-at-its-mapping",
            ),
            pytest.param(
                "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: p}\n",
                ["specs/t.yaml:1:1: spec: is required"],
                id="missing-spec-at-document",
            ),
            pytest.param(
                "kind: Pool\nmetadata: {name: p}\nspec: {vmSize: x}\n",
                ["specs/t.yaml:1:1: apiVersion: is required"],
                id="missing-api-version",
            ),
            pytest.param(
                SIM_HEAD + "  simulatorz: 3\n",
                [
                    'specs/t.yaml:8:3: spec.simulatorz: unknown field "simulatorz";'
                    ' did you mean "simulators"?'
                ],
                id="misspelt-field-at-its-key",
            ),
            pytest.param(
                POOL_HEAD + "  task_slots_per_node: 2\n",
                [
                    "specs/t.yaml:7:3: spec.task_slots_per_node: unknown field"
                    ' "task_slots_per_node"; did you mean "taskSlotsPerNode"?'
                ],
                id="python-spelling-is-not-yaml-spelling",
            ),
            pytest.param(
                SIM_HEAD + "  gpu: true\n",
                [
                    'specs/t.yaml:8:3: spec.gpu: unknown field "gpu"; valid fields are pool,'
                    " simulators, image, command, env, secretEnv, containerRunOptions,"
                    " restartPolicy, restartBackoff, rollout, maxLifetime, suspend"
                ],
                id="unknown-field-lists-valid-ones",
            ),
            pytest.param(
                SIM_HEAD + "  secretEnv:\n    KEY: {fromEnvv: KEY}\n",
                [
                    "specs/t.yaml:9:10: spec.secretEnv.KEY.fromEnv: is required",
                    'specs/t.yaml:9:11: spec.secretEnv.KEY.fromEnvv: unknown field "fromEnvv";'
                    ' did you mean "fromEnv"?',
                ],
                id="inside-a-dict-of-models",
            ),
            pytest.param(
                POOL_HEAD + "  registries:\n    - server: a.io\n      usernme: u\n",
                [
                    'specs/t.yaml:9:7: spec.registries[0].usernme: unknown field "usernme";'
                    ' did you mean "username"?'
                ],
                id="inside-a-list-of-models",
            ),
            pytest.param(
                "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: p}\n"
                "spec: {vmSize: x}\nstatus: {}\n",
                [
                    'specs/t.yaml:5:1: status: unknown field "status"; valid fields are'
                    " apiVersion, kind, metadata, spec"
                ],
                id="top-level",
            ),
        ],
    )
    def test_reports_at_the_mapping_or_the_key(
        self, load: Load, text: str, expected: list[str]
    ) -> None:
        assert lines(load(text)) == expected


class TestNamesAndKeys:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "apiVersion: simfleet/v1\nkind: Pool\nmetadata:\n  name: my pool\n"
                "spec: {vmSize: x}\n",
                [
                    'specs/t.yaml:4:9: metadata.name: "my pool" is not a valid name: use only'
                    " letters, digits, - and _, at most 64 characters"
                ],
                id="space-in-name",
            ),
            pytest.param(
                "apiVersion: simfleet/v1\nkind: Pool\nmetadata:\n  name: " + "x" * 65 + "\n"
                "spec: {vmSize: x}\n",
                [
                    f'specs/t.yaml:4:9: metadata.name: "{"x" * 65}" is not a valid name: use'
                    " only letters, digits, - and _, at most 64 characters"
                ],
                id="name-too-long",
            ),
            pytest.param(
                SIM_HEAD.replace("pool: sims", "pool: my.pool"),
                [
                    'specs/t.yaml:6:9: spec.pool: "my.pool" is not a valid name: use only'
                    " letters, digits, - and _, at most 64 characters"
                ],
                id="pool-reference",
            ),
            pytest.param(
                SIM_HEAD + "  env:\n    1BAD: x\n",
                [
                    'specs/t.yaml:9:5: spec.env.1BAD: "1BAD" is not a valid environment variable'
                    " name: use letters, digits and _, not starting with a digit"
                ],
                id="env-name-at-key",
            ),
            pytest.param(
                SIM_HEAD + "  env:\n    PORT: 8080\n",
                ["specs/t.yaml:9:11: spec.env.PORT: must be a string; put quotes around it"],
                id="env-value-number",
            ),
            pytest.param(
                SIM_HEAD + "  env:\n    DEBUG: true\n",
                ["specs/t.yaml:9:12: spec.env.DEBUG: must be a string; put quotes around it"],
                id="env-value-yaml-boolean",
            ),
            pytest.param(
                POOL_HEAD + "  registries:\n    - server: a.io\n      username: u\n"
                "      passwordFromEnv: not-a-var\n",
                [
                    'specs/t.yaml:10:24: spec.registries[0].passwordFromEnv: "not-a-var" is not'
                    " a valid environment variable name: use letters, digits and _, not"
                    " starting with a digit"
                ],
                id="env-name-in-value",
            ),
            pytest.param(
                POOL_HEAD + '  registries: [{server: ""}]\n',
                ["specs/t.yaml:7:25: spec.registries[0].server: must not be empty"],
                id="empty-string",
            ),
        ],
    )
    def test_explains_the_rule(self, load: Load, text: str, expected: list[str]) -> None:
        assert lines(load(text)) == expected


class TestTypesAndChoices:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                SIM_HEAD + "  suspend: maybe\n",
                ["specs/t.yaml:8:12: spec.suspend: must be true or false"],
                id="bool",
            ),
            pytest.param(
                SIM_HEAD + "  restartPolicy: always\n",
                [
                    "specs/t.yaml:8:18: spec.restartPolicy: must be one of Always, OnFailure,"
                    ' Never; did you mean "Always"?'
                ],
                id="enum-close-match",
            ),
            pytest.param(
                SIM_HEAD + "  restartPolicy: Sometimes\n",
                ["specs/t.yaml:8:18: spec.restartPolicy: must be one of Always, OnFailure, Never"],
                id="enum-no-match",
            ),
            pytest.param(
                SIM_HEAD.replace("simfleet/v1", "simfleet/v2"),
                ['specs/t.yaml:1:13: apiVersion: must be "simfleet/v1"'],
                id="literal",
            ),
            pytest.param(
                SIM_HEAD + "  command: 5\n",
                ["specs/t.yaml:8:12: spec.command: must be a string or a list"],
                id="union-folded",
            ),
            pytest.param(
                SIM_HEAD + "  command: [python3, 5]\n",
                ["specs/t.yaml:8:22: spec.command[1]: must be a string; put quotes around it"],
                id="union-member-that-got-furthest",
            ),
            pytest.param(
                SIM_HEAD + "  env: [A, B]\n",
                ["specs/t.yaml:8:8: spec.env: must be a mapping"],
                id="list-for-mapping",
            ),
            pytest.param(
                SIM_HEAD + "  restartBackoff: 10s\n",
                ["specs/t.yaml:8:19: spec.restartBackoff: must be a mapping"],
                id="scalar-for-model",
            ),
            pytest.param(
                POOL_HEAD + "  registries: {server: a.io}\n",
                ["specs/t.yaml:7:15: spec.registries: must be a list"],
                id="mapping-for-list",
            ),
            pytest.param(
                "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: p}\nspec:\n",
                ["specs/t.yaml:4:6: spec: must be a mapping"],
                id="empty-spec",
            ),
        ],
    )
    def test_says_what_is_expected(self, load: Load, text: str, expected: list[str]) -> None:
        assert lines(load(text)) == expected


class TestCrossFieldRules:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                SIM_HEAD + "  restartBackoff: {initial: 10m, max: 5m}\n",
                ["specs/t.yaml:8:19: spec.restartBackoff: initial must not be longer than max"],
                id="backoff-order",
            ),
            pytest.param(
                SIM_HEAD + "  rollout: {maxSurge: 0, maxUnavailable: 0%}\n",
                ["specs/t.yaml:8:12: spec.rollout: maxSurge and maxUnavailable cannot both be 0"],
                id="rollout-both-zero",
            ),
            pytest.param(
                SIM_HEAD + "  rollout: {maxSurge: 150%}\n",
                ["specs/t.yaml:8:23: spec.rollout.maxSurge: a percentage must be at most 100%"],
                id="percent-over-100",
            ),
            pytest.param(
                SIM_HEAD + "  maxLifetime: 175d\n",
                [
                    "specs/t.yaml:8:16: spec.maxLifetime: must be between 1s and 170d:"
                    " recycling needs time to finish before Batch ends every task 180 days"
                    " after it was added"
                ],
                id="lifetime-limit",
            ),
            pytest.param(
                SIM_HEAD + "  maxLifetime: soon\n",
                [
                    "specs/t.yaml:8:16: spec.maxLifetime: 'soon' is not a duration; use a number"
                    " with a unit (ms, s, m, h, d) between 1s and 170d, like 10s"
                ],
                id="duration-spelling",
            ),
            pytest.param(
                SIM_HEAD + "  command: []\n",
                [
                    "specs/t.yaml:8:12: spec.command: must not be empty; leave the field out"
                    " to use the image's own command"
                ],
                id="empty-command",
            ),
            pytest.param(
                POOL_HEAD + "  registries:\n    - {server: a.io, identity: x, username: u}\n",
                [
                    "specs/t.yaml:8:7: spec.registries[0]: use either identity or username +"
                    " passwordFromEnv, not both"
                ],
                id="registry-login",
            ),
            pytest.param(
                POOL_HEAD + "  nodes: {dedicated: 5, spot: auto, max: 3}\n",
                ["specs/t.yaml:7:10: spec.nodes: max (3) is below the fixed node count (5)"],
                id="node-max",
            ),
        ],
    )
    def test_reports_the_message_after_value_error(
        self, load: Load, text: str, expected: list[str]
    ) -> None:
        assert lines(load(text)) == expected


class TestManyProblems:
    def test_every_problem_of_a_file_is_reported_in_order(self, load: Load) -> None:
        text = SIM_HEAD + "  simulators: -1\n  suspend: maybe\n  simulatorz: 1\n"
        assert lines(load(text)) == [
            "specs/t.yaml:8:15: spec.simulators: must be >= 0",
            "specs/t.yaml:9:12: spec.suspend: must be true or false",
            'specs/t.yaml:10:3: spec.simulatorz: unknown field "simulatorz"; did you mean'
            ' "simulators"?',
        ]

    def test_the_product_example_error_reads_as_documented(self, load: Load) -> None:
        text = (
            "apiVersion: simfleet/v1\nkind: Simulation\nmetadata:\n  name: cartpole\nspec:\n"
            "  pool: sims\n  simulators: -8\n  image: cartpole:1.0\n"
        )
        assert lines(load(text)) == ["specs/t.yaml:7:15: spec.simulators: must be >= 0"]


class TestDurationRanges:
    """Every duration field is bounded, and the error names the range."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                SIM_HEAD + "  restartBackoff: {initial: 0, max: 0}\n",
                [
                    "specs/t.yaml:8:29: spec.restartBackoff.initial: must be between 1s and 1d",
                    "specs/t.yaml:8:37: spec.restartBackoff.max: must be between 1s and 1d",
                ],
                id="backoff-floor",
            ),
            pytest.param(
                SIM_HEAD + "  restartBackoff: {initial: 500ms, max: 2d}\n",
                [
                    "specs/t.yaml:8:29: spec.restartBackoff.initial: must be between 1s and 1d",
                    "specs/t.yaml:8:41: spec.restartBackoff.max: must be between 1s and 1d",
                ],
                id="backoff-sub-second-and-too-long",
            ),
            pytest.param(
                SIM_HEAD + "  restartBackoff: {resetAfter: 999999999999d}\n",
                ["specs/t.yaml:8:32: spec.restartBackoff.resetAfter: must be between 1s and 170d"],
                id="reset-after",
            ),
            pytest.param(
                SIM_HEAD + "  rollout: {progressDeadline: 1ms}\n",
                ["specs/t.yaml:8:31: spec.rollout.progressDeadline: must be between 1s and 30d"],
                id="deadline-1ms",
            ),
            pytest.param(
                SIM_HEAD + "  rollout: {progressDeadline: 900000000d}\n",
                ["specs/t.yaml:8:31: spec.rollout.progressDeadline: must be between 1s and 30d"],
                id="deadline-that-overflowed-date-arithmetic",
            ),
            pytest.param(
                SIM_HEAD + "  rollout: {progressDeadline: .nan}\n",
                ["specs/t.yaml:8:31: spec.rollout.progressDeadline: must be between 1s and 30d"],
                id="deadline-nan",
            ),
            pytest.param(
                SIM_HEAD + '  rollout: {progressDeadline: "-5m"}\n',
                ["specs/t.yaml:8:31: spec.rollout.progressDeadline: must be between 1s and 30d"],
                id="deadline-negative",
            ),
            pytest.param(
                SIM_HEAD + "  restartBackoff: {max: inf}\n",
                [
                    "specs/t.yaml:8:25: spec.restartBackoff.max: 'inf' is not a duration; use a"
                    " number with a unit (ms, s, m, h, d) between 1s and 1d, like 10s"
                ],
                id="bare-inf-is-text",
            ),
        ],
    )
    def test_out_of_range(self, load: Load, text: str, expected: list[str]) -> None:
        assert lines(load(text)) == expected

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(".inf", id="inf"),
            pytest.param("-.inf", id="minus-inf"),
            pytest.param(".nan", id="nan"),
            pytest.param("1e15", id="1e15"),
            pytest.param("1e400", id="1e400"),
            pytest.param('"999999999999d"', id="huge-days"),
            pytest.param("9" * 99, id="huge-int"),
            pytest.param("0", id="zero"),
            pytest.param("-5", id="negative"),
            pytest.param("171d", id="just-over"),
        ],
    )
    def test_max_lifetime_names_its_range_and_why(self, load: Load, value: str) -> None:
        assert lines(load(SIM_HEAD + f"  maxLifetime: {value}\n")) == [
            "specs/t.yaml:8:16: spec.maxLifetime: must be between 1s and 170d: recycling"
            " needs time to finish before Batch ends every task 180 days after it was added"
        ]

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("  restartBackoff: {initial: 1s, max: 1d, resetAfter: 170d}\n", id="b"),
            pytest.param("  rollout: {progressDeadline: 30d}\n", id="deadline"),
            pytest.param("  maxLifetime: 1s\n", id="lifetime-floor"),
            pytest.param("  maxLifetime: 170d\n", id="lifetime-ceiling"),
        ],
    )
    def test_the_bounds_themselves_are_allowed(self, load: Load, text: str) -> None:
        assert lines(load(SIM_HEAD + text)) == []


class TestYamlNumbersAndBooleans:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                SIM_HEAD + "  simulators: 010\n",
                [
                    "specs/t.yaml:8:15: spec.simulators: 010 has a leading zero, which is"
                    " ambiguous: YAML 1.1 tools read it as 8; write 10 or 0o10"
                ],
                id="leading-zero-once-read-as-8",
            ),
            pytest.param(
                SIM_HEAD + "  suspend: yes\n",
                ["specs/t.yaml:8:12: spec.suspend: must be true or false"],
                id="yes-is-not-a-boolean",
            ),
            pytest.param(
                SIM_HEAD + "  suspend: off\n",
                ["specs/t.yaml:8:12: spec.suspend: must be true or false"],
                id="off-is-not-a-boolean",
            ),
            pytest.param(
                SIM_HEAD + "  simulators: 1:30\n",
                ["specs/t.yaml:8:15: spec.simulators: must be a whole number"],
                id="no-sexagesimal",
            ),
        ],
    )
    def test_read_as_yaml_1_2(self, load: Load, text: str, expected: list[str]) -> None:
        assert lines(load(text)) == expected

    def test_an_octal_written_as_such_is_read(self, load: Load) -> None:
        (obj,) = load(SIM_HEAD + "  simulators: 0o10\n").objects
        assert isinstance(obj.spec, SimulationSpec)
        assert obj.spec.simulators == 8


class TestImageCommandAndEnv:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                SIM_HEAD.replace("cartpole:1.0", '" "'),
                ["specs/t.yaml:7:10: spec.image: must not be blank"],
                id="blank-image",
            ),
            pytest.param(
                SIM_HEAD.replace("cartpole:1.0", '""'),
                ["specs/t.yaml:7:10: spec.image: must not be empty"],
                id="empty-image",
            ),
            pytest.param(
                SIM_HEAD + "  env: {TOKEN: x}\n  secretEnv:\n    TOKEN: {fromEnv: T}\n",
                [
                    "specs/t.yaml:10:5: spec.secretEnv.TOKEN: TOKEN is also set in env; a"
                    " variable takes its value from env or from secretEnv, not both"
                ],
                id="env-and-secret-env-name",
            ),
            pytest.param(
                SIM_HEAD + "  command:\n",
                [
                    "specs/t.yaml:8:11: spec.command: must not be empty; leave the field out"
                    " to use the image's own command"
                ],
                id="command-null",
            ),
            pytest.param(
                SIM_HEAD + '  command: ""\n',
                [
                    "specs/t.yaml:8:12: spec.command: must not be empty; leave the field out"
                    " to use the image's own command"
                ],
                id="command-empty-string",
            ),
            pytest.param(
                SIM_HEAD + '  command: "python3 main.py\\0"\n',
                [
                    "specs/t.yaml:8:12: spec.command: must not contain a NUL byte (\\x00): no"
                    " process or Batch request can carry it"
                ],
                id="command-string-nul-says-only-that",
            ),
            pytest.param(
                SIM_HEAD + '  command: "   "\n',
                [
                    "specs/t.yaml:8:12: spec.command: must not be blank; leave the field out"
                    " to use the image's own command"
                ],
                id="command-blank",
            ),
            pytest.param(
                SIM_HEAD + '  command:\n    - ""\n    - main.py\n',
                [
                    "specs/t.yaml:9:5: spec.command: the program (the first item) must not be"
                    " blank; leave the field out to use the image's own command"
                ],
                id="command-list-without-program",
            ),
        ],
    )
    def test_reported_at_the_field(self, load: Load, text: str, expected: list[str]) -> None:
        assert lines(load(text)) == expected
