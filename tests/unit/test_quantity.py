"""api.quantity: Kubernetes quantity parsing, rounding and canonical form."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from api.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    QuantityError,
    canonical_quantity,
    cpu_millis,
    format_quantity,
    parse_quantity,
    quantity_format,
    quantity_is_binary,
    to_bytes,
)

FAST = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("500m", Fraction(1, 2)),
        ("0.5", Fraction(1, 2)),
        ("1", 1),
        ("1k", 1000),
        ("1Ki", 1024),
        ("128Mi", 128 * 2**20),
        ("1Gi", 2**30),
        ("1G", 10**9),
        ("1E", 10**18),
        ("1Ei", 2**60),
        ("1e3", 1000),
        ("1E3", 1000),
        ("1E-3", Fraction(1, 1000)),
        ("1e+3", 1000),
        ("100n", Fraction(100, 10**9)),
        ("250u", Fraction(250, 10**6)),
        ("-1.5k", -1500),
        ("+2", 2),
        ("1.", 1),
        (".5", Fraction(1, 2)),
        ("1.G", 10**9),
        ("0.1n", Fraction(1, 10**9)),  # rounded up to one nano
        ("-0.1n", Fraction(-1, 10**9)),  # away from zero
        ("0.0000000001", Fraction(1, 10**9)),
        ("007", 7),
        ("1e-30", Fraction(1, 10**9)),
        # Kubernetes quirks: a bare sign, point or suffix reads as zero.
        ("-", 0),
        (".", 0),
        ("Ki", 0),
    ],
)
def test_parse(text: str, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "1.1.M",
        "1+1.0M",
        "0.1mi",
        "0.1am",
        "aoeu",
        ".5i",
        "1i",
        "-3.01i",
        "-3.01e-",
        "1e",
        "1KiB",
        "1kk",
        "1e3e3",
        "1Mi2",
        "--1",
        "1,5",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_error_message_names_the_regex() -> None:
    with pytest.raises(QuantityError, match=r"quantities must match the regular expression"):
        parse_quantity("abc")
    with pytest.raises(QuantityError, match=r"suffix"):
        parse_quantity("1i")


def test_numbers_from_yaml() -> None:
    assert parse_quantity(1) == 1
    assert parse_quantity(0.5) == Fraction(1, 2)
    assert parse_quantity(0.1) == Fraction(1, 10)  # via its decimal text, not the binary float
    assert parse_quantity(1e-05) == Fraction(1, 100000)
    for bad in (True, float("nan"), float("inf")):
        with pytest.raises(QuantityError):
            parse_quantity(bad)


def test_binary_cap_and_huge_exponent() -> None:
    assert parse_quantity("100000000Ei") == 2**63 - 1
    assert parse_quantity("1e21") == 10**21  # decimal formats are not capped
    with pytest.raises(QuantityError):
        parse_quantity("1e999999999")


@pytest.mark.parametrize(
    ("text", "millis", "as_int"),
    [
        ("500m", 500, 1),
        ("1", 1000, 1),
        ("0.1m", 1, 1),
        ("1.0001", 1001, 2),
        ("1n", 1, 1),
        ("-1.5", -1500, -2),
        ("2Ki", 2048000, 2048),
        ("0", 0, 0),
    ],
)
def test_millis_and_bytes_round_away_from_zero(text: str, millis: int, as_int: int) -> None:
    assert cpu_millis(text) == millis
    assert cpu_millis(parse_quantity(text)) == millis
    assert to_bytes(text) == as_int


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0", "0"),
        ("500m", "500m"),
        ("0.5", "500m"),
        ("1.5", "1500m"),
        ("1500", "1500"),
        ("2000", "2k"),
        ("1e3", "1k"),
        ("1000Mi", "1000Mi"),
        ("1024Mi", "1Gi"),
        ("128Mi", "128Mi"),
        ("1.5Gi", "1536Mi"),
        ("1Ki", "1Ki"),
        ("0.5Ki", "512"),
        ("1023", "1023"),
        ("-2Ki", "-2Ki"),
        ("1e21", "1e21"),
        ("1E", "1E"),
        ("100n", "100n"),
        ("12345u", "12345u"),
        ("1.1Ki", "1126400m"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert format_quantity(parse_quantity(text), binary=quantity_is_binary(text)) == canonical


@pytest.mark.parametrize(
    ("text", "canonical", "fmt"),
    [
        ("0.5", "500m", DECIMAL_SI),
        ("1024Mi", "1Gi", BINARY_SI),
        ("1e3", "1e3", DECIMAL_EXPONENT),
        ("1500e-3", "1500e-3", DECIMAL_EXPONENT),
        ("1E6", "1e6", DECIMAL_EXPONENT),
        ("2e0", "2", DECIMAL_EXPONENT),
        ("0.1Gi", "107374182400m", BINARY_SI),
        (1, "1", DECIMAL_SI),
        (0.25, "250m", DECIMAL_SI),
    ],
)
def test_canonical_quantity_keeps_the_format(text: str | float, canonical: str, fmt: str) -> None:
    assert quantity_format(text) == fmt
    assert canonical_quantity(text) == canonical
    assert parse_quantity(canonical) == parse_quantity(text)


def test_format_rounds_sub_nano_values_up() -> None:
    assert format_quantity(Fraction(1, 10**12), binary=False) == "1n"
    assert format_quantity(Fraction(-1, 3), binary=False) == "-333333334n"


# ---------------------------------------------------------------- properties

nano_values = st.integers(min_value=-(10**25), max_value=10**25).map(lambda n: Fraction(n, 10**9))
byte_values = st.integers(min_value=-(2**62), max_value=2**62).map(Fraction)
suffixes = st.sampled_from(["n", "u", "m", "", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"])


@FAST
@given(nano_values, st.booleans())
def test_format_parse_round_trip(value: Fraction, binary: bool) -> None:
    text = format_quantity(value, binary=binary)
    assert parse_quantity(text) == value
    assert format_quantity(parse_quantity(text), binary=binary) == text


@FAST
@given(st.integers(min_value=-(10**9), max_value=10**9), st.sampled_from(["", "m", "k", "Ki", "Mi", "e3", "e-2", "E"]))
@example(7812500, "e-2")
def test_canonical_quantity_is_a_fixed_point(n: int, suffix: str) -> None:
    text = f"{n}{suffix}"
    once = canonical_quantity(text)
    assert canonical_quantity(once) == once
    assert parse_quantity(once) == parse_quantity(text)
    # (The format may change: "7812500e-2" prints as "78125", which then reads as SI, as in Kubernetes.)


@FAST
@given(byte_values)
def test_binary_round_trip(value: Fraction) -> None:
    assert parse_quantity(format_quantity(value, binary=True)) == value


@FAST
@given(nano_values, nano_values, st.booleans())
def test_ordering_preserved(a: Fraction, b: Fraction, binary: bool) -> None:
    pa = parse_quantity(format_quantity(a, binary=binary))
    pb = parse_quantity(format_quantity(b, binary=binary))
    assert (pa < pb) == (a < b)
    assert (pa == pb) == (a == b)


@FAST
@given(st.integers(min_value=0, max_value=10**6), suffixes)
def test_suffix_equivalences(n: int, suffix: str) -> None:
    factors: dict[str, Fraction | int] = {
        "n": Fraction(1, 10**9),
        "u": Fraction(1, 10**6),
        "m": Fraction(1, 1000),
        "": 1,
        "k": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
        "P": 10**15,
        "E": 10**18,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "Pi": 2**50,
        "Ei": 2**60,
    }
    expected = n * Fraction(factors[suffix])
    if suffix.endswith("i"):
        expected = min(expected, Fraction(2**63 - 1))
    assert parse_quantity(f"{n}{suffix}") == expected


@FAST
@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=0, max_value=9),
    st.integers(min_value=-12, max_value=12),
)
def test_decimal_with_exponent(mantissa: int, places: int, exponent: int) -> None:
    digits = f"{abs(mantissa):0{places + 1}d}"
    body = digits[: len(digits) - places] + "." + digits[len(digits) - places :] if places else digits
    text = ("-" if mantissa < 0 else "") + body + f"e{exponent}"
    exact = Fraction(mantissa, 10**places) * Fraction(10) ** exponent
    parsed = parse_quantity(text)
    # Exact to the nano, and never rounded toward zero.
    assert abs(parsed - exact) < Fraction(1, 10**9)
    assert abs(parsed) >= abs(exact)
    assert (parsed * 10**9).denominator == 1


@FAST
@given(nano_values)
def test_millis_is_ceiling_away_from_zero(value: Fraction) -> None:
    millis = cpu_millis(value)
    exact = value * 1000
    assert abs(millis) >= abs(exact) > abs(millis) - 1 or millis == exact == 0
    assert (millis >= 0) == (exact >= 0)


@FAST
@given(st.text(alphabet="0123456789.+-eEinumkKMGTPx ", max_size=8))
def test_parse_total(text: str) -> None:
    """Any string either parses to a nano multiple or raises QuantityError, nothing else."""
    try:
        value = parse_quantity(text)
    except QuantityError:
        return
    assert (value * 10**9).denominator == 1
