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
non-empty token, or exactly the configured one. Azure Resource Manager (the emulator's
ARM pool endpoints, :mod:`._arm`) takes bearer tokens only: a shared key cannot sign
ARM requests, so one is refused there with a 401 that says so.

Failures answer 401 with code `AuthenticationFailed`, so the SDK raises
`ClientAuthenticationError`. (Batch's 2017 error table lists 403 for
`AuthenticationFailed`; simfleet's brief and azure-core's mapping make 401 the useful
answer here.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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


def _denied(reason: str, scheme: str = "SharedKey") -> BatchApiError:
    return BatchApiError(
        401,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization "
        "header is formed correctly including the signature.",
        {"AuthenticationErrorDetail": reason},
        headers={"WWW-Authenticate": scheme},
    )


def _check_bearer(credentials: str, secure: bool, bearer_token: str | None, scheme: str) -> None:
    if not secure:
        raise _denied("Bearer tokens are only accepted over https.", scheme)
    token = credentials.strip()
    if not token or (bearer_token is not None and token != bearer_token):
        raise _denied("The access token is invalid.", scheme)


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
) -> None:
    """Return if the request is authenticated; raise a 401 BatchApiError otherwise."""
    authorization = headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme == "SharedKey":
        name, _, signature = credentials.partition(":")
        if name != account:
            raise _denied(f"Unknown account {name!r}.")
        expected = sign(key, string_to_sign(method, raw_path, raw_query, headers, account))
        if not hmac.compare_digest(expected, signature):
            raise _denied(
                "The MAC signature found in the HTTP request is not the same as any "
                "computed signature."
            )
        return
    if scheme == "Bearer":
        _check_bearer(credentials, secure, bearer_token, "SharedKey")
        return
    raise _denied(
        "The request has no Authorization header." if not authorization else "Unknown scheme."
    )
