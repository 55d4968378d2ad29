"""Entity rows of a training set: read from a CSV or Parquet file or taken from a frame, and checked.

A bad row is refused with :class:`TrainingSetError`, one line naming its place: a file's line
(counted from 1 with the header) or a Parquet file's or a frame's row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ENTITY_COLUMNS = ("loto", "unique_id", "ds")
#: Extensions of the entity and output files, by format.
FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

Where = Callable[[int], str]


class TrainingSetError(ValueError):
    """Bad entities or a missing mart; the message is one line naming the place and the reason.

    ``position`` is the entity's row (from 0) when one row is at fault, so that a caller that
    read the entities from a file can name the file's line instead (:func:`at_place`).
    """

    def __init__(self, message: str, *, position: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.reason = reason or message


def frame_row(position: int) -> str:
    """The place of an entity of a frame: its row, counted from 1."""
    return f"entities row {position + 1}"


def csv_line(path: Path) -> Where:
    """The place of an entity of a CSV file: its line, counted from 1 with the header."""
    return lambda position: f"{path}: line {position + 2}"


def parquet_row(path: Path) -> Where:
    """The place of an entity of a Parquet file: its row, counted from 1."""
    return lambda position: f"{path}: row {position + 1}" if position >= 0 else f"{path}: schema"


def file_places(path: Path) -> Where:
    return csv_line(path) if file_format(path, "--entities") == "csv" else parquet_row(path)


def at_place(exc: TrainingSetError, where: Where) -> TrainingSetError:
    """``exc`` with its entity named by ``where`` (unchanged when no single row is at fault)."""
    if exc.position is None:
        return exc
    return TrainingSetError(f"{where(exc.position)}: {exc.reason}", position=exc.position, reason=exc.reason)


def row_error(where: Where, position: int, reason: str) -> TrainingSetError:
    return TrainingSetError(f"{where(position)}: {reason}", position=position, reason=reason)


def validate_entities(entities: pd.DataFrame, where: Where = frame_row) -> pd.DataFrame:
    """``loto, unique_id, ds`` of ``entities`` checked, ``ds`` as naive UTC timestamps.

    Parameters
    ----------
    entities : pandas.DataFrame
        At least the columns ``loto``, ``unique_id`` and ``ds`` (dates, timestamps or ISO 8601
        text; an offset is converted to UTC).
    where : callable
        Names the place of a row from its position (a file's line, a frame's row).

    Raises
    ------
    TrainingSetError
        A column is missing, a loto or unique_id is empty, or a ds is not a date or time.
    """
    missing = [name for name in ENTITY_COLUMNS if name not in entities.columns]
    if missing:
        raise TrainingSetError(
            f"{where(-1)}: missing column {', '.join(missing)} (the entities need loto, unique_id, ds)"
        )
    frame = entities.loc[:, list(ENTITY_COLUMNS)].reset_index(drop=True)
    for name in ("loto", "unique_id"):
        text = frame[name].astype("string").str.strip()
        empty = text.isna() | (text == "")
        if empty.any():
            raise row_error(where, int(empty.to_numpy().argmax()), f"empty {name}")
        frame[name] = text.astype(object)
    frame["ds"] = _timestamps(frame["ds"], where)
    return frame


def _timestamps(values: pd.Series, where: Where) -> pd.Series:
    """``values`` as naive UTC timestamps; the first one that is not a time is refused."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        text = values.astype("string").str.strip()
        empty = text.isna() | (text == "")
        if empty.any():
            raise row_error(where, int(empty.to_numpy().argmax()), "empty ds")
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
        bad = parsed.isna()
        if bad.any():
            position = int(bad.to_numpy().argmax())
            raise row_error(where, position, f"ds {text.iloc[position]!r} is not a date or time")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    if parsed.isna().any():
        raise row_error(where, int(parsed.isna().to_numpy().argmax()), "empty ds")
    return parsed.astype("datetime64[us]")


def file_format(path: Path, what: str) -> str:
    """``csv`` or ``parquet`` from ``path``'s extension; anything else is refused."""
    kind = FILE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise TrainingSetError(
            f"{what} {path}: unknown extension {path.suffix or '(none)'!r}; use .csv or .parquet"
        )
    return kind


def read_entities(path: Path) -> pd.DataFrame:
    """The entity file at ``path`` (CSV or Parquet), checked by :func:`validate_entities`.

    A CSV's places are its lines, counted from 1 with the header; a Parquet file's are rows.

    Raises
    ------
    TrainingSetError
        Unknown extension, unreadable or empty file, no rows, or a bad row.
    """
    kind = file_format(path, "--entities")
    if not path.is_file():
        raise TrainingSetError(f"--entities {path}: no such file")
    frame = _read_csv(path) if kind == "csv" else _read_parquet(path)
    where = file_places(path)
    if frame.empty and set(ENTITY_COLUMNS) <= set(frame.columns):
        raise TrainingSetError(f"{where(0)}: no entity rows")
    return validate_entities(frame, where)


def _read_csv(path: Path) -> pd.DataFrame:
    # Read without a header so that pandas refuses a line with more fields than the first
    # (with a header it would take the extra field as an index and shift every column).
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise TrainingSetError(f"{path}: line 1: empty file (expected a header loto,unique_id,ds)") from None
    except pd.errors.ParserError as exc:
        # pandas names the line ("Expected 3 fields in line 5, saw 4"): that is the reason.
        reason = str(exc).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        fields = re.fullmatch(r"Expected (\d+) fields in line (\d+), saw (\d+)\.?", reason.strip())
        if fields:
            expected, line, seen = fields.groups()
            reason = f"line {line}: {seen} fields, the header has {expected}"
        raise TrainingSetError(f"{path}: {reason.rstrip('.')}") from None
    except UnicodeDecodeError as exc:
        raise TrainingSetError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = [str(name).strip() for name in raw.iloc[0]]
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise TrainingSetError(f"{path}: empty file")
    try:
        return _parquet_module(path).read_parquet(path)
    except TrainingSetError:
        raise
    except Exception as exc:  # each engine raises its own types for a damaged file
        raise TrainingSetError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None


def _parquet_module(path: Path):
    """pandas when pyarrow is installed, else polars (the dev extra), else a one-line refusal."""
    try:
        import pyarrow  # noqa: F401

        return pd
    except ImportError:
        pass
    try:
        import polars
    except ImportError:
        raise TrainingSetError(
            f"{path}: Parquet needs pyarrow (or polars): pip install pyarrow, or use a .csv file"
        ) from None

    class _Polars:
        @staticmethod
        def read_parquet(target: Path) -> pd.DataFrame:
            frame = polars.read_parquet(target)
            return pd.DataFrame({name: frame[name].to_numpy() for name in frame.columns})

    return _Polars


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as CSV or Parquet, by ``path``'s extension."""
    kind = file_format(path, "--out")
    if kind == "csv":
        frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
        return
    module = _parquet_module(path)
    if module is pd:
        frame.to_parquet(path, index=False)
    else:
        import polars

        polars.DataFrame([_polars_column(name, column) for name, column in frame.items()]).write_parquet(path)


def _polars_column(name: str, column: pd.Series):
    """``column`` for polars without pyarrow: NumPy values, a nullable one as a masked array."""
    import numpy as np
    import polars

    if pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
        values = column.astype(object).where(column.notna(), None).tolist()
        return polars.Series(name, values, dtype=polars.String)
    if isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        kind = bool if column.dtype == "boolean" else np.int64
        values = column.to_numpy(dtype=kind, na_value=kind(0))
        return polars.Series(name, np.ma.masked_array(values, mask=column.isna().to_numpy()))
    return polars.Series(name, column.to_numpy())
