"""Simulator images: write a Dockerfile for a folder, build it, push it to a registry.

Used by ``simfleet image``. The Docker SDK is imported here and in the local backend's
docker runtime only (an import-linter contract).
"""

from controller.images._dockerfile import DEFAULT_BASE, InitError, Written, detect_command, init
from controller.images._engine import ImageError, build, push

__all__ = [
    "DEFAULT_BASE",
    "ImageError",
    "InitError",
    "Written",
    "build",
    "detect_command",
    "init",
    "push",
]
