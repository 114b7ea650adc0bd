"""structlog configuration: console or JSON lines, with secret values scrubbed.

Secrets are kept out of log events at the source (actions render through
``reconcile.describe``, values travel as ``SecretStr``). As a second line of defence the
:class:`Redactor` processor replaces any known secret value that still reaches an event,
so a simulator's stderr tail that echoes its key cannot leak it into the controller's log.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from controller.backends import Redactor


class LogRedactor(Redactor):
    """The :class:`~controller.backends.Redactor` as a structlog processor: every string
    value of an event is scrubbed."""

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self:
            for key, value in list(event.items()):
                if isinstance(value, str):
                    event[key] = self.scrub(value)
        return event


REDACTOR = LogRedactor()


def configure(log_format: str = "console", level: int = logging.INFO) -> None:
    """Configure structlog for the process: ``console`` (colour when a tty) or ``json``."""
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # before the redactor: tracebacks too
            REDACTOR,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
