"""The pieces of the backend protocol every adapter shares."""

from __future__ import annotations

import pytest

from controller.backends import byte_range


@pytest.mark.parametrize(
    ("offset", "length", "size", "expected"),
    [
        pytest.param(0, None, 10, (0, 10), id="all"),
        pytest.param(-4, None, 10, (6, 10), id="tail"),
        pytest.param(-100, None, 10, (0, 10), id="tail longer than the file"),
        pytest.param(3, 4, 10, (3, 7), id="window"),
        pytest.param(8, 10, 10, (8, 10), id="window past the end"),
        pytest.param(20, None, 10, (10, 10), id="offset past the end"),
        pytest.param(0, -1, 10, (0, 0), id="negative length reads nothing"),
    ],
)
def test_byte_range_of_read_output(
    offset: int, length: int | None, size: int, expected: tuple[int, int]
) -> None:
    assert byte_range(offset, length, size) == expected
