"""The long format's fast path: a plain file read in whole chunks and checked column-wise.

Most long files are machine-written: ASCII, comma-separated, nothing quoted. For such a file
(:func:`is_plain_long_file`) every physical line is one record, so a chunk of lines is split
into columns and checked by polars in one pass each, instead of line by line in Python: a
million rows take about a second instead of ten.

The fast path only ever accepts. A chunk is loaded from here when every one of its rows passes
checks that are as strict as those of :func:`python_jobs.ingest.long.parse_long_chunk` or
stricter, and gives the same values: the same functions judge each distinct date, id and
draw number, and ``y`` must be a plain decimal. A chunk with anything else (a bad or unusual
value, a line with the wrong number of fields, a blank line) goes to ``parse_long_chunk``
whole, so every refusal and its message comes from one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from python_jobs.ingest.encoding import MAX_LINE_CHARS, runs_without_bom
from python_jobs.ingest.long import DRAW_COLUMNS, LONG_OPTIONAL, UID_RE, parse_long_chunk
from python_jobs.ingest.problems import Problem
from python_jobs.ingest.spec import LotoSpec, get_spec
from python_jobs.ingest.values import INT32_MAX, NAME_MAX_CHARS, Y_MAX_DECIMALS, date_problem, parse_timestamp

# Bytes that make a line more than comma-separated fields: quoting, other line ends, tabs
# (another delimiter), NUL; and a blank line.
_NOT_PLAIN = (b'"', b"\r", b"\t", b"\x00", b"\n\n")
# A plain decimal: below 1e15 in magnitude, at most Y_MAX_DECIMALS decimals.
_Y_PLAIN = rf"^-?[0-9]{{1,15}}(\.[0-9]{{1,{Y_MAX_DECIMALS}}})?$"
# Whole numbers that fit their columns whatever the digits (draw number: int4, carry-over: int8).
_NUM_PLAIN = r"^[0-9]{1,9}$"
_CO_PLAIN = r"^[0-9]{1,18}$"


def is_plain_long_file(path: Path) -> bool:
    """Whether the file is ASCII with no quote, CR, tab, NUL, blank line or overlong line.

    One pass over the raw bytes, run by run, so memory stays bounded.
    """
    for run, _ in runs_without_bom(path):
        if not run.isascii() or run.startswith(b"\n") or any(part in run for part in _NOT_PLAIN):
            return False
        ends = np.flatnonzero(np.frombuffer(run, dtype=np.uint8) == ord("\n"))
        # A line refused for its length counts its line feed (see the encoding module).
        if np.diff(ends, prepend=-1, append=len(run)).max(initial=0) > MAX_LINE_CHARS:
            return False
    return True


def plain_line_chunks(path: Path, chunk_lines: int) -> Iterator[tuple[int, list[str]]]:
    """(number of the first line, lines) after the header line, ``chunk_lines`` at a time."""
    pending: list[str] = []
    first_line = 2
    header_seen = False
    for run, _ in runs_without_bom(path):
        lines = run.decode("ascii").split("\n")
        if lines[-1] == "":
            lines.pop()  # the run ends with a line feed, as all but the file's last do
        if not header_seen:
            lines = lines[1:]
            header_seen = True
        pending += lines
        while len(pending) >= chunk_lines:
            yield first_line, pending[:chunk_lines]
            first_line += chunk_lines
            pending = pending[chunk_lines:]
    if pending:
        yield first_line, pending


def plain_long_chunk(
    first_line: int, lines: list[str], names: list[str], loto: str
) -> tuple[pd.DataFrame, list[Problem], str | None, int]:
    """A chunk's good rows, its bad lines, its rows as COPY text when all are good, and how
    many records it holds (its non-blank lines)."""
    checked = _checked(lines, names, loto, get_spec(loto))
    if checked is not None:
        checked = checked.with_columns(
            line=pl.int_range(first_line, first_line + len(lines), dtype=pl.Int64, eager=False)
        ).select(DRAW_COLUMNS)
        return _pandas(checked), [], checked.write_csv(include_header=False), len(lines)
    records = _records(first_line, lines, len(names))
    draws, problems = parse_long_chunk(records, names, loto)
    return draws, problems, None, len(records)


def _records(first_line: int, lines: list[str], width: int) -> list[tuple[int, list[str]]]:
    """The lines as the CSV reader gives them in a plain file: split at commas, blank lines
    left out, empty fields beyond the header's width dropped."""
    records = []
    for number, line in enumerate(lines, start=first_line):
        fields = line.split(",")
        if not any(value.strip() for value in fields):
            continue
        while len(fields) > width and not fields[-1].strip():
            fields.pop()
        records.append((number, fields))
    return records


def _checked(lines: list[str], names: list[str], loto: str, spec: LotoSpec | None) -> pl.DataFrame | None:
    """The chunk as output columns when every row passes, else None."""
    width = len(names)
    text = pl.Series("line", lines, dtype=pl.String)
    if (text.str.count_matches(",", literal=True) != width - 1).any():
        return None
    frame = text.str.split_exact(",", width - 1).struct.rename_fields(names).struct.unnest()
    frame = frame.with_columns(pl.lit("").alias(name) for name in LONG_OPTIONAL if name not in names)
    if not ((frame["loto"] == "") | (frame["loto"] == loto)).all():
        return None
    if not all(_good_id(uid, spec) for uid in frame["unique_id"].unique()):
        return None
    stamps = _stamps(frame["ds"].unique().to_list(), spec, loto)
    if stamps is None:
        return None
    numbers = _numbers(frame, spec)
    if numbers is None:
        return None
    return frame.select(
        pl.lit(loto).alias("loto"),
        "unique_id",
        pl.col("ds").replace_strict(stamps, return_dtype=pl.String),
        "y",
        *numbers,
    )


def _good_id(uid: str, spec: LotoSpec | None) -> bool:
    if not uid or len(uid) > NAME_MAX_CHARS or not UID_RE.fullmatch(uid):
        return False
    return spec is None or spec.range_of(uid) is not None


def _stamps(texts: list[str], spec: LotoSpec | None, loto: str) -> dict[str, str] | None:
    """Each distinct ``ds`` text as COPY reads it, or None if one is refused or unusual."""
    first = spec.first_draw if spec else None
    out = {}
    for text in texts:
        stamp = parse_timestamp(text) if text == text.strip() else None
        if stamp is None:
            return None
        if spec is not None:
            stamp = datetime(stamp.year, stamp.month, stamp.day)
        if date_problem(stamp, first, loto) is not None:
            return None
        out[text] = stamp.isoformat(sep=" ")
    return out


def _numbers(frame: pl.DataFrame, spec: LotoSpec | None) -> list[pl.Expr] | None:
    """The expressions of ``y``, ``num`` and ``co`` when every value is plain and in range."""
    num, co = frame["num"], frame["co"]
    plain = (
        frame["y"].str.contains(_Y_PLAIN).all()
        and ((num == "") | num.str.contains(_NUM_PLAIN)).all()
        and ((co == "") | co.str.contains(_CO_PLAIN)).all()
    )
    if not plain:
        return None
    num_value = pl.when(pl.col("num") != "").then(pl.col("num").cast(pl.Int64))
    num_fits = ((num_value >= 1) & (num_value <= INT32_MAX)) | num_value.is_null()
    if not frame.select(num_fits).to_series().all():
        return None
    if spec is not None and not _in_position_ranges(frame, spec):
        return None
    co_value = pl.when(pl.col("co") != "").then(pl.col("co").cast(pl.Int64))
    return [num_value.alias("num"), co_value.alias("co")]


def _in_position_ranges(frame: pl.DataFrame, spec: LotoSpec) -> bool:
    """Every ``y`` a whole number within its position's range."""
    y = pl.col("y").cast(pl.Float64)
    ranges = spec.position_ranges
    low = pl.col("unique_id").replace_strict({uid: pair[0] for uid, pair in ranges.items()}, default=None)
    high = pl.col("unique_id").replace_strict({uid: pair[1] for uid, pair in ranges.items()}, default=None)
    inside = (y == y.floor()) & (y >= low) & (y <= high)
    return frame.select(inside.fill_null(False)).to_series().all()


def _pandas(checked: pl.DataFrame) -> pd.DataFrame:
    """The checked rows built as ``parse_long_chunk`` builds its own, so the dtypes agree: the
    integers as pandas' nullable Int64 (no float on the way: carry-overs pass 2**53)."""
    integers = {
        name: pd.arrays.IntegerArray(
            checked[name].fill_null(0).to_numpy().astype(np.int64), checked[name].is_null().to_numpy()
        )
        for name in ("num", "co")
    }
    return pd.DataFrame(
        {
            "loto": checked["loto"][0],
            "unique_id": pd.Series(checked["unique_id"].to_numpy(), dtype=object),
            "ds": checked["ds"].to_list(),
            "y": pd.Series(checked["y"].to_numpy(), dtype=object),
            **integers,
            "line": checked["line"].to_numpy().astype(np.int64),
        },
        columns=DRAW_COLUMNS,
    )
