"""``deploy/simfleet-alerts.yml`` and docs/deploy.md name the metrics the daemon exports.

A renamed metric would leave an alert that never fires; this reads every ``simfleet_*``
name in the rules and looks it up in the daemon's own registry, and checks that the
guide's table lists exactly the metrics there are. ``promtool check rules``
(Debian's ``prometheus`` package) also checks the syntax where it is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.daemon._metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "simfleet-alerts.yml"
GUIDE = REPO / "docs" / "deploy.md"
SERIES_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _exported() -> set[str]:
    """Every series name the registry can produce (counters' ``_total``, histograms' parts)."""
    names = set()
    for metric in Metrics().registry.collect():
        names.add(metric.name)
        names.update(metric.name + suffix for suffix in SERIES_SUFFIXES)
    return names


def test_every_rule_names_only_exported_metrics() -> None:
    exported = _exported()
    for rule in _rules():
        used = set(re.findall(r"\bsimfleet_[a-z_]+", rule["expr"]))
        assert used <= exported, f"{rule['alert']}: {used - exported} is not exported"


def test_the_guide_lists_every_metric_under_its_exported_name() -> None:
    exported = {
        metric.name + ("_total" if metric.type == "counter" else "")
        for metric in Metrics().registry.collect()
    }
    listed = set(re.findall(r"^\| `(simfleet_[a-z_]+)` \|", GUIDE.read_text(), re.MULTILINE))
    assert listed == exported


def test_every_rule_says_what_it_means_and_how_bad() -> None:
    for rule in _rules():
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing on CI (.ci/run installs prometheus)")
        pytest.skip("no promtool here (apt-get install prometheus)")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
