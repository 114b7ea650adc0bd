"""``simfleet image build`` and ``push``: the Docker Engine API through the docker SDK.

Progress is handed to a callback line by line, so the CLI can print it; an error the
engine reports in its stream (a failed ``RUN``, a refused push) becomes an
:class:`ImageError` with the engine's own message. Registry passwords come from the
environment and are only ever handed to the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException

Progress = Callable[[str], None]


class ImageError(Exception):
    """The engine refused or failed a build or a push."""


def _client() -> Any:
    try:
        return docker.from_env(timeout=600)
    except DockerException as error:
        raise ImageError(f"no Docker Engine answers: {error}") from error


def _follow(stream: Iterable[Mapping[str, Any]], progress: Progress) -> None:
    for chunk in stream:
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise ImageError(str(detail).strip())
        text = chunk.get("stream") or chunk.get("status")
        if text:
            line = str(text).rstrip()
            if chunk.get("progress") is None and line:
                progress(line)


def build(folder: Path, tag: str, progress: Progress) -> str:
    """Build ``folder`` (with its Dockerfile) as ``tag``; returns the image id."""
    if not (folder / "Dockerfile").is_file():
        raise ImageError(f"{folder} has no Dockerfile; run `simfleet image init {folder}`")
    client = _client()
    try:
        build_log = client.api.build(path=str(folder), tag=tag, rm=True, forcerm=True, decode=True)
        _follow(build_log, progress)
        image_id: str = client.images.get(tag).id
        return image_id
    except DockerException as error:  # APIError is one too
        raise ImageError(str(error)) from error
    finally:
        client.close()


def push(
    tag: str, progress: Progress, *, username: str | None = None, password: str | None = None
) -> None:
    """Push ``tag`` (``registry/repository:version``) to its registry."""
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    auth = {"username": username, "password": password} if username and password else None
    client = _client()
    try:
        stream = client.api.push(
            repository, tag=version, stream=True, decode=True, auth_config=auth
        )
        _follow(stream, progress)
    except DockerException as error:  # APIError is one too
        raise ImageError(str(error)) from error
    finally:
        client.close()
