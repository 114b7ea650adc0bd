"""``simfleet image init|build|push``: a simulator folder → Dockerfile → image → registry."""

from __future__ import annotations

import os
from pathlib import Path

import click

from controller.cli import _options
from controller.images import DEFAULT_BASE, ImageError, InitError, build, init, push


@click.group()
def image() -> None:
    """Make and publish simulator images (Docker Engine API)."""


@image.command("init")
@click.argument("folder", type=click.Path(path_type=Path), default=Path("."))
@_options.option("--base", env="BASE", default=DEFAULT_BASE, show_default=True, help="Base image.")
@_options.option(
    "--command",
    env="COMMAND",
    default=None,
    help="How to start the simulator, e.g. 'python3 sim.py --fast' (default: detected).",
)
@_options.option("--force", env="FORCE", is_flag=True, help="Overwrite an existing Dockerfile.")
def init_command(folder: Path, base: str, command: str | None, force: bool) -> None:
    """Write a Dockerfile (and .dockerignore) for the simulator in FOLDER."""
    try:
        written = init(folder, base=base, command=command, force=force)
    except InitError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"wrote {written.dockerfile} (runs: {' '.join(written.command)})")


@image.command("build")
@click.argument("folder", type=click.Path(path_type=Path), default=Path("."))
@_options.option("--tag", "-t", env="TAG", required=True, help="Image name, e.g. acr.io/sim:1.1")
def build_command(folder: Path, tag: str) -> None:
    """Build the image of FOLDER with the local Docker Engine."""
    try:
        image_id = build(folder, tag, click.echo)
    except ImageError as error:
        raise click.ClickException(f"build failed: {error}") from error
    click.echo(f"built {tag} ({image_id})")


@image.command("push")
@click.argument("tag")
@_options.option("--username", env="USERNAME", default=None, help="Registry user.")
@_options.option(
    "--password-from-env",
    env="PASSWORD_FROM_ENV",
    default=None,
    help="Name of the environment variable that holds the registry password.",
)
def push_command(tag: str, username: str | None, password_from_env: str | None) -> None:
    """Push TAG to its registry."""
    password = None
    if password_from_env is not None:
        if password_from_env not in os.environ:
            raise click.ClickException(f"environment variable {password_from_env} is not set")
        password = os.environ[password_from_env]
    try:
        push(tag, click.echo, username=username, password=password)
    except ImageError as error:
        raise click.ClickException(f"push failed: {error}") from error
    click.echo(f"pushed {tag}")
