"""Text a process and a Batch request can carry: the one string type of every spec field.

A string from a spec file ends up in ``argv``, in an environment block, in a Docker
command line or in a Batch REST request. None of them can carry a NUL byte (``execve``
refuses it; C strings end there), a lone surrogate (``"\\ud800"`` in YAML decodes to one,
and no UTF-8 encoder accepts it), or, in most places, other control characters. Found at
validation, such a value is a ``file:line:col`` error at the field; found at start-up, it
would be an exception deep inside a backend, with a simulation stuck in between.

So every string field of :mod:`controller.spec._models` is one of these types, never a
bare ``str`` (a test walks the models to keep it so):

- :data:`Text` where several lines make sense: environment values, commands, annotation
  values. Tab and newline are allowed; other control characters are not.
- :data:`Line` everywhere else: names, images, pools, VM sizes, registries, labels, run
  options. No control character at all, tab and newline included.
- :data:`NonBlank`, a :data:`Line` that must say something: ``image: " "`` is an error,
  not an image called space.

The checks run *before* any other constraint of the field (a name's pattern, say), so the
user reads "must not contain a NUL byte" rather than "is not a valid name". Mapping keys
get the same one-line check while YAML is read (:mod:`controller.spec._yaml`), so even an
unknown field's name is reported at its key rather than failing somewhere inside pydantic
(whose Rust core cannot hold a lone surrogate).
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator, StringConstraints

#: What no field may hold: NUL and the other C0 controls except tab and newline, DEL, the
#: C1 controls, and lone surrogates.
_NEVER: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
#: What a one-line field may not hold besides: tab and newline.
_NOT_IN_A_LINE: Final = re.compile("[\t\n]")


def _describe(char: str) -> str:
    code = ord(char)
    if code == 0:
        return "must not contain a NUL byte (\\x00): no process or Batch request can carry it"
    if 0xD800 <= code <= 0xDFFF:
        return (
            f"must not contain a lone surrogate (\\u{code:04x}): it is not a character and"
            " cannot be written as UTF-8"
        )
    return f"must not contain the control character \\x{code:02x}"


def problem(value: str, *, one_line: bool) -> str | None:
    """What makes ``value`` unfit for a field (``must not contain …``), or ``None``.

    Args:
        value: the text.
        one_line: refuse tabs and newlines too, as :data:`Line` does.
    """
    found = _NEVER.search(value)
    if found is not None:
        return _describe(found.group())
    found = _NOT_IN_A_LINE.search(value) if one_line else None
    if found is not None:
        shown = "a newline" if found.group() == "\n" else "a tab"
        return f"must be one line: it contains {shown}"
    return None


def _check_text(value: object) -> object:
    """Refuse characters no field may hold; non-strings pass on to the type check."""
    message = problem(value, one_line=False) if isinstance(value, str) else None
    if message is not None:
        raise ValueError(message)
    return value


def _check_line(value: object) -> object:
    """Refuse what :func:`_check_text` refuses, and tabs and newlines."""
    message = problem(value, one_line=True) if isinstance(value, str) else None
    if message is not None:
        raise ValueError(message)
    return value


def _check_not_blank(value: str) -> str:
    if value.isspace():
        raise ValueError("must not be blank")
    return value


TEXT: Final = BeforeValidator(_check_text)
"""The check of :data:`Text`, to combine with other constraints in one ``Annotated``."""

LINE: Final = BeforeValidator(_check_line)
"""The check of :data:`Line`, to combine with other constraints in one ``Annotated``.

Put it *after* a ``StringConstraints`` (``Annotated[str, StringConstraints(...), LINE]``):
it still runs first, and the constraint stays in the JSON Schema.
"""

Text = Annotated[str, TEXT]
"""A string that may span lines (tabs and newlines allowed), with no other control."""

Line = Annotated[str, LINE]
"""A one-line string with no control character at all."""

NonBlank = Annotated[str, StringConstraints(min_length=1), LINE, AfterValidator(_check_not_blank)]
"""A :data:`Line` that is neither empty nor only spaces."""
