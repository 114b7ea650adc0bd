"""Authentication: Batch shared-key signatures and bearer tokens.

Shared key: the signature is recomputed exactly as azure-batch's
`BatchSharedKeyAuthPolicy` builds it (azure/batch/_patch.py):

    METHOD \n
    content-encoding \n content-language \n content-length \n content-md5 \n
    content-type \n date \n if-modified-since \n if-match \n if-none-match \n
    if-unmodified-since \n range \n
    name:value \n            for every header whose name contains "ocp-", sorted
    /account/raw/url/path
    \nname:value             for every query parameter, sorted by name, first value,
                             percent-decoded, empty values skipped

then HMAC-SHA256 with the base64-decoded key, base64-encoded. `content-length` counts as
"0" when absent on anything but GET/HEAD. The path is the percent-encoded path as sent.

Bearer tokens are accepted only over https (as azure-core only sends them there); any
non-empty token, or exactly the configured one. On the Batch API a token that is a JWT
whose `exp` has passed (emulator time) is refused as expired, as Entra ID tokens are after
about an hour. Azure Resource Manager (the emulator's ARM pool endpoints, :mod:`._arm`)
takes bearer tokens only: a shared key cannot sign ARM requests, so one is refused there
with a 401 that says so.

Failures answer as Batch does, code `AuthenticationFailed` with an
`AuthenticationErrorDetail` value:

* a shared key that does not match (a wrong key, a wrong account name): **403**, message
  "…formed correctly including the signature.", detail "The MAC signature found in the
  HTTP request '…' is not the same as any computed signature. Server used following
  string to sign: '…'." The SDK raises a plain `HttpResponseError` (it maps only 401).
* a bearer token that is refused (invalid, expired, or sent over http): **401**, message
  "…formed correctly." with the reason as detail (`ClientAuthenticationError`).
* no `Authorization` header, or an unknown scheme: 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from ._errors import BatchApiError

SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)


def string_to_sign(
    method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], account: str
) -> str:
    values = {name.lower(): value for name, value in headers.items() if value}
    if method not in ("GET", "HEAD"):
        values.setdefault("content-length", "0")
    out = method + "\n" + "\n".join(values.get(h, "") for h in SIGNED_HEADERS) + "\n"
    ocp = sorted(
        (name.lower(), value) for name, value in headers.items() if "ocp-" in name.lower() and value
    )
    out += "".join(f"{name}:{value}\n" for name, value in ocp)
    out += f"/{account}{raw_path}"
    query = parse_qs(raw_query)
    for name in sorted(query):
        if query[name][0]:
            out += f"\n{name}:{query[name][0]}"
    return out


def sign(key: str, text: str) -> str:
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


_REFUSED = "Server failed to authenticate the request. Make sure the value of Authorization "


def _denied(reason: str, scheme: str = "SharedKey") -> BatchApiError:
    """401: no credentials Batch can check, or a bearer token it refuses."""
    return BatchApiError(
        401,
        "AuthenticationFailed",
        _REFUSED + "header is formed correctly.",
        {"AuthenticationErrorDetail": reason},
        headers={"WWW-Authenticate": scheme},
    )


def _bad_signature(reason: str) -> BatchApiError:
    """403: a shared-key signature that does not verify (Batch's answer to a wrong key)."""
    return BatchApiError(
        403,
        "AuthenticationFailed",
        _REFUSED + "header is formed correctly including the signature.",
        {"AuthenticationErrorDetail": reason},
    )


def _expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (seconds since the epoch); None for any other token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        return float(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None


def _check_bearer(
    credentials: str,
    secure: bool,
    bearer_token: str | None,
    scheme: str,
    now: float | None = None,
) -> None:
    """A bearer token the service accepts; ``now`` given: a JWT must not have expired."""
    if not secure:
        raise _denied("Bearer tokens are only accepted over https.", scheme)
    token = credentials.strip()
    if not token or (bearer_token is not None and token != bearer_token):
        raise _denied("The access token is invalid.", scheme)
    expiry = None if now is None else _expiry(token)
    if now is not None and expiry is not None and expiry <= now:
        raise _denied(
            f"The access token expiry UTC time '{_utc(expiry)}' is earlier than current "
            f"UTC time '{_utc(now)}'.",
            scheme,
        )


def authenticate_arm(*, headers: Mapping[str, str], secure: bool, bearer_token: str | None) -> None:
    """Azure Resource Manager: a bearer token over https, nothing else."""
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer":
        raise _denied(
            "Azure Resource Manager accepts only bearer tokens (Microsoft Entra ID); "
            + ("a shared key cannot sign its requests." if scheme else "none was sent."),
            "Bearer",
        )
    _check_bearer(credentials, secure, bearer_token, "Bearer")


def authenticate(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    account: str,
    key: str,
    secure: bool,
    bearer_token: str | None,
    now: float,
) -> None:
    """Return if the request is authenticated; raise Batch's 401 or 403 otherwise."""
    authorization = headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme == "SharedKey":
        name, _, signature = credentials.partition(":")
        text = string_to_sign(method, raw_path, raw_query, headers, account)
        if name != account or not hmac.compare_digest(sign(key, text), signature):
            raise _bad_signature(
                f"The MAC signature found in the HTTP request '{signature}' is not the same "
                f"as any computed signature. Server used following string to sign: '{text}'."
            )
        return
    if scheme == "Bearer":
        _check_bearer(credentials, secure, bearer_token, "Bearer", now)
        return
    raise _denied(
        "The request has no Authorization header." if not authorization else "Unknown scheme."
    )


def _utc(seconds: float) -> str:
    """A time as Batch writes it in this message: `5/30/2019 3:03:09 AM`."""
    t = time.gmtime(seconds)
    hour = t.tm_hour % 12 or 12
    half = "AM" if t.tm_hour < 12 else "PM"
    return f"{t.tm_mon}/{t.tm_mday}/{t.tm_year} {hour}:{t.tm_min:02d}:{t.tm_sec:02d} {half}"
