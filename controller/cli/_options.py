"""Options several commands share, each also read from ``SIMFLEET_<OPTION>``.

product.md fixes the names and defaults; this module is the one place they are spelled,
so ``run``, ``plan``, ``apply`` and ``logs`` cannot drift apart.

Options whose defaults or checks come from the fleet machinery (``--fleet``, the lease
timings, the run-options policy) import it when a command applies them, not when this
module is imported: ``status`` uses only the light options here and starts without the
spec models, the planner or the backends.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from controller.spec import RunOptionsPolicy

F = TypeVar("F", bound=Callable[..., Any])


def option(*names: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option that also reads ``SIMFLEET_<env>`` (product.md: every option does)."""
    return click.option(*names, envvar=f"SIMFLEET_{env}", show_envvar=True, **kwargs)


specs = option(
    "--specs",
    env="SPECS",
    type=click.Path(path_type=Path),
    default=Path("specs"),
    show_default=True,
    help="Directory of spec files.",
)
backend = option(
    "--backend",
    env="BACKEND",
    type=click.Choice(["local", "azure"]),
    default="local",
    show_default=True,
    help="Where simulators run.",
)
runtime = option(
    "--runtime",
    env="RUNTIME",
    type=click.Choice(["process", "docker"]),
    default="process",
    show_default=True,
    help="How the local backend runs a simulator.",
)
state_dir = option(
    "--state-dir",
    env="STATE_DIR",
    type=click.Path(path_type=Path),
    default=Path(".simfleet"),
    show_default=True,
    help="Where the local backend keeps state.",
)
listen = option(
    "--listen",
    env="LISTEN",
    default="127.0.0.1:9120",
    show_default=True,
    help="HOST:PORT of the daemon's HTTP endpoints.",
)
listen_public = option(
    "--listen-public",
    env="LISTEN_PUBLIC",
    is_flag=True,
    default=False,
    help="Allow a --listen address other than loopback: /status shows simulators' "
    "stderr tails to anyone who can connect.",
)
allow_empty_prune = option(
    "--allow-empty-prune",
    env="ALLOW_EMPTY_PRUNE",
    is_flag=True,
    default=False,
    help="Prune even when the specs directory is empty or missing (deletes everything).",
)


settle = option(
    "--settle",
    env="SETTLE",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Seconds a new simulator must run before it counts as available in a rollout.",
)


@dataclass(frozen=True)
class Delays:
    """How long a change must hold before a pass acts on it, in seconds.

    Attributes:
        prune: an object's definition stays absent before the object is pruned.
        scale_down: demand stays below an auto pool's size before the pool shrinks.
    """

    prune: float = 10.0
    scale_down: float = 600.0


prune_delay = option(
    "--prune-delay",
    env="PRUNE_DELAY",
    type=click.FloatRange(min=0),
    default=Delays.prune,
    show_default=True,
    help="Seconds an object's definition must stay absent before it is pruned, so a"
    " half-written file or a git checkout never disrupts anything.",
)
scale_down_delay = option(
    "--scale-down-delay",
    env="SCALE_DOWN_DELAY",
    type=click.FloatRange(min=0),
    default=Delays.scale_down,
    show_default=True,
    help="Seconds demand must stay below an auto pool's size before the pool shrinks"
    " (idle nodes only), so a rollout or a brief dip never costs a node allocation.",
)


def delays(func: F) -> F:
    """``--prune-delay`` and ``--scale-down-delay``, handed to the command as one
    ``delays`` value."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["delays"] = Delays(
            prune=kwargs.pop("prune_delay"), scale_down=kwargs.pop("scale_down_delay")
        )
        return func(*args, **kwargs)

    return prune_delay(scale_down_delay(wrapper))  # type: ignore[return-value]


allow_secret_env = option(
    "--allow-secret-env",
    env="ALLOW_SECRET_ENV",
    multiple=True,
    metavar="GLOB",
    help="Controller variables a spec's secretEnv may read (repeatable globs, e.g. 'SIM_*');"
    " default: any but the controller's own (AZURE_*, SIMFLEET_*, … are never readable).",
)


max_in_flight = option(
    "--max-in-flight",
    env="MAX_IN_FLIGHT",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Backend requests in flight at once (independent actions run concurrently).",
)


revision_key_file = option(
    "--revision-key-file",
    env="REVISION_KEY_FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The secret key of template revisions (default: revision.key in --state-dir, made"
    " on first use). Give every replica of a fleet, and a CI apply beside them, the same"
    " file: with different keys, simulations with secretEnv roll at every takeover.",
)


def pass_policy(func: F) -> F:
    """``--prune-delay``, ``--scale-down-delay`` (as one ``delays`` value),
    ``--allow-secret-env`` and ``--revision-key-file``: the operator's rules for every pass."""
    return delays(allow_secret_env(revision_key_file(func)))


def allow_run_option(func: F) -> F:
    """``--allow-run-option``, whose help lists the default allow-list."""
    from controller.spec import DEFAULT_ALLOWED_RUN_OPTIONS

    return option(
        "--allow-run-option",
        env="ALLOW_RUN_OPTION",
        multiple=True,
        metavar="OPTION",
        help="Also allow this docker run option in containerRunOptions (repeatable; the "
        "variable takes several, space or comma separated). Default allow-list: "
        + ", ".join(sorted(DEFAULT_ALLOWED_RUN_OPTIONS))
        + " (network only none or bridge, security-opt only no-new-privileges).",
    )(func)


unsafe_run_options = option(
    "--unsafe-run-options",
    env="UNSAFE_RUN_OPTIONS",
    is_flag=True,
    default=False,
    help="Let containerRunOptions hold anything: every spec author can take over the host.",
)
run_options_policy = option(
    "--run-options-policy",
    env="RUN_OPTIONS_POLICY",
    type=click.Choice(["auto", "strict"]),
    default="auto",
    show_default=True,
    help="strict: the allow-list on every backend. auto: strict locally; on azure run "
    "options pass through (they run on pool nodes) unless --allow-run-option is given.",
)


def run_options(func: F) -> F:
    """The three run-options settings, handed to the command as one ``run_options`` policy.

    The default depends on ``--backend`` (``local`` when the command has none).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["run_options"] = resolve_run_options(
            kwargs.get("backend", "local"),
            kwargs.pop("allow_run_option"),
            unsafe=kwargs.pop("unsafe_run_options"),
            policy=kwargs.pop("run_options_policy"),
        )
        return func(*args, **kwargs)

    return allow_run_option(unsafe_run_options(run_options_policy(wrapper)))  # type: ignore[return-value]


def warn(policy: RunOptionsPolicy) -> None:
    """A one-shot command's start-up warning about the policy, on stderr."""
    if policy.warning:
        click.echo(f"warning: {policy.warning}", err=True)


def resolve_run_options(
    backend: str, allowed: tuple[str, ...], *, unsafe: bool, policy: str
) -> RunOptionsPolicy:
    """The policy the operator's options ask for (see :mod:`controller.spec._policy`).

    Raises:
        click.UsageError: contradicting options, or an option that cannot be allowed.
    """
    from controller.spec import PolicyError, RunOptionsPolicy

    names = [name for value in allowed for name in re.split(r"[\s,]+", value) if name]
    if unsafe:
        if policy == "strict":
            raise click.UsageError("--unsafe-run-options contradicts --run-options-policy strict")
        return RunOptionsPolicy.unsafe()
    if backend == "azure" and policy == "auto" and not names:
        return RunOptionsPolicy.pass_through()
    try:
        return RunOptionsPolicy.strict(names)
    except PolicyError as error:
        raise click.BadParameter(str(error), param_hint="--allow-run-option") from error


def backend_options(func: F) -> F:
    """``--backend``, ``--runtime`` and ``--state-dir``."""
    return backend(runtime(state_dir(func)))


def split_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); raises a usage error otherwise (port 0: any free)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(
            f"{value!r} is not HOST:PORT (a port from 0 to 65535)", param_hint="--listen"
        )
    return host.strip("[]") or "127.0.0.1", int(port)


lease_duration = option(
    "--lease-duration",
    env="LEASE_DURATION",
    type=click.FloatRange(min=0, min_open=True),
    default=15.0,
    show_default=True,
    help="Seconds a standby waits on a lease nobody renews before it takes the fleet over.",
)
lease_renew_deadline = option(
    "--lease-renew-deadline",
    env="LEASE_RENEW_DEADLINE",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds the leader goes on writing without renewing its lease (< --lease-duration).",
)
lease_retry_period = option(
    "--lease-retry-period",
    env="LEASE_RETRY_PERIOD",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Seconds between lease renewals, and between a standby's looks at the lease.",
)


def lease_timings(func: F) -> F:
    """The three lease options, handed to the command as one ``lease_timings`` value
    (client-go's leader-election defaults: 15, 10 and 2 seconds)."""
    from controller.backends import LeaseTimings

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            kwargs["lease_timings"] = LeaseTimings(
                kwargs.pop("lease_duration"),
                kwargs.pop("lease_renew_deadline"),
                kwargs.pop("lease_retry_period"),
            )
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--lease-*") from None
        return func(*args, **kwargs)

    return lease_duration(lease_renew_deadline(lease_retry_period(wrapper)))  # type: ignore[return-value]


def _fleet_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from controller.backends import check_fleet_name

    try:
        return check_fleet_name(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def fleet(func: F) -> F:
    """``--fleet``, defaulting to the backends' default fleet."""
    from controller.backends import DEFAULT_FLEET

    return option(
        "--fleet",
        env="FLEET",
        default=DEFAULT_FLEET,
        show_default=True,
        callback=_fleet_name,
        help="The fleet this controller acts for: it touches only objects of this fleet, "
        "and leads it only while it holds the fleet's lease.",
    )(func)
