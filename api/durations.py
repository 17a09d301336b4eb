"""Go-style durations for CLI flags, and kubectl's AGE column.

`parse_duration` accepts what Go's `time.ParseDuration` accepts: an optional sign
and one or more `<decimal number><unit>` terms with units ns, us (or µs/μs), ms, s,
m, h (`"300ms"`, `"1h30m"`, `"1.5h"`, `"-2m"`); `"0"` alone needs no unit. It
returns seconds as a float.

`format_age` is apimachinery's `duration.HumanDuration`, which kubectl uses for AGE:
about two significant figures, whole units only, truncating (never rounding up), so
an object never looks older than it is. Slightly negative ages (clock skew under
two seconds) print as "0s"; more negative ones as "<invalid>".
"""

from __future__ import annotations

import math
import re

__all__ = ["DurationError", "format_age", "parse_duration"]

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_MAX_NANOS = float(2**63 - 1)
_TERM = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


class DurationError(ValueError):
    """Not a Go duration such as "5s", "1h30m" or "300ms"."""


def parse_duration(text: str) -> float:
    """Parse a Go duration string into seconds."""
    original = text
    sign = 1.0
    if text[:1] in ("+", "-"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise DurationError(f'invalid duration "{original}"')
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _TERM.match(text, pos)
        assert match is not None  # the pattern can match the empty string
        number, unit = match.group(1), match.group(2)
        if number in ("", "."):
            raise DurationError(f'invalid duration "{original}"')
        if not unit:
            raise DurationError(f'missing unit in duration "{original}"')
        if unit not in _UNITS:
            raise DurationError(f'unknown unit "{unit}" in duration "{original}"')
        total += float(number) * _UNITS[unit]
        pos = match.end()
    if not math.isfinite(total) or total * 1e9 > _MAX_NANOS:
        # Go holds durations as int64 nanoseconds (about 292 years) and refuses more.
        raise DurationError(f'invalid duration "{original}"')
    return sign * total


def format_age(seconds: float) -> str:
    """Format an age the way kubectl's AGE column does (apimachinery HumanDuration)."""
    whole = int(seconds)  # truncates toward zero, like Go's int(d.Seconds())
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"
