"""Kubernetes resource quantities (`500m`, `128Mi`, `1e3`), parsed exactly.

A quantity is a signed decimal number with an optional suffix: a decimal SI suffix
(n u m "" k M G T P E), a binary one (Ki Mi Gi Ti Pi Ei) or a decimal exponent
(`e3`, `E-3`). The grammar and the edge cases follow apimachinery's
`resource.ParseQuantity`:

- values are held as `fractions.Fraction`, never floats, so `0.1 + 0.2` style errors
  cannot happen and `1Ki == 1024`, `500m == 1/2` hold exactly;
- a non-zero value finer than one nano is rounded *away from zero* to the next
  nano multiple (Kubernetes' rule: "if you ask for some, you get some"), so every
  parsed value is an exact multiple of 10**-9;
- a binary-suffixed value above 2**63-1 is capped at 2**63-1 (Kubernetes caps only
  that format);
- like Kubernetes, a bare sign, a bare `.` or a bare suffix (`"-"`, `"."`, `"Ki"`)
  parse as zero, and surrounding whitespace is refused.

`format_quantity` produces the canonical form Kubernetes serialises (and
`canonical_quantity` re-prints a text in its own format, as the API server stores it): decimal values
as an integer mantissa with the largest exponent that is a multiple of three
(`1500m`, `2k`, `1500`), binary values as an integer mantissa over a power of 1024
when that is exact and at least 1024 in magnitude (`128Mi`), else decimal.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = [
    "BINARY_SI",
    "DECIMAL_EXPONENT",
    "DECIMAL_SI",
    "QuantityError",
    "canonical_quantity",
    "cpu_millis",
    "format_quantity",
    "parse_quantity",
    "quantity_format",
    "quantity_is_binary",
    "to_bytes",
]

QUANTITY_REGEX = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_FORMAT_MESSAGE = f"quantities must match the regular expression '{QUANTITY_REGEX}'"
_SUFFIX_MESSAGE = "unable to parse quantity's suffix"

_BINARY: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL: dict[str, int] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_DECIMAL_BY_EXPONENT: dict[int, str] = {v: k for k, v in _DECIMAL.items()}
_BINARY_BY_EXPONENT: dict[int, str] = {v // 10: k for k, v in _BINARY.items()}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_NANO = Fraction(1, 10**9)
_MAX_INT64 = 2**63 - 1
# Exponents beyond this are refused rather than materialised as enormous integers:
# no resource is 10**1000 of anything, and the API server must not be made to build one.
_MAX_EXPONENT = 1000


# The three serialisation formats of Kubernetes: a quantity prints back in the format
# its text was written in ("128Mi" stays binary, "1e3" stays an exponent, "1k" SI).
DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity; the message says what is expected."""


def _split(text: str) -> tuple[bool, str, str, str]:
    """Split into (positive, integer digits, fraction digits, suffix), the Kubernetes way."""
    pos, end = 0, len(text)
    positive = True
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos]
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos != end:
        raise QuantityError(_FORMAT_MESSAGE)
    return positive, num, denom, text[suffix_start:]


def _interpret_suffix(suffix: str) -> tuple[int, int, str]:
    """Return (base, exponent, format) for a suffix, or raise QuantityError."""
    if suffix in _BINARY:
        return 2, _BINARY[suffix], BINARY_SI
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], DECIMAL_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[0] in "+-" else digits
        if body and all(c in _DIGITS for c in body):
            exponent = int(digits)
            if abs(exponent) > _MAX_EXPONENT:
                raise QuantityError(f"quantity exponent {exponent} is out of range")
            return 10, exponent, DECIMAL_EXPONENT
    raise QuantityError(_SUFFIX_MESSAGE)


def _round_to_nano(value: Fraction) -> Fraction:
    """Round a non-negative value up to the next multiple of 10**-9."""
    scaled = value / _NANO
    return Fraction(math.ceil(scaled)) * _NANO


def _parse_text(text: str) -> tuple[Fraction, str]:
    if not text:
        raise QuantityError(_FORMAT_MESSAGE)
    positive, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret_suffix(suffix)
    magnitude = Fraction(int(num + denom or "0"), 10 ** len(denom))
    if base == 2:
        magnitude *= 2**exponent
    elif exponent >= 0:
        magnitude *= 10**exponent
    else:
        magnitude /= 10 ** (-exponent)
    if magnitude:
        magnitude = _round_to_nano(magnitude)
    if fmt == BINARY_SI and magnitude > _MAX_INT64:
        magnitude = Fraction(_MAX_INT64)
    return (magnitude if positive else -magnitude), fmt


def parse_quantity(value: str | int | float) -> Fraction:
    """Parse a quantity as Kubernetes does and return its exact value.

    Integers and floats (what YAML gives for `cpu: 1` or `cpu: 0.5`) are read through
    their decimal text, as Kubernetes reads a JSON number.
    """
    return _parse_text(_as_text(value))[0]


def quantity_format(value: str | int | float) -> str:
    """The Kubernetes format of a quantity's text: DECIMAL_SI, BINARY_SI or DECIMAL_EXPONENT."""
    return _parse_text(_as_text(value))[1]


def quantity_is_binary(value: str | int | float) -> bool:
    """True when `value` uses a binary suffix, so its canonical form is binary (`Mi`...)."""
    return quantity_format(value) == BINARY_SI


def canonical_quantity(value: str | int | float) -> str:
    """Parse and re-print a quantity as Kubernetes stores it (`"0.5"` -> `"500m"`, `"1024Mi"` -> `"1Gi"`).

    The format of the input is kept, as Kubernetes keeps it: binary suffixes stay
    binary where exact, exponent forms stay exponent forms (`"1e3"`), the rest is SI.
    """
    amount, fmt = _parse_text(_as_text(value))
    if fmt == DECIMAL_EXPONENT:
        return _format_decimal(amount, exponent_form=True)
    return format_quantity(amount, binary=fmt == BINARY_SI)


def _as_text(value: str | int | float) -> str:
    if isinstance(value, bool):
        raise QuantityError(f"a quantity cannot be a boolean: {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"a quantity must be finite, not {value!r}")
        return repr(value)
    if isinstance(value, str):
        return value
    raise QuantityError(f"a quantity must be a string or a number, not {type(value).__name__}")


def _ceil_away_from_zero(value: Fraction) -> int:
    return math.ceil(value) if value >= 0 else -math.ceil(-value)


def cpu_millis(value: Fraction | str | int | float) -> int:
    """The value in thousandths, rounded away from zero (Kubernetes' MilliValue)."""
    q = value if isinstance(value, Fraction) else parse_quantity(value)
    return _ceil_away_from_zero(q * 1000)


def to_bytes(value: Fraction | str | int | float) -> int:
    """The value as an integer, rounded away from zero (Kubernetes' Value), e.g. for memory."""
    q = value if isinstance(value, Fraction) else parse_quantity(value)
    return _ceil_away_from_zero(q)


def format_quantity(value: Fraction | int, *, binary: bool = False) -> str:
    """The canonical Kubernetes spelling of `value`.

    Values finer than a nano are first rounded away from zero to the next nano, as
    parsing would. `binary=True` asks for a power-of-1024 suffix; it falls back to
    the decimal form for values under 1024 in magnitude or not integral, as
    Kubernetes does, so parsing the result always gives the value back.
    """
    q = Fraction(value)
    if q == 0:
        return "0"
    sign = "-" if q < 0 else ""
    magnitude = _round_to_nano(abs(q))
    if binary and magnitude >= 1024 and magnitude.denominator == 1:
        mantissa = magnitude.numerator
        power = 0
        while power < 6 and mantissa % 1024 == 0:
            mantissa //= 1024
            power += 1
        return f"{sign}{mantissa}{_BINARY_BY_EXPONENT[power] if power else ''}"
    return _format_decimal(q, exponent_form=False)


def _format_decimal(value: Fraction, *, exponent_form: bool) -> str:
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # The magnitude is a multiple of 10**-9: write it as mantissa * 10**exponent with an
    # integral mantissa and exponent a multiple of three, as large as possible.
    mantissa = int(_round_to_nano(abs(value)) / _NANO)
    exponent = -9
    while mantissa % 1000 == 0:
        mantissa //= 1000
        exponent += 3
    if exponent_form:
        suffix = f"e{exponent}" if exponent else ""
    else:
        suffix = _DECIMAL_BY_EXPONENT.get(exponent, f"e{exponent}")
    return f"{sign}{mantissa}{suffix}"
