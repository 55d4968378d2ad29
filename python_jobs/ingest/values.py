"""Field values: normalisation, dates, integers, and the bounds of what the tables store.

Every number the parsers accept fits its column: ``num`` an ``integer``, ``co``, ``winners``
and ``prize`` a ``bigint``; ``y`` is bounded so that aggregates over it stay exact in
``numeric`` and finite in ``double precision``. Dates must lie between the lottery's first
draw (or 1900 for a series of the user's own) and a few days after today.

Timestamps. ``ds`` is stored as a ``timestamp`` without time zone, read as UTC. A long-format
file may give a time of day (``2000-06-05 00:30:00``, ``2000-06-05T00:30``, fractions of a
second to the microsecond); a time with an offset (``Z``, ``+09:00``, ``+0900``) is converted to
UTC and stored without it; a date alone is midnight. A known lottery is dated by day: its draws
stay at midnight (a time of day in its files is dropped, as the Japanese files' dates are read).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# |y| below 10^15 keeps every value and its sums exact in double precision.
Y_ABS_LIMIT = Decimal(10) ** 15
Y_MAX_DECIMALS = 12
# Names stored in the grain (loto, unique_id) and in a btree index: short and printable.
NAME_MAX_CHARS = 64
# A draw dated more than this many days after today is a typo, not a result.
FUTURE_DAYS_ALLOWED = 7
EARLIEST_DATE = date(1900, 1, 1)

DATE_RE = re.compile(
    r"^(\d{4})\s*[/\-.年]\s*(\d{1,2})\s*[/\-.月]\s*(\d{1,2})\s*日?"
    r"(?:\s*[\(（][^)）]*[\)）])?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$"
)
# An ISO-like date with a time of day and an optional UTC offset; inner spaces are significant
# here (between date and time), so this is matched before the spaces are squeezed out.
TIMESTAMP_RE = re.compile(
    r"^(\d{4})[/\-.](\d{1,2})[/\-.](\d{1,2})(?:\s+|T)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)
COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_INT_RE = re.compile(r"[+-]?\d+")
_INT_POINT_ZERO_RE = re.compile(r"[+-]?\d+\.0*")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
EMPTY_MARKS = {"", "-", "ー", "―", "—", "－"}


def normalize(text: object) -> str:
    """NFKC (full-width digits and letters to ASCII), trimmed, without inner spaces."""
    if text is None:
        return ""
    if isinstance(text, str) and text.isascii() and text.isalnum():
        return text  # the common case, and nothing to normalise
    value = unicodedata.normalize("NFKC", str(text)).strip().strip('"').strip()
    return re.sub(r"\s+", "", value)


def normalize_header(text: object) -> str:
    """A header as compared with the known names: NFKC, lower case, no BOM or spaces."""
    return normalize(str(text).lstrip("\ufeff")).lower()


@lru_cache(maxsize=65536)
def parse_date(text: str) -> date | None:
    """A date from ``2017/4/5``, ``2017-04-05``, ``2017年4月5日`` or ``20170405``; None otherwise."""
    value = normalize(text)
    match = DATE_RE.match(value) or COMPACT_DATE_RE.match(value)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def parse_timestamp(text: str) -> datetime | None:
    """A naive UTC timestamp from a date (midnight) or a date and time; None otherwise.

    Accepts every form of :func:`parse_date`, and ``2000-06-05 00:30``, ``2000-06-05T00:30:00``,
    ``2000-06-05T00:30:00.25``, each optionally followed by ``Z`` or an offset (``+09:00``,
    ``-0500``, ``+09``), which is applied: ``2000-06-05T09:30+09:00`` is ``2000-06-05 00:30``.
    """
    value = unicodedata.normalize("NFKC", str(text)).strip().strip('"').strip()
    match = TIMESTAMP_RE.match(value)
    if not match:
        day = parse_date(value)
        return datetime(day.year, day.month, day.day) if day else None
    year, month, dom, hour, minute, second, fraction, offset = match.groups()
    try:
        stamp = datetime(
            int(year),
            int(month),
            int(dom),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        return None
    if offset and offset.upper() != "Z":
        digits = offset[1:].replace(":", "")
        shift = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        if shift > timedelta(hours=18):
            return None
        stamp = stamp - shift if offset[0] == "+" else stamp + shift
    return stamp


def shown_timestamp(stamp: datetime) -> str:
    """``ds`` as reports show it and PostgreSQL prints it: the date alone at midnight."""
    if stamp.time() == datetime.min.time():
        return stamp.date().isoformat()
    return stamp.isoformat(sep=" ")


def latest_allowed_date(today: date | None = None) -> date:
    """The last draw date accepted: a few days after today (a draw announced in advance)."""
    return (today or date.today()) + timedelta(days=FUTURE_DAYS_ALLOWED)


def date_problem(ds: date, first_draw: date | None, loto: str) -> str | None:
    """Why ``ds`` cannot be a draw date of ``loto``, or None when it can.

    A timestamp is judged by its day: not before the first draw (or 1900), and at most
    ``FUTURE_DAYS_ALLOWED`` days after today.
    """
    if isinstance(ds, datetime):
        ds = ds.date()
    earliest = first_draw or EARLIEST_DATE
    if ds < earliest:
        if first_draw is not None:
            return f"date {ds.isoformat()} is before {loto}'s first draw ({first_draw.isoformat()})"
        return f"date {ds.isoformat()} is before {EARLIEST_DATE.isoformat()}"
    latest = latest_allowed_date()
    if ds > latest:
        return (
            f"date {ds.isoformat()} is more than {FUTURE_DAYS_ALLOWED} days after today "
            f"(latest accepted: {latest.isoformat()})"
        )
    return None


def parse_int(text: object, *, money: bool = False) -> int | None:
    """An integer from a field ('12', '１２', '1,234円', '12.0'); None when it is not one."""
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 40:
        return int(text)
    value = normalize(text)
    if money:
        value = value.replace("円", "").replace("¥", "").replace("口", "")
    value = value.replace(",", "")
    if len(value) > 40:
        return None
    if _INT_RE.fullmatch(value):
        return int(value)
    if _INT_POINT_ZERO_RE.fullmatch(value):
        return int(value.split(".")[0])
    return None


def bounded_int(
    text: object, *, label: str, low: int, high: int, money: bool = False
) -> tuple[int | None, str | None]:
    """Parse an integer field and check it fits ``low..high``: (value, None) or (None, reason)."""
    shown = normalize(text)
    value = parse_int(text, money=money)
    if value is None:
        return None, f"unparseable {label} {shown[:40]!r}"
    if not low <= value <= high:
        return None, f"{label} {shown[:40]} is outside {low}..{high}, what the table stores"
    return value, None


def parse_number(text: object) -> Decimal | None:
    """A finite decimal number, or None."""
    value = normalize(text).replace(",", "")
    if not value or len(value) > 40:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def y_problem(number: Decimal) -> str | None:
    """Why a value cannot be stored as ``y``, or None."""
    if abs(number) >= Y_ABS_LIMIT:
        return f"y={number} is too large (|y| must be below 1e15)"
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > Y_MAX_DECIMALS:
        return f"y={number} has more than {Y_MAX_DECIMALS} decimals"
    return None


def name_problem(name: str, label: str) -> str | None:
    """Why ``name`` cannot be a lottery or position name, or None."""
    if not name:
        return f"empty {label}"
    if len(name) > NAME_MAX_CHARS:
        return f"{label} is {len(name)} characters long (at most {NAME_MAX_CHARS})"
    if not _NAME_RE.fullmatch(name):
        return f"{label} {name[:40]!r} may hold only letters, digits, '_', '-' and '.'"
    return None
