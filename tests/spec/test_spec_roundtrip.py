"""Property: any valid spec, written as YAML and loaded back, is the model it came from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.spec import PoolSpec, SimulationSpec, load_file
from controller.spec._yaml import _CORE_SCHEMA

NAMES = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")
ENV_NAMES = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")
# PyYAML's *dumper* mangles NEL and the Unicode line/paragraph separators in quoted
# scalars (yaml.safe_load reads its own output back differently), so they are left out:
# this property is about the loader, not the dumper. Control characters are refused by
# the models (controller.spec._text), except tab and newline in multi-line text fields.
_PRINTABLE = {"codec": "utf-8", "exclude_categories": ("Cs", "Cc", "Zl", "Zp")}
LINE = st.text(st.characters(**_PRINTABLE), max_size=30)  # type: ignore[arg-type]
TEXT = st.text(
    st.characters(**_PRINTABLE, include_characters="\t\n"),  # type: ignore[arg-type]
    max_size=30,
)
NON_BLANK = LINE.filter(str.strip)
SECONDS = st.integers(min_value=1, max_value=86400)
DURATIONS = st.one_of(
    SECONDS, SECONDS.map(lambda s: f"{s}s"), SECONDS.map(lambda s: f"{s * 1000}ms")
)
# Docker's reference grammar (controller/spec/_references.py): path components, a tag.
IMAGES = st.from_regex(
    r"\A[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}(?:/[a-z0-9]{1,8}){0,2}"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,8})?\Z"
)
COUNTS = st.one_of(st.integers(min_value=0, max_value=100), st.just("auto"))


@st.composite
def backoffs(draw: st.DrawFn) -> dict[str, Any]:
    initial, longest = sorted(draw(st.lists(SECONDS, min_size=2, max_size=2)))
    return {"initial": f"{initial}s", "max": f"{longest}s", "resetAfter": draw(DURATIONS)}


@st.composite
def nodes(draw: st.DrawFn) -> dict[str, Any]:
    dedicated, spot = draw(COUNTS), draw(COUNTS)
    fixed = sum(c for c in (dedicated, spot) if isinstance(c, int))
    return {"dedicated": dedicated, "spot": spot, "max": fixed + draw(st.integers(0, 50))}


SIMULATION_SPECS = st.fixed_dictionaries(
    {"pool": NAMES, "image": IMAGES},
    optional={
        "simulators": st.integers(min_value=0, max_value=100_000),
        "command": st.one_of(
            TEXT.filter(str.strip),
            st.lists(TEXT, min_size=1, max_size=4).filter(lambda argv: argv[0].strip()),
        ),
        "env": st.dictionaries(ENV_NAMES, TEXT, max_size=4),
        "secretEnv": st.dictionaries(
            ENV_NAMES, ENV_NAMES.map(lambda n: {"fromEnv": n}), max_size=3
        ),
        "containerRunOptions": LINE,
        "restartPolicy": st.sampled_from(["Always", "OnFailure", "Never"]),
        "restartBackoff": backoffs(),
        "rollout": st.fixed_dictionaries(
            {
                "maxSurge": st.one_of(
                    st.integers(1, 10), st.integers(1, 100).map(lambda p: f"{p}%")
                ),
                "maxUnavailable": st.one_of(
                    st.integers(0, 10), st.integers(0, 100).map(lambda p: f"{p}%")
                ),
            }
        ),
        "maxLifetime": st.integers(min_value=1, max_value=170).map(lambda d: f"{d}d"),
        "suspend": st.booleans(),
    },
)
# A variable set by env and by secretEnv is an error: keep the two apart.
SIMULATION_SPECS = SIMULATION_SPECS.filter(
    lambda spec: not set(spec.get("env", {})) & set(spec.get("secretEnv", {}))
)

POOL_SPECS = st.fixed_dictionaries(
    {"vmSize": NON_BLANK},
    optional={
        "taskSlotsPerNode": st.integers(min_value=1, max_value=256),
        "nodes": nodes(),
        "nodeImage": st.fixed_dictionaries(
            {}, optional={"sku": NON_BLANK, "version": NON_BLANK, "nodeAgentSku": NON_BLANK}
        ),
        "registries": st.lists(
            st.one_of(
                st.fixed_dictionaries({"server": NON_BLANK, "identity": NON_BLANK}),
                st.fixed_dictionaries(
                    {"server": NON_BLANK, "username": NON_BLANK, "passwordFromEnv": ENV_NAMES}
                ),
            ),
            max_size=3,
        ),
    },
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class _Dumper(yaml.SafeDumper):
    """PyYAML's dumper knows YAML 1.1 only and writes ``0E0`` or ``0o10`` plain, which YAML
    1.2 (the loader) reads as numbers: it quotes what either schema would not read as text."""


for _tag, _pattern, _first in _CORE_SCHEMA:
    _Dumper.add_implicit_resolver(_tag, re.compile(f"^(?:{_pattern})$"), _first)


def document(kind: str, name: str, spec: dict[str, Any]) -> str:
    return yaml.dump(
        {"apiVersion": "simfleet/v1", "kind": kind, "metadata": {"name": name}, "spec": spec},
        Dumper=_Dumper,
        allow_unicode=True,
    )


class TestYamlRoundTrip:
    @SETTINGS
    @given(name=NAMES, spec=SIMULATION_SPECS)
    def test_a_simulation_loads_as_the_model_of_its_values(
        self, tmp_path: Path, name: str, spec: dict[str, Any]
    ) -> None:
        path = tmp_path / "s.yaml"
        path.write_text(document("Simulation", name, spec), encoding="utf-8")
        result = load_file(path)
        assert result.errors == ()
        (loaded,) = result.objects
        assert loaded.name == name
        assert loaded.spec == SimulationSpec.model_validate(spec)

    @SETTINGS
    @given(name=NAMES, spec=POOL_SPECS)
    def test_a_pool_loads_as_the_model_of_its_values(
        self, tmp_path: Path, name: str, spec: dict[str, Any]
    ) -> None:
        path = tmp_path / "p.yaml"
        path.write_text(document("Pool", name, spec), encoding="utf-8")
        result = load_file(path)
        assert result.errors == ()
        (loaded,) = result.objects
        assert loaded.spec == PoolSpec.model_validate(spec)
