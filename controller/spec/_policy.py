"""Which ``docker run`` options a spec may ask for: the operator's run-options policy.

``containerRunOptions`` is handed to ``docker run`` (locally, or by Batch on a pool node).
Whoever can merge a spec could otherwise write ``-v /:/host``, ``--privileged``,
``--pid=host`` or ``--network=host`` and own the machine the controller runs on, with its
credentials. So options are checked against a policy the *operator* sets, never the spec:
by default an allow-list of resource and runtime limits
(:data:`DEFAULT_ALLOWED_RUN_OPTIONS`), widened only by the operator, by name
(``--allow-run-option volume``) or wholesale (``--unsafe-run-options``).

The text is split as a shell would (``shlex``) and parsed as the docker CLI parses it
(``pflag``): ``--flag=value``, ``--flag value``, boolean ``--flag`` (a boolean takes a value
only after ``=``), short flags with attached or separate values (``-m512m``, ``-m 512m``,
``-m=512m``) and clusters of short booleans. Parsing needs to know which options take a
value, so :data:`OPTIONS` lists every ``docker run`` option (docker 28); an unknown one is
refused, since its value could not be told from the next option. A word that is not an
option would become the image (and the image part of the command), and ``--`` would end the
options early, so both are refused too.

Some options can never be allowed by name (:data:`NEVER`): they would take from simfleet
what it relies on — the environment comes from ``env`` and ``secretEnv``, labels and names
are how simfleet finds its containers, ``--rm``/``--detach``/``--restart`` decide who
supervises them. Two allowed options are allowed only with safe values: ``--network``
(``none`` or ``bridge``) and ``--security-opt`` (``no-new-privileges``); allowing them by
name lifts that restriction.

This module is pure: text in, problems out. :func:`policy_errors` places the problems of
every simulation of a catalog at its ``spec.containerRunOptions`` field.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from controller.spec._catalog import Catalog, SpecObject
from controller.spec._errors import SpecError
from controller.spec._models import SimulationSpec

#: Every ``docker run`` option (long name → its one-letter shorthand or ""), split by
#: whether it takes a value. ``net`` and ``net-alias`` are the CLI's hidden aliases.
VALUE_OPTIONS: Final = {
    "add-host": "", "annotation": "", "attach": "a", "blkio-weight": "",
    "blkio-weight-device": "", "cap-add": "", "cap-drop": "", "cgroup-parent": "",
    "cgroupns": "", "cidfile": "", "cpu-count": "", "cpu-percent": "", "cpu-period": "",
    "cpu-quota": "", "cpu-rt-period": "", "cpu-rt-runtime": "", "cpu-shares": "c",
    "cpus": "", "cpuset-cpus": "", "cpuset-mems": "", "detach-keys": "", "device": "",
    "device-cgroup-rule": "", "device-read-bps": "", "device-read-iops": "",
    "device-write-bps": "", "device-write-iops": "", "dns": "", "dns-option": "",
    "dns-search": "", "domainname": "", "entrypoint": "", "env": "e", "env-file": "",
    "expose": "", "gpus": "", "group-add": "", "health-cmd": "", "health-interval": "",
    "health-retries": "", "health-start-interval": "", "health-start-period": "",
    "health-timeout": "", "hostname": "h", "ip": "", "ip6": "", "ipc": "", "isolation": "",
    "kernel-memory": "", "label": "l", "label-file": "", "link": "", "link-local-ip": "",
    "log-driver": "", "log-opt": "", "mac-address": "", "memory": "m",
    "memory-reservation": "", "memory-swap": "", "memory-swappiness": "", "mount": "",
    "name": "", "net": "", "net-alias": "", "network": "", "network-alias": "",
    "oom-score-adj": "", "pid": "", "pids-limit": "", "platform": "", "publish": "p",
    "pull": "", "restart": "", "runtime": "", "security-opt": "", "shm-size": "",
    "stop-signal": "", "stop-timeout": "", "storage-opt": "", "sysctl": "", "tmpfs": "",
    "ulimit": "", "user": "u", "userns": "", "uts": "", "volume": "v",
    "volume-driver": "", "volumes-from": "", "workdir": "w",
}  # fmt: skip
BOOLEAN_OPTIONS: Final = {
    "detach": "d", "disable-content-trust": "", "help": "", "init": "", "interactive": "i",
    "no-healthcheck": "", "oom-kill-disable": "", "privileged": "", "publish-all": "P",
    "quiet": "q", "read-only": "", "rm": "", "sig-proxy": "", "tty": "t",
    "use-api-socket": "",
}  # fmt: skip
OPTIONS: Final = frozenset(VALUE_OPTIONS) | frozenset(BOOLEAN_OPTIONS)
#: Shorthand letter → long name.
SHORTHANDS: Final = {
    letter: name for name, letter in (*VALUE_OPTIONS.items(), *BOOLEAN_OPTIONS.items()) if letter
}
#: Aliases the CLI accepts for an option, by the name the policy knows it by.
ALIASES: Final = {"net": "network", "net-alias": "network-alias"}

#: Resource and runtime limits a spec may set unless the operator says otherwise.
DEFAULT_ALLOWED_RUN_OPTIONS: Final = frozenset(
    {
        "cap-drop", "cpu-period", "cpu-quota", "cpu-shares", "cpus", "cpuset-cpus",
        "entrypoint", "gpus", "hostname", "init", "memory", "memory-reservation",
        "memory-swap", "network", "pids-limit", "read-only", "security-opt", "shm-size",
        "stop-signal", "stop-timeout", "tmpfs", "ulimit", "user", "workdir",
    }
)  # fmt: skip
#: Allowed by default only with these values (allowing the option by name lifts it); the
#: first is how messages name them.
SAFE_VALUES: Final = {
    "network": ("none or bridge", frozenset({"none", "bridge"})),
    "security-opt": (
        "no-new-privileges",
        frozenset({"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}),
    ),
}
#: Options that no ``--allow-run-option`` can allow, and why.
NEVER: Final = {
    "env": "variables come from env and secretEnv",
    "env-file": "variables come from env and secretEnv",
    "label": "labels are simfleet's: it finds its containers by them",
    "label-file": "labels are simfleet's: it finds its containers by them",
    "name": "simfleet finds its containers by label; a name would outlive a stop",
    "rm": "simfleet removes its containers itself",
    "detach": "simfleet supervises the container through the attached docker run",
    "restart": "simfleet restarts simulators by its restartPolicy",
    "sig-proxy": "simfleet stops a container through the CLI's signal proxy",
    "help": "it prints help instead of running the container",
}
HINT = "an operator may allow it with --allow-run-option {name}"


class PolicyError(ValueError):
    """An operator's policy setting that cannot be honoured (a usage error)."""


def canonical(flag: str) -> str:
    """``-v``, ``--volume``, ``volume`` → ``volume``; an alias → its option.

    Raises:
        PolicyError: not a ``docker run`` option.
    """
    text = flag.strip()
    if len(text) == 2 and text[0] == "-" and text[1] in SHORTHANDS:
        return SHORTHANDS[text[1]]
    name = text.removeprefix("--")
    name = ALIASES.get(name, name)
    if name not in OPTIONS:
        raise PolicyError(f"{flag!r} is not a docker run option")
    return name


@dataclass(frozen=True)
class RunOptionsPolicy:
    """Which options a spec's ``containerRunOptions`` may hold.

    Attributes:
        allowed: long names of the options allowed (:data:`DEFAULT_ALLOWED_RUN_OPTIONS` plus the
            operator's additions).
        widened: the operator's additions, which are allowed with any value.
        unrestricted: anything passes (``--unsafe-run-options``, or Azure's default).
        warning: what to warn the operator about at start ("" when nothing).
    """

    allowed: frozenset[str] = DEFAULT_ALLOWED_RUN_OPTIONS
    widened: frozenset[str] = frozenset()
    unrestricted: bool = False
    warning: str = ""

    @classmethod
    def strict(cls, extra: Iterable[str] = ()) -> RunOptionsPolicy:
        """The default allow-list, widened by the operator's ``extra`` option names.

        Raises:
            PolicyError: an unknown option, or one of :data:`NEVER`.
        """
        widened = frozenset(canonical(flag) for flag in extra)
        for name in sorted(widened & NEVER.keys()):
            raise PolicyError(f"--{name} cannot be allowed: {NEVER[name]}")
        return cls(allowed=DEFAULT_ALLOWED_RUN_OPTIONS | widened, widened=widened)

    @classmethod
    def unsafe(cls) -> RunOptionsPolicy:
        """Anything passes: the operator trusts every spec author with the host."""
        return cls(
            unrestricted=True,
            warning="--unsafe-run-options: containerRunOptions may hold anything "
            "(host mounts, --privileged, host namespaces); whoever writes a spec can take "
            "over this host",
        )

    @classmethod
    def pass_through(cls) -> RunOptionsPolicy:
        """Anything passes, because it runs elsewhere (Batch's pool nodes), not here."""
        return cls(unrestricted=True)

    def describe(self) -> str:
        """One line for logs: what this policy lets through."""
        if self.unrestricted:
            return "any run option"
        extra = f", plus {', '.join(sorted(self.widened))}" if self.widened else ""
        return f"the default allow-list{extra}"

    def problems(self, text: str) -> list[str]:
        """Everything in ``text`` this policy refuses, one message each (empty: all good)."""
        if self.unrestricted:
            return []
        try:
            words = shlex.split(text)
        except ValueError as error:
            return [f"cannot be split into words as a shell would: {error}"]
        return [problem for option in _parse(words) if (problem := self._judge(option)) is not None]

    def _judge(self, option: _Option) -> str | None:
        if option.problem is not None:
            return option.problem
        name, spelled = option.name, option.spelled
        if name in NEVER:
            return f"{spelled} is not allowed: {NEVER[name]}"
        if name not in self.allowed:
            return f"{spelled} is not allowed by the run-options policy ({HINT.format(name=name)})"
        if name in SAFE_VALUES and name not in self.widened:
            shown, safe = SAFE_VALUES[name]
            if option.value not in safe:
                hint = HINT.format(name=name)
                return f"{spelled} {option.value}: only {shown} is allowed ({hint})"
        return None


@dataclass(frozen=True)
class _Option:
    """One parsed option: its long name, how it was written, its value; or why not."""

    name: str = ""
    spelled: str = ""
    value: str | None = None
    problem: str | None = None


def _parse(words: list[str]) -> Iterator[_Option]:
    """The options of ``words`` as ``pflag`` reads them, up to the first it cannot read."""
    rest = iter(words)
    for word in rest:
        if word == "--":
            options = [_Option(problem="'--' is not allowed: simfleet ends the options itself")]
        elif word.startswith("--"):
            options = [_long(word, rest)]
        elif word.startswith("-") and word != "-":
            options = list(_shorts(word, rest))
        else:
            options = [
                _Option(
                    problem=f"{word!r} is not an option: containerRunOptions holds only "
                    "options (the image goes in image, its arguments in command)"
                )
            ]
        for option in options:
            yield option
            if option.problem is not None:
                return


def _long(word: str, rest: Iterator[str]) -> _Option:
    """``--name``, ``--name=value`` or ``--name value``."""
    name, has_value, attached = word[2:].partition("=")
    spelled = f"--{name}"
    name = ALIASES.get(name, name)
    if name in BOOLEAN_OPTIONS:
        return _Option(name, spelled, attached if has_value else "true")
    if name not in VALUE_OPTIONS:
        return _Option(problem=f"{spelled} is not a docker run option simfleet knows")
    value = attached if has_value else next(rest, None)
    if value is None:
        return _Option(problem=f"{spelled} needs a value")
    return _Option(name, spelled, value)


def _shorts(word: str, rest: Iterator[str]) -> Iterator[_Option]:
    """``-it``, ``-m512m``, ``-m=512m``, ``-m 512m``: one option per letter."""
    letters = word[1:]
    while letters:
        letter, letters = letters[0], letters[1:]
        name = SHORTHANDS.get(letter)
        spelled = f"-{letter}"
        if name is None:
            yield _Option(problem=f"{spelled} is not a docker run option simfleet knows")
            return
        shown = f"{spelled} (--{name})"
        if name in BOOLEAN_OPTIONS:
            if letters.startswith("="):
                yield _Option(name, shown, letters[1:])
                return
            yield _Option(name, shown, "true")
            continue
        value: str | None = letters.removeprefix("=") if letters else next(rest, None)
        if value is None:
            yield _Option(problem=f"{shown} needs a value")
        else:
            yield _Option(name, shown, value)
        return


FIELD = "spec.containerRunOptions"


def run_options_errors(obj: SpecObject, policy: RunOptionsPolicy) -> list[SpecError]:
    """A spec error at ``spec.containerRunOptions`` of ``obj`` for each problem found."""
    if not isinstance(obj.spec, SimulationSpec):
        return []
    line, column = obj.positions.get(FIELD, (obj.line, obj.column))
    return [
        SpecError(obj.file, line, column, FIELD, problem)
        for problem in policy.problems(obj.spec.container_run_options)
    ]


def policy_errors(catalog: Catalog, policy: RunOptionsPolicy) -> list[SpecError]:
    """:func:`run_options_errors` of every simulation of ``catalog`` (``simfleet validate``)."""
    return [e for obj in catalog.simulations.values() for e in run_options_errors(obj, policy)]
