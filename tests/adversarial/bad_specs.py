"""Spec files that must be refused: each one broke, or could break, a promise of issue 7.

Every entry is ``(id, text)``: the whole text of one spec file that defines (or tries to
define) ``kind: Simulation`` named ``bad`` on pool ``sims``, with one thing wrong. The Pool
``sims`` is *not* in these texts: whoever uses the list writes it in a separate, good file
beside the bad one and reads the two together (``simfleet validate DIR``, or a running
daemon's specs directory). Entries whose id starts with ``dangling-pool`` are wrong only
in that company: they name a Pool the directory does not define as written.

``simfleet validate`` must refuse each with exit code 1, a ``file:line:col:`` line and no
traceback; a daemon must hold the file's last good version (or leave ``bad`` out) while
every other simulation keeps running.
"""

from __future__ import annotations

from typing import Final

BASE: Final = """\
apiVersion: simfleet/v1
kind: Simulation
metadata:
  name: bad
spec:
  pool: sims
  image: sims/bad:1
"""


def _with(extra: str) -> str:
    """The base document plus lines under ``spec:`` (each already indented by two)."""
    return BASE + extra


def _replacing(old: str, new: str) -> str:
    """The base document with one piece changed."""
    assert old in BASE, old
    return BASE.replace(old, new)


#: "Billion laughs" under ``spec.laughs``: nine levels of nine aliases, 9⁹ strings if expanded.
_LAUGHS: Final = (
    "  laughs:\n    a: &a ["
    + ", ".join(["lol"] * 9)
    + "]\n"
    + "".join(
        f"    {name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
)

BAD_SPECS: Final[list[tuple[str, str]]] = [
    # --- durations: every field bounded, nothing that overflows date arithmetic --------
    ("max-lifetime-dot-inf", _with("  maxLifetime: .inf\n")),
    ("max-lifetime-bare-inf", _with("  maxLifetime: inf\n")),
    ("max-lifetime-nan", _with("  maxLifetime: .nan\n")),
    ("max-lifetime-1e15", _with("  maxLifetime: 1e15\n")),
    ("max-lifetime-huge-days", _with('  maxLifetime: "999999999999d"\n')),
    ("max-lifetime-huge-integer", _with("  maxLifetime: " + "9" * 60 + "\n")),
    ("max-lifetime-negative", _with("  maxLifetime: -5\n")),
    ("max-lifetime-zero", _with("  maxLifetime: 0\n")),
    ("max-lifetime-past-batch-limit", _with("  maxLifetime: 175d\n")),
    ("max-lifetime-words", _with("  maxLifetime: soon\n")),
    ("max-lifetime-boolean", _with("  maxLifetime: true\n")),
    ("backoff-zero", _with("  restartBackoff: {initial: 0, max: 0}\n")),
    ("backoff-sub-second", _with("  restartBackoff: {initial: 100ms, max: 500ms}\n")),
    ("backoff-initial-above-max", _with("  restartBackoff: {initial: 10m, max: 5m}\n")),
    ("backoff-max-dot-inf", _with("  restartBackoff: {max: .inf}\n")),
    ("backoff-reset-after-1e400", _with("  restartBackoff: {resetAfter: 1e400}\n")),
    ("backoff-reset-after-zero", _with("  restartBackoff: {resetAfter: 0s}\n")),
    ("progress-deadline-1ms", _with("  rollout: {progressDeadline: 1ms}\n")),
    ("progress-deadline-900000000d", _with("  rollout: {progressDeadline: 900000000d}\n")),
    ("progress-deadline-negative", _with('  rollout: {progressDeadline: "-5m"}\n')),
    # --- values no process or Batch request can carry ----------------------------------
    ("env-value-nul", _with('  env: {A: "a\\0b"}\n')),
    ("env-value-lone-surrogate", _with('  env: {A: "\\ud800"}\n')),
    ("env-value-escape-sequence", _with('  env: {A: "\\e[2J"}\n')),
    ("env-value-c1-control", _with('  env: {A: "\\x9b"}\n')),
    ("env-name-nul", _with('  env: {"A\\0": x}\n')),
    ("env-name-lone-surrogate", _with('  env: {"\\udc80": x}\n')),
    ("command-string-nul", _with('  command: "python3 main.py\\0"\n')),
    ("command-item-nul", _with('  command: [python3, "main\\0.py"]\n')),
    ("command-item-lone-surrogate", _with('  command: [python3, "\\udfff"]\n')),
    ("run-options-newline", _with('  containerRunOptions: "--shm-size=1g\\n--privileged"\n')),
    ("run-options-nul", _with('  containerRunOptions: "--shm-size=1g\\0"\n')),
    ("image-nul", _replacing("sims/bad:1", '"sims/bad\\0:1"')),
    ("image-newline", _replacing("sims/bad:1", '"sims/bad:1\\nx"')),
    ("label-value-bell", _replacing("name: bad\n", 'name: bad\n  labels: {app: "\\a"}\n')),
    (
        "annotation-key-surrogate",
        _replacing("name: bad\n", 'name: bad\n  annotations: {"\\ud83d": x}\n'),
    ),
    ("secret-from-env-nul", _with('  secretEnv: {S: {fromEnv: "S\\0"}}\n')),
    ("unknown-key-escape-sequence", _with('  "\\e[31mred": 1\n')),
    ("raw-nul-byte-in-file", _replacing("sims/bad:1", "sims/bad\x00:1")),
    ("raw-escape-byte-in-file", _replacing("sims/bad:1", "sims/\x1b[2Jbad:1")),
    # --- numbers and booleans read as YAML 1.2 reads them ------------------------------
    ("simulators-leading-zero", _with("  simulators: 010\n")),
    ("simulators-sexagesimal", _with("  simulators: 1:30\n")),
    ("simulators-binary-yaml-1-1", _with("  simulators: 0b101\n")),
    ("simulators-underscores", _with("  simulators: 1_000\n")),
    ("suspend-yes", _with("  suspend: yes\n")),
    ("suspend-off", _with("  suspend: off\n")),
    ("suspend-quoted-true", _with('  suspend: "true"\n')),
    # --- counts and percentages ---------------------------------------------------------
    ("simulators-negative", _with("  simulators: -1\n")),
    ("simulators-over-limit", _with("  simulators: 100001\n")),
    ("simulators-huge", _with("  simulators: " + "9" * 40 + "\n")),
    ("simulators-fraction", _with("  simulators: 2.5\n")),
    ("simulators-words", _with("  simulators: eight\n")),
    ("simulators-dot-inf", _with("  simulators: .inf\n")),
    ("max-surge-over-100-percent", _with("  rollout: {maxSurge: 150%}\n")),
    ("max-surge-negative", _with("  rollout: {maxSurge: -1}\n")),
    ("max-surge-negative-percent", _with('  rollout: {maxSurge: "-5%"}\n')),
    ("max-surge-fraction-percent", _with('  rollout: {maxSurge: "2.5%"}\n')),
    ("max-surge-superscript-digit", _with('  rollout: {maxSurge: "\u00b2"}\n')),
    ("max-surge-huge", _with("  rollout: {maxSurge: 99999999999}\n")),
    ("rollout-both-zero", _with("  rollout: {maxSurge: 0, maxUnavailable: 0%}\n")),
    # --- names --------------------------------------------------------------------------
    ("name-too-long", _replacing("name: bad", "name: bad" + "d" * 62)),
    ("name-with-space", _replacing("name: bad", 'name: "bad name"')),
    ("name-cyrillic-homoglyph", _replacing("name: bad", "name: b\u0430d")),
    ("name-fullwidth", _replacing("name: bad", "name: \uff42ad")),
    ("name-empty", _replacing("name: bad", 'name: ""')),
    ("name-with-dot", _replacing("name: bad", "name: bad.sim")),
    ("name-number", _replacing("name: bad", "name: 404")),
    ("name-null", _replacing("name: bad", "name:")),
    ("pool-cyrillic-homoglyph", _replacing("pool: sims", "pool: s\u0456ms")),
    ("env-name-starts-with-digit", _with("  env: {1A: x}\n")),
    # --- kinds, versions, shapes and types ----------------------------------------------
    ("kind-misspelt", _replacing("kind: Simulation", "kind: Simulaton")),
    ("kind-lowercase", _replacing("kind: Simulation", "kind: simulation")),
    ("kind-list", _replacing("kind: Simulation", "kind: [Simulation]")),
    ("api-version-v2", _replacing("simfleet/v1", "simfleet/v2")),
    ("api-version-missing", _replacing("apiVersion: simfleet/v1\n", "")),
    ("metadata-missing", _replacing("metadata:\n  name: bad\n", "")),
    ("spec-list", BASE.split("spec:")[0] + "spec: [pool, sims]\n"),
    ("image-missing", _replacing("  image: sims/bad:1\n", "")),
    ("image-blank", _replacing("sims/bad:1", '" "')),
    ("image-empty", _replacing("sims/bad:1", '""')),
    ("pool-missing", _replacing("  pool: sims\n", "")),
    ("unknown-field", _with("  simulatorz: 3\n")),
    ("python-spelling", _with("  container_run_options: --shm-size=1g\n")),
    ("unknown-top-level-field", BASE + "status: {}\n"),
    ("env-list-for-mapping", _with("  env: [A, B]\n")),
    ("env-value-number", _with("  env: {PORT: 8080}\n")),
    ("env-value-boolean", _with("  env: {DEBUG: true}\n")),
    ("env-and-secret-env-same-name", _with("  env: {S: x}\n  secretEnv: {S: {fromEnv: S}}\n")),
    ("secret-env-plain-value", _with("  secretEnv: {S: hunter2}\n")),
    ("command-mapping", _with("  command: {run: main.py}\n")),
    ("command-empty-list", _with("  command: []\n")),
    ("command-null", _with("  command:\n")),
    ("command-blank", _with('  command: "   "\n')),
    ("command-list-without-program", _with('  command: ["", main.py]\n')),
    ("rollout-list", _with("  rollout: [25%]\n")),
    ("restart-policy-unknown", _with("  restartPolicy: Sometimes\n")),
    ("restart-policy-lowercase", _with("  restartPolicy: always\n")),
    ("restart-backoff-scalar", _with("  restartBackoff: 10s\n")),
    ("second-document-a-list", BASE + "---\n- a\n- b\n"),
    ("second-document-a-scalar", BASE + "--- 5\n"),
    # --- YAML syntax, tags and limits ---------------------------------------------------
    ("tab-indentation", _with("\tsimulators: 2\n")),
    ("bad-indentation", _with("  simulators: 2\n   suspend: true\n")),
    ("duplicate-key", _with("  simulators: 2\n  simulators: 3\n")),
    ("unclosed-flow-mapping", _with("  env: {A: x\n")),
    ("unclosed-quote", _with('  command: "python3\n')),
    ("merge-key", _with("  rollout: &r {maxSurge: 1}\n  restartBackoff:\n    <<: *r\n")),
    ("python-object-tag", _with("  command: !!python/object/apply:os.system [id]\n")),
    ("binary-tag", _replacing("sims/bad:1", "!!binary aGk=")),
    ("custom-tag", _replacing("sims/bad:1", "!image sims/bad:1")),
    ("billion-laughs", _with(_LAUGHS)),
    ("recursive-alias", _with("  command: &c [python3, *c]\n")),
    ("nesting-too-deep", _with("  command: " + "[" * 200 + "]" * 200 + "\n")),
    ("flat-list-too-long", _with("  command: [" + "x, " * 20_000 + "x]\n")),
    ("over-one-mebibyte", BASE + "#" * (1024 * 1024) + "\n"),
    # --- files that define nothing any more ---------------------------------------------
    ("no-documents-commented-out", "".join(f"# {line}\n" for line in BASE.splitlines())),
    ("no-documents-only-separator", "---\n"),
    ("no-documents-whitespace", "  \n\n"),
    # --- pool references (need the Pool file beside them) -------------------------------
    ("dangling-pool-misspelt", _replacing("pool: sims", "pool: simz")),
    ("dangling-pool-other-case", _replacing("pool: sims", "pool: SIMS")),
]
