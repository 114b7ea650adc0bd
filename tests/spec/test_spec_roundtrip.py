"""Property: any valid spec, written as YAML and loaded back, is the model it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.spec import PoolSpec, SimulationSpec, load_file

NAMES = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")
ENV_NAMES = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")
# PyYAML's *dumper* mangles NEL and the Unicode line/paragraph separators in quoted
# scalars (yaml.safe_load reads its own output back differently), so they are left out:
# this property is about the loader, not the dumper.
TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Zl", "Zp"), exclude_characters="\x85"),
    max_size=30,
)
NON_EMPTY = TEXT.filter(bool)
# Docker's reference grammar (controller/spec/_references.py): path components, a tag.
IMAGES = st.from_regex(
    r"\A[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}(?:/[a-z0-9]{1,8}){0,2}"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,8})?\Z"
)
SECONDS = st.integers(min_value=0, max_value=10 * 86400)
DURATIONS = st.one_of(SECONDS, SECONDS.map(lambda s: f"{s}s"), SECONDS.map(lambda s: f"{s}ms"))
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
        "command": st.one_of(NON_EMPTY, st.lists(TEXT, min_size=1, max_size=4)),
        "env": st.dictionaries(ENV_NAMES, TEXT, max_size=4),
        "secretEnv": st.dictionaries(
            ENV_NAMES, ENV_NAMES.map(lambda n: {"fromEnv": n}), max_size=3
        ),
        "containerRunOptions": TEXT,
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

POOL_SPECS = st.fixed_dictionaries(
    {"vmSize": NON_EMPTY},
    optional={
        "taskSlotsPerNode": st.integers(min_value=1, max_value=256),
        "nodes": nodes(),
        "nodeImage": st.fixed_dictionaries(
            {}, optional={"sku": TEXT, "version": TEXT, "nodeAgentSku": TEXT}
        ),
        "registries": st.lists(
            st.one_of(
                st.fixed_dictionaries({"server": NON_EMPTY, "identity": TEXT}),
                st.fixed_dictionaries(
                    {"server": NON_EMPTY, "username": TEXT, "passwordFromEnv": ENV_NAMES}
                ),
            ),
            max_size=3,
        ),
    },
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def document(kind: str, name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "simfleet/v1", "kind": kind, "metadata": {"name": name}, "spec": spec},
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
