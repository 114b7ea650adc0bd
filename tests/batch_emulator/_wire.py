"""Value formats as they appear on the Batch wire: timestamps, durations, ETags.

The SDK is picky in small ways (RFC 1123 in headers, ISO 8601 with `Z` in bodies, ISO
8601 durations such as `PT01M30S` that it zero-pads itself), and the conformance checks
validate the same formats, so all conversions live here in one place.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

# What Batch reports for "no limit": .NET TimeSpan.MaxValue.
UNLIMITED_DURATION = "P10675199DT2H48M5.4775807S"
UNLIMITED_SECONDS = 10675199 * 86400 + 2 * 3600 + 48 * 60 + 5.4775807

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
DURATION_PATTERN = _DURATION.pattern

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")

_etags = itertools.count(0x8DC_0000_0000_00)


def iso(ts: float) -> str:
    """`2025-06-01T12:00:00.123Z`: what Batch puts in JSON bodies."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def is_iso(value: str) -> bool:
    if not _ISO.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def rfc1123(ts: float) -> str:
    """`Sun, 01 Jun 2025 12:00:00 GMT`: what Batch puts in headers."""
    return format_datetime(datetime.fromtimestamp(int(ts), tz=UTC), usegmt=True)


def parse_rfc1123(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def parse_duration(value: str) -> float:
    """Seconds in an ISO 8601 day/time duration; ValueError if it is not one."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return (
        parts.get("d", 0.0) * 86400
        + parts.get("h", 0.0) * 3600
        + parts.get("m", 0.0) * 60
        + parts.get("s", 0.0)
    )


def format_duration(seconds: float) -> str:
    if seconds >= UNLIMITED_SECONDS:
        return UNLIMITED_DURATION
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{int(days)}D" if days else "")
    time_part = ""
    if hours:
        time_part += f"{int(hours)}H"
    if minutes:
        time_part += f"{int(minutes)}M"
    if secs or not (days or hours or minutes):
        time_part += f"{secs:g}S"
    return out + ("T" + time_part if time_part else "")


def new_etag() -> str:
    """Opaque, strictly increasing, shaped like Batch's own (`0x8DC...`)."""
    return f"0x{next(_etags):X}"
