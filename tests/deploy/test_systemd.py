"""``deploy/simfleet.service``: systemd accepts every line of it, and it keeps its hardening.

``systemd-analyze verify`` resolves the unit the way systemd would load it and reports
unknown keys, bad values and a missing executable. The unit names where the project is
installed on a VM (``/opt/simfleet``), which is not this machine: the copy verified here
points ``ExecStart`` at this checkout's ``simfleet`` instead, and nothing else changes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "simfleet.service"
INSTALLED = "/opt/simfleet/bin/simfleet"

HARDENING = {
    "DynamicUser": "yes",
    "StateDirectory": "simfleet",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "Restart": "on-failure",
    "EnvironmentFile": "/etc/simfleet/simfleet.env",
}
SECRETS = ("AZURE_BATCH_ACCESS_KEY=", "PASSWORD=", "SECRET=", "TOKEN=")


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing on CI (.ci/run installs systemd)")
        pytest.skip("no systemd-analyze here (apt-get install systemd)")
    return tool


def _settings(text: str) -> dict[str, str]:
    """The last value of each ``Key=value`` line (comments and sections left out)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def _verify(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of ``text`` as the unit ``simfleet.service``."""
    unit = tmp_path / "simfleet.service"
    unit.write_text(text)
    return subprocess.run(
        [_analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )


def _here(text: str) -> str:
    """The unit with ``ExecStart`` on this checkout's simfleet instead of /opt's."""
    simfleet = Path(sys.executable).with_name("simfleet")
    assert simfleet.is_file(), f"{simfleet} is not installed (make .venv/.installed)"
    assert text.count(INSTALLED) == 1
    return text.replace(INSTALLED, str(simfleet))


def _shared_key(text: str) -> str:
    """The unit with its commented lines for a shared revision key switched on."""
    switched = re.sub(r"^#(LoadCredential=|Environment=SIMFLEET_REVISION_KEY_FILE=)", r"\1", text,
                      flags=re.MULTILINE)  # fmt: skip
    assert switched.count("\nLoadCredential=") == 1
    return switched


@pytest.mark.parametrize("variant", [str, _shared_key], ids=["as shipped", "shared revision key"])
def test_systemd_analyze_verify_accepts_the_unit_without_a_word(
    tmp_path: Path, variant: Callable[[str], str]
) -> None:
    done = _verify(_here(variant(UNIT.read_text())), tmp_path)
    print(f"systemd-analyze verify: exit {done.returncode}, output {done.stdout + done.stderr!r}")
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == ""


def test_a_misspelt_directive_would_be_caught(tmp_path: Path) -> None:
    """What the test above relies on: verify names an unknown key (it still exits 0)."""
    broken = _here(UNIT.read_text()).replace("ProtectSystem=", "ProtectSytem=")
    done = _verify(broken, tmp_path)
    assert "Unknown key 'ProtectSytem'" in done.stdout + done.stderr


def test_the_unit_keeps_its_hardening_and_no_secret() -> None:
    text = UNIT.read_text()
    settings = _settings(text)
    assert {key: settings.get(key) for key in HARDENING} == HARDENING
    assert settings["ExecStart"].startswith(f"{INSTALLED} run ")
    uncommented = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    assert not any(secret in uncommented for secret in SECRETS)
