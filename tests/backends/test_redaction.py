"""Secret masking: per line, longest first, never garbling text with very short values."""

from __future__ import annotations

import pytest

from controller.backends import MASK, Redactor, redact, too_short

PEM = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnz\n-----END KEY-----"


def test_a_multi_line_secret_is_masked_line_by_line_even_when_cut() -> None:
    tail = "\n".join(PEM.splitlines()[1:])  # the tail cut lost the first line
    out = redact(f"oops\n{tail}\n", [PEM])
    assert "MIIBOgIB" not in out
    assert "END KEY" not in out
    assert out.startswith("oops\n")


def test_a_secret_containing_another_is_masked_whole() -> None:
    assert redact("x=abcdefgh", ["abcd", "abcdefgh"]) == f"x={MASK}"


@pytest.mark.parametrize("value", ["a", "ab", "abc", "  x  "])
def test_very_short_values_are_not_masked_but_counted(value: str) -> None:
    assert redact("a banana cab", [value]) == "a banana cab"
    assert too_short([value, "longenough"]) == 1


def test_pieces_are_only_ever_added() -> None:
    redactor = Redactor(["old-secret"])
    redactor.update(["new-secret"])
    assert redactor.scrub("old-secret new-secret") == f"{MASK} {MASK}"
    assert not Redactor()
