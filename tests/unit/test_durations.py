"""api.durations: Go durations and kubectl's AGE column."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.durations import DurationError, format_age, parse_duration

FAST = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5),
        ("2m", 120),
        ("1h30m", 5400),
        ("300ms", 0.3),
        ("1.5h", 5400),
        ("0", 0),
        ("-2m", -120),
        ("+1s", 1),
        (".5s", 0.5),
        ("1.s", 1),
        ("10us", 1e-5),
        ("10µs", 1e-5),
        ("10μs", 1e-5),
        ("7ns", 7e-9),
        ("1h1m1s1ms", 3661.001),
        ("2h45m", 9900),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "5", "s", ".s", "1x", "1h 2m", " 1s", "1s ", "-", "1d", "h1", "1e3s", "1h2", "99999999999h"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_unknown_unit_is_named() -> None:
    with pytest.raises(DurationError, match=r'unknown unit "d"'):
        parse_duration("3d")


@pytest.mark.parametrize(
    ("seconds", "age"),
    [
        (-10, "<invalid>"),
        (-1.5, "0s"),
        (-0.5, "0s"),
        (0, "0s"),
        (1.9, "1s"),
        (95, "95s"),
        (119, "119s"),
        (120, "2m"),
        (192, "3m12s"),
        (599, "9m59s"),
        (600, "10m"),
        (45 * 60, "45m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 12 * 60, "3h12m"),
        (8 * 3600, "8h"),
        (26 * 3600, "26h"),
        (47 * 3600 + 3599, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (8 * 86400, "8d"),
        (45 * 86400, "45d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (760 * 86400, "2y30d"),
        (8 * 365 * 86400, "8y"),
        (10 * 365 * 86400 + 5 * 86400, "10y"),
    ],
)
def test_format_age(seconds: float, age: str) -> None:
    assert format_age(seconds) == age


@FAST
@given(
    st.integers(min_value=0, max_value=3600),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=999),
)
def test_parse_composes(hours: int, minutes: int, millis: int) -> None:
    text = f"{hours}h{minutes}m{millis}ms"
    assert parse_duration(text) == pytest.approx(hours * 3600 + minutes * 60 + millis / 1000)


@FAST
@given(st.floats(min_value=0, max_value=20 * 365 * 86400), st.floats(min_value=0, max_value=20 * 365 * 86400))
def test_age_is_monotonic_in_coarse_units(a: float, b: float) -> None:
    """An older object never shows a smaller number of the same leading unit."""
    lo, hi = sorted((a, b))

    def leading(age: str) -> tuple[str, int]:
        digits = ""
        for ch in age:
            if not ch.isdigit():
                return ch, int(digits)
            digits += ch
        raise AssertionError(age)

    order = "smhdy"
    unit_lo, n_lo = leading(format_age(lo))
    unit_hi, n_hi = leading(format_age(hi))
    assert (order.index(unit_lo), n_lo if unit_lo == unit_hi else 0) <= (
        order.index(unit_hi),
        n_hi if unit_lo == unit_hi else 0,
    )
