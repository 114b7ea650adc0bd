"""``python -m controller`` is the ``simfleet`` command."""

from controller.cli import program

program()
