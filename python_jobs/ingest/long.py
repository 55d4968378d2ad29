"""Long format ``loto, unique_id, ds, y[, num, co]``: one row per position and draw, in chunks.

A chunk of lines is checked column-wise with pandas (a million rows take seconds; a plain
file takes the faster path of :mod:`python_jobs.ingest.long_plain`, which hands any chunk it
does not accept whole to :func:`parse_long_chunk`); checks
across the whole file (a row twice, a number repeated within a draw) run in the database over
the staged rows. The ``loto`` column, where present, must agree with ``--loto``: a file whose
rows belong to another lottery is refused line by line rather than loaded under either name.

``ds`` may carry a time of day (half-hourly demand, hourly bars): it is read by
:func:`python_jobs.ingest.values.parse_timestamp` (an offset converted to naive UTC) and two
rows of one series at the same instant are a duplicate. A known lottery's rows are dated by
day, at midnight.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd

from python_jobs.ingest.problems import FileLevelError, Problem
from python_jobs.ingest.spec import LotoSpec, get_spec
from python_jobs.ingest.values import (
    INT32_MAX,
    INT64_MAX,
    NAME_MAX_CHARS,
    Y_ABS_LIMIT,
    Y_MAX_DECIMALS,
    date_problem,
    normalize,
    normalize_header,
    parse_int,
    parse_timestamp,
    shown_timestamp,
)

LONG_REQUIRED = ("unique_id", "ds", "y")
LONG_OPTIONAL = ("loto", "num", "co")
DRAW_COLUMNS = ["loto", "unique_id", "ds", "y", "num", "co", "line"]
UID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def long_header(header: list[str]) -> list[str]:
    """The normalised column names of a long file, or a refusal naming the bad ones."""
    names = [normalize_header(name) for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise FileLevelError(
            f"duplicated header: {', '.join(map(repr, repeated))} "
            "(each column of the long format must appear once)",
            line=1,
        )
    unknown = [name for name in names if name not in LONG_REQUIRED + LONG_OPTIONAL]
    if unknown:
        raise FileLevelError(
            f"unknown header: {', '.join(repr(name[:40]) for name in unknown)} "
            "(the long format has columns loto, unique_id, ds, y[, num, co])",
            line=1,
        )
    return names


def _plain(values: list[str], extra: str = "") -> bool:
    """Whether no value needs normalising: ASCII without spaces, quotes (or ``extra``)."""
    joined = "\x1f".join(values)
    return joined.isascii() and not any(char in joined for char in ' \t\r\n"' + extra)


def _normalize_column(values: pd.Series) -> pd.Series:
    """NFKC and trimming, applied per element only where a value is not plain ASCII."""
    # The common case (plain ASCII fields) is checked in one pass over the joined column:
    # per-element string methods would cost more than the rest of the parse.
    values = values.fillna("").astype(object)
    if _plain(values.tolist()):
        return values
    values = values.astype(str).str.strip()
    exotic = ~values.map(str.isascii)
    if exotic.any():
        values = values.where(~exotic, values[exotic].map(normalize))
    return values.str.strip('"')


def _map_unique(values: pd.Series, fn: Callable) -> pd.Series:
    """Apply ``fn`` once per distinct value (dates and ids repeat across a long file)."""
    uniques = values.unique()
    return values.map(dict(zip(uniques, map(fn, uniques), strict=True)))


class _Flags:
    """Reasons per row of a chunk, joined with '; '."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.reasons = pd.Series("", index=frame.index, dtype=object)

    def add(self, mask: pd.Series, text: Callable[[pd.DataFrame], pd.Series] | str) -> None:
        if not mask.any():
            return
        bad = self.frame[mask]
        messages = text(bad) if callable(text) else pd.Series(text, index=bad.index)
        current = self.reasons[mask]
        self.reasons[mask] = current.where(current == "", current + "; ") + messages


def _check_names(frame: pd.DataFrame, flags: _Flags, loto: str) -> None:
    wrong_loto = (frame["loto"] != "") & (frame["loto"] != loto)
    flags.add(
        wrong_loto,
        lambda bad: (
            "the file's loto column says "
            + bad["loto"].str.slice(0, 40).map(repr)
            + f" but --loto is {loto!r}"
        ),
    )
    uid = frame["unique_id"]
    flags.add(uid == "", "empty unique_id")
    too_long = uid.str.len() > NAME_MAX_CHARS
    flags.add(
        too_long,
        lambda bad: (
            "unique_id is "
            + bad["unique_id"].str.len().astype(str)
            + f" characters long (at most {NAME_MAX_CHARS})"
        ),
    )
    odd = (uid != "") & ~too_long & ~uid.str.fullmatch(UID_RE.pattern)
    flags.add(
        odd,
        lambda bad: (
            "unique_id " + bad["unique_id"].map(repr) + " may hold only letters, digits, '_', '-' and '.'"
        ),
    )


def _stamps(texts: pd.Series, day_only: bool) -> pd.Series:
    """``parse_timestamp`` once per distinct text, kept as Python datetimes (object dtype:
    pandas would turn them into nanoseconds, which end in 2262)."""
    lookup = {}
    for text in texts.unique():
        stamp = parse_timestamp(text)
        if stamp is not None and day_only:
            # A known lottery's draw is dated by its day (midnight), whatever time a file gives.
            stamp = datetime(stamp.year, stamp.month, stamp.day)
        lookup[text] = stamp
    return pd.Series([lookup[text] for text in texts], index=texts.index, dtype=object)


def _check_dates(frame: pd.DataFrame, flags: _Flags, spec: LotoSpec | None, loto: str) -> None:
    stamps = _stamps(frame["ds"], day_only=spec is not None)
    frame["ds_stamp"] = stamps
    flags.add(
        stamps.isna(),
        lambda bad: (
            "unparseable date "
            + bad["ds"].str.slice(0, 40).map(repr)
            + " (use 2000-06-05, 2000-06-05 00:30:00 or 2000-06-05T00:30:00Z)"
        ),
    )
    first = spec.first_draw if spec else None
    found = {stamp: date_problem(stamp, first, loto) for stamp in set(stamps) if stamp is not None}
    problems = pd.Series([found.get(stamp) for stamp in stamps], index=stamps.index, dtype=object)
    flags.add(problems.notna(), lambda bad: problems[bad.index])


def _check_y(frame: pd.DataFrame, flags: _Flags) -> pd.Series:
    y_text = frame["y"]
    if not _plain(y_text.tolist(), ","):
        y_text = y_text.astype(str).str.replace(",", "", regex=False)
    numeric = pd.to_numeric(y_text.where((y_text != "") & (y_text.str.len() <= 40), None), errors="coerce")
    y_value = numeric.astype(float)
    y_bad = y_value.isna() | ~np.isfinite(y_value)
    flags.add(y_bad, lambda bad: "unparseable number y=" + bad["y"].str.slice(0, 40).map(repr))
    too_big = ~y_bad & (y_value.abs() >= float(Y_ABS_LIMIT))
    flags.add(too_big, lambda bad: "y=" + bad["y"] + " is too large (|y| must be below 1e15)")
    fine_re = rf"\.\d{{{Y_MAX_DECIMALS + 1},}}"
    if re.search(fine_re, "\x1f".join(y_text.tolist())):
        too_fine = ~y_bad & y_text.astype(str).str.contains(fine_re, regex=True)
    else:
        too_fine = pd.Series(False, index=y_text.index)
    flags.add(too_fine, f"y has more than {Y_MAX_DECIMALS} decimals")
    frame["y"] = y_text
    return y_value.where(~(y_bad | too_big | too_fine))


def _check_ints(frame: pd.DataFrame, flags: _Flags) -> None:
    for name, label, low, high in (("num", "draw number", 1, INT32_MAX), ("co", "carry-over", 0, INT64_MAX)):
        present = frame[name] != ""
        parsed = _map_unique(
            frame[name], lambda text, money=(name == "co"): parse_int(text, money=money) if text else None
        )
        unparseable = present & parsed.isna()
        flags.add(
            unparseable,
            lambda bad, name=name, label=label: (
                f"unparseable {label} " + bad[name].str.slice(0, 40).map(repr)
            ),
        )
        outside = (
            present
            & ~unparseable
            & parsed.map(lambda value, low=low, high=high: value is not None and not low <= value <= high)
        )
        flags.add(
            outside,
            lambda bad, name=name, label=label, low=low, high=high: (
                f"{label} " + bad[name].str.slice(0, 40) + f" is outside {low}..{high}, what the table stores"
            ),
        )
        frame[name] = parsed.where(~(unparseable | outside), None).astype("Int64")


def _check_positions(frame: pd.DataFrame, flags: _Flags, spec: LotoSpec, y_value: pd.Series) -> None:
    ranges = frame["unique_id"].map(spec.position_ranges)
    no_position = ranges.isna() & (frame["unique_id"] != "")
    flags.add(
        no_position,
        lambda bad: (
            "unique_id "
            + bad["unique_id"].str.slice(0, 40).map(repr)
            + f" is not a position of {spec.loto} ({', '.join(spec.unique_ids)})"
        ),
    )
    checkable = ~no_position & y_value.notna()
    fractional = checkable & (y_value != np.floor(y_value))
    flags.add(fractional, lambda bad: bad["unique_id"] + ": " + bad["y"] + " is not a whole number")
    low = ranges.map(lambda pair: pair[0] if isinstance(pair, tuple) else np.nan).astype(float)
    high = ranges.map(lambda pair: pair[1] if isinstance(pair, tuple) else np.nan).astype(float)
    outside = checkable & ~fractional & ((y_value < low) | (y_value > high))
    flags.add(
        outside,
        lambda bad: (
            bad["unique_id"]
            + ": "
            + bad["y"]
            + " is out of range "
            + low[bad.index].astype(int).astype(str)
            + "-"
            + high[bad.index].astype(int).astype(str)
            + f" for {spec.loto}"
        ),
    )


def _isoformat(stamps: pd.Series) -> list[str]:
    """The stamps as COPY reads them; each distinct one formatted once (a draw date repeats
    once per position). A plain dict: pandas would turn the datetimes into nanoseconds."""
    texts = {stamp: stamp.isoformat(sep=" ") for stamp in set(stamps)}
    return [texts[stamp] for stamp in stamps]


def parse_long_chunk(
    rows: list[tuple[int, list[str]]], names: list[str], loto: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Good rows of a chunk (columns ``DRAW_COLUMNS``, text-typed for COPY) and its bad lines."""
    problems: list[Problem] = []
    width = len(names)
    good_rows = []
    for line, fields in rows:
        if len(fields) != width:
            problems.append(
                Problem(
                    line,
                    None,
                    f"wrong column count: {len(fields)} fields, the header has {width}",
                    ",".join(fields),
                )
            )
        else:
            good_rows.append((line, fields))
    frame = pd.DataFrame([fields for _, fields in good_rows], columns=names, dtype=object)
    frame["line"] = np.fromiter((line for line, _ in good_rows), dtype=np.int64, count=len(good_rows))
    for name in LONG_OPTIONAL:
        if name not in frame:
            frame[name] = ""
    for name in ("loto", "unique_id", "ds", "y", "num", "co"):
        frame[name] = _normalize_column(frame[name])
    flags = _Flags(frame)
    spec = get_spec(loto)
    _check_names(frame, flags, loto)
    _check_dates(frame, flags, spec, loto)
    y_value = _check_y(frame, flags)
    _check_ints(frame, flags)
    if spec is not None:
        _check_positions(frame, flags, spec, y_value)
    bad = flags.reasons != ""
    fields_of = dict(good_rows) if bad.any() else {}
    for index in frame.index[bad]:
        shown = frame.at[index, "ds_stamp"]
        if isinstance(shown, datetime):
            draw_date = shown_timestamp(shown)
        else:
            draw_date = frame.at[index, "ds"][:40] or None
        line = int(frame.at[index, "line"])
        problems.append(Problem(line, draw_date, flags.reasons[index], ",".join(fields_of[line])))
    good = frame[~bad]
    out = pd.DataFrame(
        {
            "loto": loto,
            "unique_id": good["unique_id"],
            "ds": _isoformat(good["ds_stamp"]),
            "y": good["y"],
            "num": good["num"],
            "co": good["co"],
            "line": good["line"],
        },
        columns=DRAW_COLUMNS,
    )
    return out, problems
