"""What handlers see and return: the request context, replies, paging and preconditions.

Handlers are plain synchronous functions `(Ctx) -> Reply`: the emulated state is changed
on the event loop between awaits, so no locking is needed and every request sees a
consistent account. `Ctx` carries the matched spec operation, decoded path parameters,
validated query parameters and the parsed body; `Reply` carries the status, the JSON body
(or raw bytes for files) and the resource identity from which the standard headers
(`ETag`, `Last-Modified`, `DataServiceId`) are made. Conditional headers are checked
by `_preconditions` against the version a handler names.

List operations page like Batch: at most `maxresults` (default and maximum 1000) items,
then `odata.nextLink` pointing at the same query with an opaque `$skiptoken`, so the
SDK's pager (which follows the link verbatim) sees exactly what it sees from the service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from . import _preconditions as preconditions
from ._account import Account
from ._config import API_VERSION
from ._errors import BatchApiError, bad_query
from ._odata import FilterError, apply_select, parse_filter, parse_select
from ._spec import Operation, Spec

MAX_RESULTS = 1000
#: The only operators Batch's filter tables allow on state properties (enums).
ENUM_OPERATORS = frozenset({"eq", "ne"})


@dataclass
class Reply:
    status: int
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: float | None = None
    data_service_id: str | None = None
    error: BatchApiError | None = None  # rendered as the body, with the request id


@dataclass
class Ctx:
    account: Account
    op: Operation
    spec: Spec
    path: dict[str, str]
    query: dict[str, str]
    headers: Mapping[str, str]
    body: Any
    base_url: str
    request_id: str
    now: float

    def flag(self, name: str) -> bool:
        return self.query.get(name, "false").lower() == "true"

    def check_preconditions(self, etag: str | None, last_modified: float) -> None:
        """If-Match & co. against this version of the resource (`_preconditions`)."""
        preconditions.check(self.op, self.headers, etag, last_modified)


Handler = Callable[[Ctx], Reply]


def parse_query(
    op: Operation, raw: Mapping[str, list[str]], api_version: str = API_VERSION
) -> dict[str, str]:
    """Check query parameters against the operation's declared ones (and the one
    api-version this plane implements: the data plane's, or ARM's)."""
    query = {name: values[0] for name, values in raw.items()}
    declared = {name: p for (loc, name), p in op.parameters.items() if loc == "query"}
    if "api-version" not in query:
        raise BatchApiError(
            400,
            "MissingRequiredQueryParameter",
            "A query parameter that's mandatory for this request is not specified.",
            {"QueryParameterName": "api-version"},
        )
    if query["api-version"] != api_version:
        raise BatchApiError(
            400,
            "UnsupportedRequestVersion",
            f"The emulator implements api-version {api_version} only.",
            {"QueryParameterName": "api-version", "QueryParameterValue": query["api-version"]},
        )
    for name, value in query.items():
        param = declared.get(name)
        if param is None:
            if name == "$skiptoken" and op.pageable:
                continue
            raise BatchApiError(
                400,
                "UnsupportedQueryParameter",
                "One of the query parameters specified in the request URI is not supported.",
                {"QueryParameterName": name},
            )
        _check_value(name, value, param)
    return query


def _check_value(name: str, value: str, param: dict[str, Any]) -> None:
    kind = param.get("type")
    if kind == "integer":
        try:
            number = int(value)
        except ValueError:
            raise bad_query(name, value, "not an integer") from None
        low, high = param.get("minimum"), param.get("maximum")
        if (low is not None and number < low) or (high is not None and number > high):
            raise BatchApiError(
                400,
                "OutOfRangeQueryParameterValue",
                "A query parameter specified in the request URI is outside the permissible range.",
                {"QueryParameterName": name, "QueryParameterValue": value},
            )
    elif kind == "boolean" and value.lower() not in ("true", "false"):
        raise bad_query(name, value, "not a boolean")


def _selection(ctx: Ctx, definition: dict[str, Any]) -> list[str] | None:
    raw = ctx.query.get("$select")
    if not raw:
        return None
    try:
        names = parse_select(raw)
    except FilterError as error:
        raise bad_query("$select", raw, str(error)) from None
    unknown = [n for n in names if n not in definition.get("properties", {})]
    if unknown:
        raise bad_query("$select", raw, f"unknown property {unknown[0]}")
    return names


def single_reply(
    ctx: Ctx, body: dict[str, Any], *, etag: str | None = None, last_modified: float | None = None
) -> Reply:
    """One object, projected by `$select` when given."""
    definition = ctx.spec.definition_of(ctx.op.response(200).get("schema", {}))
    names = _selection(ctx, definition)
    if names is not None:
        body = apply_select(body, names)
    return Reply(200, body, etag=etag, last_modified=last_modified)


def list_reply(
    ctx: Ctx, items: list[tuple[int, dict[str, Any]]], *, page_size: int = MAX_RESULTS
) -> Reply:
    """Filter, page and project `(order key, wire item)` pairs into a list answer; a page
    holds at most `maxresults` items, and at most `page_size` where the service pages
    smaller than the spec's maximum."""
    definition = ctx.spec.list_item_definition(ctx.op) or {}
    raw_filter = ctx.query.get("$filter")
    if raw_filter:
        try:
            predicate = parse_filter(raw_filter)
        except FilterError as error:
            raise bad_query("$filter", raw_filter, str(error)) from None
        unknown = sorted(p for p in predicate.paths if not ctx.spec.has_path(definition, p))
        if unknown:
            raise bad_query("$filter", raw_filter, f"unknown property {unknown[0]}")
        ordered = sorted(
            (path, op)
            for path, op in predicate.uses
            if op not in ENUM_OPERATORS and "enum" in (ctx.spec.schema_at(definition, path) or {})
        )
        if ordered:
            path, op = ordered[0]
            raise bad_query("$filter", raw_filter, f"{path} allows only eq and ne, not {op}")
        items = [(k, item) for k, item in items if predicate(item)]
    names = _selection(ctx, definition)
    items.sort(key=lambda kv: kv[0])
    token = ctx.query.get("$skiptoken")
    if token:
        try:
            after = int(token.removeprefix("seq-"))
        except ValueError:
            raise bad_query("$skiptoken", token, "not a token this service issued") from None
        items = [(k, item) for k, item in items if k > after]
    limit = min(int(ctx.query.get("maxresults", MAX_RESULTS)), page_size)
    page, rest = items[:limit], items[limit:]
    body: dict[str, Any] = {
        "value": [item if names is None else apply_select(item, names) for _, item in page]
    }
    if rest:
        body["odata.nextLink"] = _next_link(ctx, page[-1][0])
    return Reply(200, body)


def _next_link(ctx: Ctx, last_key: int) -> str:
    path = "/" + "/".join(
        quote(ctx.path[s[1:-1]], safe="") if s.startswith("{") else s for s in ctx.op.segments
    )
    params = {k: v for k, v in ctx.query.items() if k not in ("$skiptoken", "timeOut")}
    params["$skiptoken"] = f"seq-{last_key}"
    return f"{ctx.base_url}{path}?{urlencode(params, quote_via=quote, safe=',$')}"
