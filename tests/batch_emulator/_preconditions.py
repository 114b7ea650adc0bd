"""Conditional requests (`If-Match` & co.) as Batch documents them.

Optimistic concurrency on Batch objects rests on these headers (a lease kept in job
metadata is written with PATCH + `If-Match`), so the emulator follows the service's page
"Specifying conditional headers for Batch service operations" rather than plain HTTP:

* Only `If-None-Match` + `If-Modified-Since` or `If-Match` + `If-Unmodified-Since` may be
  combined, and then the ETag header alone decides; any other combination of conditional
  headers is 400 `MultipleConditionHeadersNotSupported`.
* An unmet condition on a read (GET, HEAD) is 304 for `If-None-Match` and
  `If-Modified-Since` and 412 for `If-Match` and `If-Unmodified-Since`; on a write (POST,
  PUT, PATCH, DELETE) it is always 412. The code is `ConditionNotMet` either way.
* ETags compare as HTTP/1.1 says: `If-Match` strongly (a weak `W/` tag never matches),
  `If-None-Match` weakly; `*` means "any version". azure-core sends the ETag quoted,
  Batch's own are bare: both are accepted, and so is a comma-separated list.
* Times compare at the one-second precision of HTTP dates; a value that is not an HTTP
  date is 400 `InvalidHeaderValue` (the spec declares them `date-time-rfc7231`).

Which headers an operation takes is the spec's word: a conditional header the operation
does not declare is 400 `UnsupportedHeader` rather than silently ignored, so a client
never believes a write was conditional when it was not.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._errors import BatchApiError
from ._spec import Operation
from ._wire import parse_rfc1123, rfc1123

IF_MATCH = "If-Match"
IF_NONE_MATCH = "If-None-Match"
IF_MODIFIED_SINCE = "If-Modified-Since"
IF_UNMODIFIED_SINCE = "If-Unmodified-Since"
CONDITIONAL_HEADERS = (IF_MATCH, IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE)

#: The combinations Batch accepts, and the header that then decides alone.
_DECIDING = {
    frozenset({IF_NONE_MATCH, IF_MODIFIED_SINCE}): IF_NONE_MATCH,
    frozenset({IF_MATCH, IF_UNMODIFIED_SINCE}): IF_MATCH,
}
#: Status of an unmet condition on a read; writes always answer 412.
_READ_STATUS = {IF_MATCH: 412, IF_NONE_MATCH: 304, IF_MODIFIED_SINCE: 304, IF_UNMODIFIED_SINCE: 412}
_READS = ("GET", "HEAD")


def declared_conditions(op: Operation) -> frozenset[str]:
    """The conditional headers the spec lets this operation take."""
    return frozenset(
        name for (place, name) in op.parameters if place == "header" and name in CONDITIONAL_HEADERS
    )


def reject_undeclared(op: Operation, headers: Mapping[str, str]) -> None:
    """400 `UnsupportedHeader` for a conditional header the operation does not take."""
    allowed = declared_conditions(op)
    for name in CONDITIONAL_HEADERS:
        if name in headers and name not in allowed:
            raise BatchApiError(
                400,
                "UnsupportedHeader",
                "One of the HTTP headers specified in the request is not supported.",
                {"HeaderName": name, "HeaderValue": headers[name]},
            )


def check(
    op: Operation, headers: Mapping[str, str], etag: str | None, last_modified: float
) -> None:
    """Raise Batch's answer when the request's condition does not hold for this version."""
    present = [name for name in CONDITIONAL_HEADERS if name in headers]
    if not present:
        return
    if len(present) == 1:
        deciding = present[0]
    else:
        pair = _DECIDING.get(frozenset(present))
        if pair is None:
            raise BatchApiError(
                400,
                "MultipleConditionHeadersNotSupported",
                "Multiple condition headers are not supported.",
                {"HeaderName": ", ".join(present)},
            )
        deciding = pair
    for name in present:  # a malformed date is an error even when the ETag decides
        if name in (IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE):
            _parse_date(name, headers[name])
    if _holds(deciding, headers[deciding], etag, last_modified):
        return
    read = op.method in _READS
    status = _READ_STATUS[deciding] if read else 412
    message = (
        "The condition specified in the conditional header(s) was not met for a "
        f"{'read' if read else 'write'} operation."
    )
    extra: dict[str, str] = {}
    if status == 304:  # HTTP/1.1: a 304 carries the validators a 200 would have
        extra["Last-Modified"] = rfc1123(last_modified)
        if etag is not None:
            extra["ETag"] = etag
    raise BatchApiError(status, "ConditionNotMet", message, headers=extra)


def _holds(name: str, value: str, etag: str | None, last_modified: float) -> bool:
    if name == IF_MATCH:
        tags = _tags(value)
        return tags is None or (etag is not None and (False, etag) in tags)
    if name == IF_NONE_MATCH:
        tags = _tags(value)
        return tags is not None and etag not in {tag for _, tag in tags}
    when = _parse_date(name, value)
    modified = int(last_modified)  # HTTP dates have whole seconds
    return modified > when if name == IF_MODIFIED_SINCE else modified <= when


def _tags(value: str) -> set[tuple[bool, str]] | None:
    """`(weak, opaque tag)` pairs of an ETag list, or None for `*`."""
    if value.strip() == "*":
        return None
    tags: set[tuple[bool, str]] = set()
    for raw in value.split(","):
        item = raw.strip()
        weak = item.startswith("W/")
        item = item.removeprefix("W/")
        if len(item) >= 2 and item[0] == item[-1] == '"':
            item = item[1:-1]
        if item:
            tags.add((weak, item))
    return tags


def _parse_date(name: str, value: str) -> float:
    parsed = parse_rfc1123(value)
    if parsed is None:
        raise BatchApiError(
            400,
            "InvalidHeaderValue",
            "The value provided for one of the HTTP headers was not in the correct format.",
            {"HeaderName": name, "HeaderValue": value},
        )
    return parsed
