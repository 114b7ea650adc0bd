"""A task record → the :class:`Launch` a runtime starts, above all its environment.

A simulator must not see the controller's environment: it holds other secrets (account
keys, registry passwords). A child gets only a few harmless variables passed through
(:data:`PASSED_THROUGH`), the ``SIMFLEET_*`` identity of its slot, the template's
``env`` and its own ``secretEnv``, in that order of precedence (later wins).

Secret values come from memory when the task starts in the controller that added it
(the planner handed them over), otherwise from the controller's environment at that
moment (a task still pending when the previous controller died). A missing variable
fails the task with a message naming the variable, never a value.

This module reads no files and starts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from controller.backends._environment import SIMFLEET_VARIABLES, simulator_variables
from controller.backends.local._records import TaskRecord
from controller.backends.local._runtime import Launch, LaunchError, OutputLimits

#: Controller variables a simulator inherits when they are set.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
DEFAULT_OUTPUT = OutputLimits()


def child_environment(
    task: TaskRecord,
    secret_values: Mapping[str, str] | None,
    environ: Mapping[str, str],
    simulation: str = "",
) -> dict[str, str]:
    """The complete environment of one simulator.

    Args:
        task: the task to start.
        simulation: its simulation, when that is not its job's id (a job on a
            replacement pool).
        secret_values: ``secretEnv`` name → value as the planner resolved them, or None
            when they are no longer in memory and must come from ``environ``.
        environ: the controller's environment.

    Returns:
        The variables, secrets included; the caller must never store them.

    Raises:
        LaunchError: a secret's source variable is not set.
    """
    env = {name: environ[name] for name in PASSED_THROUGH if name in environ}
    env.update(simulator_variables(simulation or task.job, task.slot, task.id))
    env.update(task.template.env)
    for secret in task.template.secrets:
        if secret_values is not None and secret.name in secret_values:
            env[secret.name] = secret_values[secret.name]
        elif secret.from_env in environ:
            env[secret.name] = environ[secret.from_env]
        else:
            raise LaunchError(
                f"secretEnv {secret.name}: the controller's environment variable "
                f"{secret.from_env} is not set"
            )
    return env


def launch_of(
    task: TaskRecord,
    task_dir: Path,
    secret_values: Mapping[str, str] | None,
    environ: Mapping[str, str],
    *,
    pool: str = "",
    output: OutputLimits = DEFAULT_OUTPUT,
    simulation: str = "",
) -> Launch:
    """Everything a runtime needs to start ``task``.

    Args:
        task: the task to start.
        task_dir: its folder; also the working directory when the task has no workdir.
        secret_values: see :func:`child_environment`.
        environ: the controller's environment.
        pool: the pool it starts on.
        output: how much of its output is kept.
        simulation: see :func:`child_environment`.

    Returns:
        The launch description.

    Raises:
        LaunchError: see :func:`child_environment`.
    """
    cwd = Path(task.workdir).absolute() if task.workdir else task_dir
    return Launch(
        task_dir=task_dir,
        image=task.template.image,
        command=task.template.command,
        env=child_environment(task, secret_values, environ, simulation),
        cwd=cwd,
        run_options=task.template.run_options,
        container_env=tuple(
            dict.fromkeys(
                [
                    *SIMFLEET_VARIABLES,
                    *(k for k, _ in task.template.env),
                    *(s.name for s in task.template.secrets),
                ]
            )
        ),
        secret_names=frozenset(s.name for s in task.template.secrets),
        pool=pool,
        output=output,
    )
