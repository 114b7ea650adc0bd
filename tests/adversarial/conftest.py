"""The adversarial suite reuses the scenario fixtures: the real daemon, real processes and
the Batch emulator, driven as an attacker or an unlucky operator would."""

from tests.scenarios.conftest import fleet, local_fleet

__all__ = ["fleet", "local_fleet"]
