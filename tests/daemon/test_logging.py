"""The daemon's log never fails the daemon, and quotes strangers' bytes only escaped."""

from __future__ import annotations

import io

import pytest
import structlog

from controller.daemon import _logging, configure


class HungUp(io.StringIO):
    """stderr after a terminal hang-up: every write raises EIO."""

    def write(self, text: str) -> int:
        raise OSError(5, "Input/output error")

    def flush(self) -> None:
        raise OSError(5, "Input/output error")


def test_a_log_line_that_cannot_be_written_is_lost_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_logging.sys, "stderr", HungUp())
    configure("json")
    structlog.get_logger("simfleet.daemon").warning("stopping", signal="SIGHUP")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invalid header token:\n\n  b'Bad\\x01'", "Invalid header token: b'Bad\\\\x01'"),
        ("caf\u00e9 \x00 \x1b[31m", "caf\\xe9 \\x00 \\x1b[31m"),
        ("x" * 300, "x" * 117 + "..."),
    ],
)
def test_an_excerpt_is_one_escaped_ascii_line(text: str, expected: str) -> None:
    assert _logging.excerpt(text) == expected
