"""Reading the fields of one feed message: numbers and timestamps (format: ``docs/FEED.md``).

Both readers take what :func:`json.loads` produces and either return a float or raise
``ValueError`` (the message is malformed). They never raise ``OverflowError``: a number too
large for a float comes back as an infinity, which the intake drops as ``non_finite`` (a
price or volume) or ``ts_out_of_range`` (a timestamp).

Numbers are JSON numbers or decimal strings (``"150.5"``, as many exchanges send them);
``"NaN"`` and ``"inf"`` strings read as NaN and infinity.

Timestamps are ISO-8601 strings (``T`` or a space between date and time, ``Z`` or an offset,
none meaning UTC) or epoch numbers whose unit is told by magnitude, because feeds send
seconds, milliseconds, microseconds or nanoseconds without saying which:

=====================  ============  =============================================
``abs(ts)``            unit          so that
=====================  ============  =============================================
up to 1e11             seconds       1e11 s is the year 5138
over 1e11, to 1e14     milliseconds  1e11 ms is 1973-03-03, 1e14 ms the year 5138
over 1e14, to 1e17     microseconds
over 1e17              nanoseconds
=====================  ============  =============================================

Every instant from 1973-03-03 to the year 5138 (and back to 1900) therefore reads the same
in all four units; only milliseconds before 1973-03-03 would be taken as seconds.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

# Decimal numbers only: no "_" separators, no whitespace, no non-ASCII digits (float() takes all three).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.ASCII | re.IGNORECASE)

# Longest ISO-8601 string read: a date, a time to the nanosecond and an offset fit in 40.
MAX_TS_CHARS = 64

_UTC = dt.UTC


def _infinity(value: int) -> float:
    return math.inf if value > 0 else -math.inf


def number(value: Any) -> float:
    """A price or volume as a float (possibly NaN or infinite).

    Raises
    ------
    ValueError
        When ``value`` is not a JSON number or a decimal string (booleans are not numbers).
    """
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            return _infinity(value)
    if kind is str:
        if _DECIMAL.fullmatch(value) or _NOT_FINITE.fullmatch(value):
            return float(value)
        raise ValueError(f"not a decimal number: {value[:40]!r}")
    raise ValueError(f"not a number: {kind.__name__}")


def _epoch_of_number(value: float | int) -> float:
    try:
        seconds = float(value)
    except OverflowError:
        return _infinity(value)
    if seconds != seconds:
        raise ValueError("timestamp is NaN")
    magnitude = abs(seconds)
    if magnitude <= 1e11:
        return seconds
    if magnitude > 1e17:
        divisor = 1_000_000_000
    elif magnitude > 1e14:
        divisor = 1_000_000
    else:
        divisor = 1_000
    # int / int is correctly rounded: a nanosecond integer keeps its microseconds.
    return value / divisor


def _epoch_of_text(text: str) -> float:
    if len(text) > MAX_TS_CHARS:
        raise ValueError("timestamp string too long")
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_UTC)
    try:
        return parsed.timestamp()
    except OverflowError:
        # An offset that moves year 1 or 9999 past the calendar: out of range either way.
        return -math.inf if parsed.year == 1 else math.inf


def epoch_seconds(value: Any) -> float:
    """Epoch seconds of a feed timestamp (possibly infinite, never NaN).

    Raises
    ------
    ValueError
        When ``value`` is not an ISO-8601 string or a JSON number, or is NaN.
    """
    kind = type(value)
    if kind is float or kind is int:
        return _epoch_of_number(value)
    if kind is str:
        return _epoch_of_text(value)
    raise ValueError(f"not a timestamp: {kind.__name__}")
