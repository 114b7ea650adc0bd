"""Deterministic ids: the same simulation, slot, template and attempt always give one id.

A pass that is repeated after a crash computes the very ids it computed before, so the
backend answers "exists" instead of creating a duplicate (the Deployment controller names
ReplicaSets by a hash of their pod template for the same reason). Never ``uuid4``.

Task id layout (Batch allows letters, digits, ``-``, ``_``, at most 64 characters)::

    <simulation>-s<slot>-r<revision>-a<attempt>      cartpole-s3-r5f2c9a1b0e-a2

A simulation name too long to fit is shortened and suffixed with a hash of the full name,
so two long names never collide.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from controller.planner._actions import SecretEnv, TaskTemplate

MAX_ID = 64
REVISION_LENGTH = 10
_TASK_ID = re.compile(r"^(?P<prefix>.+)-s(?P<slot>\d+)-r(?P<revision>[0-9a-f]+)-a(?P<attempt>\d+)$")


def secret_digest(key: bytes, secrets: Iterable[SecretEnv]) -> str:
    """A keyed digest of secret values, for the revision; "" when there are none.

    An unkeyed hash of a template that holds a secret lets anyone who sees a task id test
    guesses of the secret offline (a weak one fell in 0.17 s). Under an HMAC with a key
    that never leaves the controller, the revision still changes when a secret does, but
    says nothing about it. Losing the key changes the revision of simulations with
    secrets: one rolling update within their rollout limits, never a duplicate.
    """
    return keyed_digest(key, ((s.name, s.value.get_secret_value()) for s in secrets))


def keyed_digest(key: bytes, pairs: Iterable[tuple[str, str]]) -> str:
    """HMAC-SHA256 under ``key`` of name/secret pairs (order does not matter); "" for none.

    The one way simfleet records that a secret changed without recording the secret:
    template revisions (:func:`secret_digest`) and registry logins (:mod:`._logins`).
    """
    ordered = sorted(pairs)
    if not ordered:
        return ""
    message = json.dumps(ordered, separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def revision(template: TaskTemplate) -> str:
    """A short hash of everything that makes simulators of one template identical.

    Secret values enter only through ``template.secret_digest`` (see
    :func:`secret_digest`); only the first ten hex digits of a SHA-256 over the template
    leave this function. ``maxLifetime`` is left out: changing it recycles simulators as
    they reach it, not all at once.
    """
    canonical = json.dumps(
        {
            "image": template.image,
            "command": list(template.command)
            if isinstance(template.command, tuple)
            else template.command,
            "env": sorted(template.env),
            "secretEnv": sorted(s.name for s in template.secret_env),
            "secrets": template.secret_digest,
            "containerRunOptions": template.container_run_options,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:REVISION_LENGTH]


def _prefix(simulation: str, room: int) -> str:
    if len(simulation) <= room:
        return simulation
    digest = hashlib.sha256(simulation.encode()).hexdigest()[:6]
    return f"{simulation[: room - 7]}_{digest}"


def task_id(simulation: str, slot: int, rev: str, attempt: int) -> str:
    """The id of attempt ``attempt`` of slot ``slot`` at template revision ``rev``."""
    suffix = f"-s{slot}-r{rev}-a{attempt}"
    return _prefix(simulation, MAX_ID - len(suffix)) + suffix


@dataclass(frozen=True)
class TaskKey:
    """What a task id says about its task."""

    slot: int
    revision: str
    attempt: int


def parse_task_id(simulation: str, value: str) -> TaskKey | None:
    """Read slot, revision and attempt back from an id; None if simfleet did not make it."""
    match = _TASK_ID.match(value)
    if match is None:
        return None
    key = TaskKey(int(match["slot"]), match["revision"], int(match["attempt"]))
    if task_id(simulation, key.slot, key.revision, key.attempt) != value:
        return None
    return key
