"""structlog configuration: console or JSON lines, secret values scrubbed, repeats throttled.

Secrets are kept out of log events at the source (actions render through
each action's ``describe()``, values travel as ``SecretStr``). As a second line of defence the
:class:`Redactor` processor replaces any known secret value that still reaches an event,
so a simulator's stderr tail that echoes its key cannot leak it into the controller's log.

Every event goes through :class:`~controller.daemon._throttling.LogThrottle` first, so a
crash loop or an action failing on every pass cannot flood the log. Errors the event loop
reports by itself (``accept()`` failing at the file-descriptor limit, a task that died)
become one structured line each, at most one per kind every few seconds, never a
traceback. Writing the log never fails the daemon: after a terminal hang-up stderr raises
on every write, and a stop must still stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog

from controller.backends import Redactor
from controller.daemon._throttling import LogThrottle, RateLimit

log = structlog.get_logger("simfleet.daemon")


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


class _Unfailing:
    """A text stream whose writes never raise: a log line that cannot be written is lost,
    the daemon goes on (stderr on a hung-up terminal raises ``EIO`` on every write)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return 0

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()


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
            LogThrottle(),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # before the redactor: tracebacks too
            REDACTOR,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _Unfailing(sys.stderr))),
        cache_logger_on_first_use=False,
    )


def excerpt(text: str, limit: int = 120) -> str:
    """``text`` on one line, control and non-ASCII characters escaped, cut at ``limit``:
    what a log may quote of bytes a stranger sent. (``ascii`` rather than a codec: a codec
    is imported on first use, which fails at the file-descriptor limit, exactly when the
    loop's errors need saying.)"""
    escaped = ascii(" ".join(text.split()))[1:-1]
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


class LoopErrors:
    """The event loop's exception handler: one line per kind of error, at most one per
    ``window`` seconds, with how many were folded into it.

    The loop reports what no task awaits — chiefly ``accept()`` failing with ``EMFILE``,
    which asyncio retries every second for as long as descriptors are short.
    """

    def __init__(self, window: float = 10.0) -> None:
        self.limit = RateLimit(1, window)

    def __call__(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "event loop error")
        exc = context.get("exception")
        suppressed = self.limit.allow((message, type(exc)))
        if suppressed is None:
            return
        error = f"{type(exc).__name__}: {exc}" if exc is not None else ""
        log.warning(
            "event_loop_error", message=excerpt(message), error=excerpt(error), repeats=suppressed
        )
