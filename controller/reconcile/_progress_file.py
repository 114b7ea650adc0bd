"""Rollout progress kept in the state directory, so progress deadlines survive a restart.

A simulation's progress is its best marks and when they last improved; the Stalled
condition turns true once ``rollout.progressDeadline`` has passed since then. Kept only in
memory, a restarted controller would start every deadline afresh and a rollout stuck for
hours would never be called stalled if the controller restarts often enough. The file is
rewritten (atomically) only when progress changed; an unreadable file is ignored with a
warning — deadlines then start afresh, as they did before the file existed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import structlog

from controller.backends import DEFAULT_FLEET
from controller.planner import Progress

log = structlog.get_logger("simfleet.reconcile")

FILE_NAME = "progress.json"


def file_name(fleet: str) -> str:
    """One file per fleet, so two fleets' controllers given one state directory (Azure)
    keep their own deadlines; the default fleet's keeps the name it always had."""
    return FILE_NAME if fleet == DEFAULT_FLEET else f"progress-{fleet}.json"


class ProgressFile:
    """``<state dir>/progress.json``: progress per simulation not yet converged."""

    def __init__(self, state_dir: Path, fleet: str = DEFAULT_FLEET) -> None:
        self.path = state_dir / file_name(fleet)
        self._saved: Mapping[str, Progress] | None = None

    def load(self) -> dict[str, Progress]:
        """The progress saved last, or nothing if there is none (or it cannot be read)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            progress = {
                name: Progress((int(entry["best"][0]), int(entry["best"][1])), _when(entry))
                for name, entry in raw["progress"].items()
            }
        except FileNotFoundError:
            progress = {}
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("progress_unreadable", path=str(self.path), error=str(exc))
            progress = {}
        self._saved = dict(progress)
        return progress

    def save(self, progress: Mapping[str, Progress]) -> None:
        """Write ``progress`` unless it is what the file already holds."""
        if self._saved is not None and dict(progress) == dict(self._saved):
            return
        body = {
            "version": 1,
            "progress": {
                name: {"best": list(p.best), "since": p.since.isoformat()}
                for name, p in sorted(progress.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        os.replace(partial, self.path)
        self._saved = dict(progress)


def _when(entry: Mapping[str, object]) -> datetime:
    since = datetime.fromisoformat(str(entry["since"]))
    if since.tzinfo is None:
        raise ValueError("progress time without a timezone")
    return since
