"""``make soak`` for twenty seconds on a tiny fleet, per backend: keeps the soak from rotting.

The soak (``benchmarks/soak.py``) runs the real daemon under random spec edits, bad files,
crashes, Batch faults and controller ``kill -9``, and exits non-zero if an invariant broke
(a doubled or lost slot, an unowned object touched, a secret in any output, no
convergence within the bound). A fixed seed keeps the steps it takes the same from run to
run, as far as timing allows.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import BACKENDS, REPO


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_short_soak_holds_every_invariant(backend: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/soak.py",
            "--minutes",
            "0.33",
            "--simulators",
            "8",
            "--backend",
            backend,
            "--seed",
            "7",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"result\s+PASS", output), output
    steps = re.search(r"steps\s+(\d+) in (\d+) fault rounds", output)
    assert steps is not None, output
    assert int(steps[1]) >= 5, output  # it really did something
    assert int(steps[2]) >= 1, output
    assert re.search(r"worst convergence\s+\d+\.\d s over [1-9]", output), output
