"""Typed values: a duration never overflows, a count never leaves its range.

Each of these values once went through validation and blew up later: ``maxLifetime: .inf``
raised ``OverflowError`` inside loading (the daemon died, and stopped the fleet on its way
out); ``progressDeadline: 900000000d`` failed every pass with "date value out of range";
``restartBackoff: {initial: 0, max: 0}`` restarted a crashing simulator 1,218 times in
12 seconds.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.spec import Percent, parse_duration, parse_int_or_percent

ODD_DURATIONS = [
    pytest.param(float("inf"), id="float-inf"),
    pytest.param(float("-inf"), id="float-minus-inf"),
    pytest.param(float("nan"), id="float-nan"),
    pytest.param(1e15, id="1e15"),
    pytest.param(1e300, id="1e300"),
    pytest.param(10**400, id="int-beyond-float"),
    pytest.param(-(10**400), id="negative-int-beyond-float"),
    pytest.param("inf", id="text-inf"),
    pytest.param("nan", id="text-nan"),
    pytest.param("infinity", id="text-infinity"),
    pytest.param("999999999999d", id="huge-days"),
    pytest.param("9" * 400 + "d", id="days-beyond-float"),
    pytest.param("9" * 5000, id="digits-beyond-int-conversion"),
    pytest.param("1" + "0" * 400 + "ms", id="beyond-float-ms"),
    pytest.param("1e400s", id="exponent-text"),
    pytest.param(-5, id="negative"),
    pytest.param("-5s", id="negative-text"),
    pytest.param("1_000", id="underscores"),
    pytest.param("\u0665s", id="arabic-indic-digit"),
    pytest.param("\uff15s", id="fullwidth-digit"),
    pytest.param("", id="empty"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param([1], id="list"),
    pytest.param({"s": 1}, id="mapping"),
]


class TestParseDuration:
    @pytest.mark.parametrize("value", ODD_DURATIONS)
    def test_refuses_with_value_error_only(self, value: object) -> None:
        # OverflowError is not a ValueError: it would escape every handler of bad input.
        with pytest.raises(ValueError, match=r"\S"):
            parse_duration(value)

    @given(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(),
            st.text(max_size=40),
            st.from_regex(r"\A-?[0-9]{1,400}(\.[0-9]{1,20})?(ms|s|m|h|d)?\Z"),
        )
    )
    def test_never_raises_anything_but_value_error(self, value: object) -> None:
        try:
            result = parse_duration(value)
        except ValueError:
            return
        assert timedelta(0) <= result <= timedelta.max

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(90, timedelta(seconds=90), id="bare-int"),
            pytest.param(1.5, timedelta(seconds=1.5), id="bare-float"),
            pytest.param("90", timedelta(seconds=90), id="bare-text"),
            pytest.param("1h30m", timedelta(minutes=90), id="compound"),
            pytest.param("1500ms", timedelta(seconds=1.5), id="milliseconds"),
            pytest.param(" 5M ", timedelta(minutes=5), id="spaces-and-case"),
            pytest.param("150d", timedelta(days=150), id="days"),
            pytest.param(0, timedelta(0), id="zero"),
        ],
    )
    def test_reads_the_documented_spellings(self, value: object, expected: timedelta) -> None:
        assert parse_duration(value) == expected


class TestParseIntOrPercent:
    @pytest.mark.parametrize(
        ("value", "message"),
        [
            pytest.param(-1, "must be >= 0", id="negative"),
            pytest.param(100_001, "must be <= 100000", id="over-the-count-limit"),
            pytest.param("9" * 5000, "must be <= 100000", id="huge-text"),
            pytest.param("101%", "a percentage must be at most 100%", id="over-100"),
            pytest.param("9" * 5000 + "%", "a percentage must be at most 100%", id="huge-pct"),
            pytest.param("\u00b2", "is neither a whole number", id="superscript-digit"),
            pytest.param("\u0665%", "is neither a whole number", id="arabic-indic-percent"),
            pytest.param("-5%", "is neither a whole number", id="negative-percent"),
            pytest.param("2.5%", "is neither a whole number", id="fractional-percent"),
        ],
    )
    def test_refuses_with_a_message(self, value: object, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            parse_int_or_percent(value)

    def test_reads_counts_and_percentages(self) -> None:
        assert (parse_int_or_percent(3), parse_int_or_percent(" 25% ")) == (3, Percent(25))
