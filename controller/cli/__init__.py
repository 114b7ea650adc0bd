"""The ``simfleet`` command line (commands are imported only when they run)."""

from controller.cli._main import main, program

__all__ = ["main", "program"]
