"""Docker's image reference grammar, so ``image`` is always an image and never an option.

The ``image`` value ends up as one argument of ``docker run`` (and of Batch's container
settings). Anything the engine would not read as a reference is a spec error here, at
``validate`` time, rather than a failed start later, and a value such as
``--volume=/:/host`` can never be taken for an option. The grammar is the one of
``github.com/distribution/reference`` (``reference.go``, ``regexp.go``), which the docker
CLI and the engine parse with::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] path-component ["/" path-component]*
    domain           := host [":" port-number]
    host             := domain-name | "[" IPv6address "]"
    domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    path-component   := /[a-z0-9]+/ [separator /[a-z0-9]+/]*
    separator        := /[_.]|__|[-]+/
    tag              := /[\\w][\\w.-]{0,127}/
    digest           := algorithm ":" hex (32 or more hex digits)

plus the limits its parser adds: the path (the name without its domain) is at most 255
characters, and a digest of a known algorithm has that algorithm's length in lowercase
hex (``go-digest``). Go's ``\\w`` is ASCII only, so the patterns below spell it out.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator

from controller.spec._text import NonBlank

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

#: The whole reference, anchored: name (domain and path), tag, digest.
REFERENCE: Final = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
#: How the name splits into domain and path (the path's length is limited, not the domain's).
_NAME: Final = re.compile(rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH})")
#: Longest path, as ``reference.RepositoryNameTotalLengthMax``.
PATH_LIMIT: Final = 255
#: Hex digits of the digest algorithms the engine knows (``go-digest``).
DIGEST_LENGTHS: Final = {"sha256": 64, "sha384": 96, "sha512": 128}
#: A 64-hex name would be read as an image id, so the docker CLI refuses it as a name.
_IDENTIFIER: Final = re.compile(r"[a-f0-9]{64}")

SHAPE = "[registry[:port]/]name[:tag][@digest], for example myacr.azurecr.io/cartpole:1.0"


def image_reference_problem(value: str) -> str | None:
    """Why ``value`` is not an image reference Docker accepts, or None when it is one."""
    if not value:
        return "must not be empty"
    match = REFERENCE.fullmatch(value)
    if match is None:
        if REFERENCE.fullmatch(value.lower()) is not None:
            return "the repository name must be lowercase"
        return f"{value!r} is not an image reference; expected {SHAPE}"
    name = _NAME.fullmatch(match["name"])
    assert name is not None  # REFERENCE's name group is _NAME's language
    if len(name["path"]) > PATH_LIMIT:
        return f"the repository name must not be more than {PATH_LIMIT} characters"
    if _IDENTIFIER.fullmatch(match["name"]):
        return "a 64-digit hexadecimal name would be read as an image id, not a name"
    digest = match["digest"]
    if digest is not None:
        algorithm, _, encoded = digest.partition(":")
        length = DIGEST_LENGTHS.get(algorithm)
        if length is None:
            known = ", ".join(DIGEST_LENGTHS)
            return f"unsupported digest algorithm {algorithm!r} (known: {known})"
        if len(encoded) != length or encoded != encoded.lower():
            return f"a {algorithm} digest is {length} lowercase hexadecimal digits"
    return None


def registry_of(image: str) -> str:
    """The registry an image is pulled from, as the docker CLI decides it
    (``splitDockerDomain``): the first component when it has a ``.`` or ``:`` or is
    ``localhost``, otherwise Docker Hub (``docker.io``)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


def check_reference(value: str) -> str:
    """pydantic validator: ``value`` itself, or ``ValueError`` with the reason."""
    problem = image_reference_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: A spec field holding an image reference (see the module docstring).
#: Blank, control characters (:mod:`._text`) first, then the grammar.
ImageReference = Annotated[NonBlank, AfterValidator(check_reference)]
