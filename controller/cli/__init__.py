"""The ``simfleet`` command line."""

from controller.cli._main import main

__all__ = ["main"]
