"""``deploy/grafana-dashboard.json`` is a dashboard Grafana imports, over real metrics.

A renamed metric leaves a panel that silently shows "No data"; so every series name a
query uses is looked up among what the daemon's registry produces (a counter only as
``_total``/``_created``, a histogram only as ``_bucket``/``_sum``/``_count``/``_created``),
and a real daemon's ``/metrics`` is scraped to see the names the fleet panels rely on.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from controller.daemon import Controller, DaemonConfig, utc_now
from controller.daemon._metrics import Metrics
from controller.testing import FakeBackend
from tests.daemon.conftest import POOL, get, running, simulation

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana-dashboard.json"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def _dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def _panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in document["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _queries(document: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets and template variables."""
    queries = [t["expr"] for p in _panels(document) for t in p.get("targets", [])]
    for variable in document["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["query"]["query"])
    return queries


def _series_names(metrics: Metrics) -> set[str]:
    return {
        family.name + suffix
        for family in metrics.registry.collect()
        for suffix in SUFFIXES[family.type]
    }


def test_every_query_uses_only_series_the_daemon_exports() -> None:
    exported = _series_names(Metrics())
    queries = _queries(_dashboard())
    assert queries
    for query in queries:
        used = set(re.findall(r"\bsimfleet_[a-z_]+", query))
        assert used, f"a query over no simfleet metric: {query}"
        assert used <= exported, f"{query}: {sorted(used - exported)} is not exported"


def test_every_family_the_daemon_exports_has_a_panel() -> None:
    """A new metric gets a panel: the dashboard covers the whole registry."""
    used = {n for q in _queries(_dashboard()) for n in re.findall(r"\bsimfleet_[a-z_]+", q)}
    for family in Metrics().registry.collect():
        names = {family.name + suffix for suffix in SUFFIXES[family.type]}
        assert names & used, f"no panel shows {family.name}"


def test_the_dashboard_is_well_formed_for_grafana() -> None:
    document = _dashboard()
    assert document["uid"]
    assert document["title"]
    assert document["schemaVersion"] >= 36
    panels = list(_panels(document))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in document["templating"]["list"]}
    assert "datasource" in variables
    for panel in panels:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        references = [t["refId"] for t in panel["targets"]]
        assert references, panel["title"]
        assert len(references) == len(set(references)), panel["title"]
        for target in panel["targets"]:
            for name in re.findall(r"\$(\w+)", target["expr"]):
                assert name in variables | {"__rate_interval"}, f"{panel['title']}: ${name}"


async def test_a_running_daemon_scrapes_as_the_dashboard_expects(tmp_path: Path) -> None:
    """The fleet panels' series are there after one pass, under the labels they group by."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(POOL)
    (specs / "a.yaml").write_text(simulation("alpha", 2))
    controller = Controller(DaemonConfig(specs=specs, port=0), FakeBackend(clock=utc_now))
    expected = (
        'simfleet_simulators_desired{simulation="alpha"} 2.0',
        'simfleet_simulators_up_to_date{simulation="alpha"}',
        'simfleet_backend_requests_total{operation="observe",outcome="ok"}',
        "simfleet_reconcile_duration_seconds_bucket{",
        'simfleet_pool_nodes{pool="sims",state="usable"}',  # counted once the pool exists
    )
    text = ""
    async with running(controller):
        for _ in range(200):  # 10 s at most: a pass after the one that made the pool
            status, text = await get(controller, "/metrics")
            assert status == 200
            if all(series in text for series in expected):
                return
            await asyncio.sleep(0.05)
    missing = [series for series in expected if series not in text]
    raise AssertionError(f"not scraped: {missing}")
