"""PostgreSQL's binary COPY format, built by NumPy and one numba kernel.

The job reads series and writes feature rows in this format: no per-value Python work, and
no text to parse on the server. Two writers:

* :func:`fixed_rows` - rows of int4 (or timestamp) and float8 fields of fixed width, NaN kept
  as NaN (for staging tables that turn NaN into NULL in SQL);
* :func:`feature_rows` - the rows of a feature table as stored, ``(loto, unique_id, ds,
  computed_at, value ...)``, with NULL for every non-finite value: a field of length -1,
  so the rows differ in length and are packed by :func:`_pack_feature_rows`.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Sequence

import numpy as np

from python_jobs.features._numba import njit

# Signature, flags, header extension length; a tuple count of -1 ends the data.
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
# Binary dates are days, and timestamps microseconds, since 2000-01-01.
EPOCH_DATE = np.datetime64("2000-01-01", "D")
EPOCH_US = np.datetime64("2000-01-01", "us")
EPOCH_TIMESTAMP = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def timestamp_micros(stamps: np.ndarray) -> np.ndarray:
    """``datetime64`` values as a binary ``timestamp``: int8 microseconds since 2000-01-01."""
    return (stamps.astype("datetime64[us]") - EPOCH_US).astype(np.int64)


def fixed_rows(ints: Sequence[np.ndarray], floats: np.ndarray) -> bytes:
    """Binary COPY data of rows (int4 ..., float8 ...); a non-finite float becomes NaN.

    A ``datetime64`` array among ``ints`` travels as a ``timestamp`` field (int8 microseconds
    since 2000-01-01, :func:`timestamp_micros`); any other array as int4.
    """
    n_rows = len(floats)
    fields: list[tuple[str, str]] = [("n", ">i2")]
    encoded = [
        timestamp_micros(values) if np.asarray(values).dtype.kind == "M" else values for values in ints
    ]
    widths = [8 if np.asarray(values).dtype.kind == "M" else 4 for values in ints]
    for i, width in enumerate(widths):
        fields += [(f"li{i}", ">i4"), (f"i{i}", f">i{width}")]
    for j in range(floats.shape[1]):
        fields += [(f"lf{j}", ">i4"), (f"f{j}", ">f8")]
    rows = np.empty(n_rows, dtype=np.dtype(fields))
    rows["n"] = len(ints) + floats.shape[1]
    for i, values in enumerate(encoded):
        rows[f"li{i}"] = widths[i]
        rows[f"i{i}"] = values
    clean = np.where(np.isfinite(floats), floats, np.nan)
    for j in range(floats.shape[1]):
        rows[f"lf{j}"] = 8
        rows[f"f{j}"] = clean[:, j]
    return HEADER + rows.tobytes() + TRAILER


@njit(cache=True)
def _put_be(out, pos, value, n_bytes):  # pragma: no cover - compiled
    for k in range(n_bytes):
        out[pos + k] = (value >> (8 * (n_bytes - 1 - k))) & 0xFF
    return pos + n_bytes


@njit(cache=True)
def _pack_feature_rows(
    prefixes, prefix_starts, row_series, row_ds, stamp, bits, finite, out
):  # pragma: no cover
    """Rows into ``out`` from ``pos`` 0; returns the bytes written.

    ``prefixes[prefix_starts[s]:prefix_starts[s + 1]]`` is series ``s``'s field count and key
    fields, already encoded; ``bits`` holds the float8 values' bit patterns.
    """
    pos = 0
    n_rows, n_values = bits.shape
    for r in range(n_rows):
        s = row_series[r]
        for b in range(prefix_starts[s], prefix_starts[s + 1]):
            out[pos] = prefixes[b]
            pos += 1
        pos = _put_be(out, pos, 8, 4)
        pos = _put_be(out, pos, row_ds[r], 8)
        pos = _put_be(out, pos, 8, 4)
        pos = _put_be(out, pos, stamp, 8)
        for j in range(n_values):
            if finite[r, j]:
                pos = _put_be(out, pos, 8, 4)
                pos = _put_be(out, pos, bits[r, j], 8)
            else:
                pos = _put_be(out, pos, 0xFFFFFFFF, 4)
    return pos


def _text_field(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def feature_rows(
    keys: Sequence[tuple[str, str]],
    row_series: np.ndarray,
    row_ds: np.ndarray,
    computed_at: dt.datetime,
    values: np.ndarray,
) -> memoryview:
    """Binary COPY data of ``(loto, unique_id, ds, computed_at, value ...)`` rows.

    Row ``r`` belongs to the series ``keys[row_series[r]]`` and falls on ``row_ds[r]``
    (a ``timestamp``: microseconds since 2000-01-01, :func:`timestamp_micros`); ``values`` is
    (rows, columns). Non-finite values are written as NULL.
    """
    n_fields = 4 + values.shape[1]
    encoded = [struct.pack(">h", n_fields) + _text_field(loto) + _text_field(uid) for loto, uid in keys]
    prefix_starts = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=prefix_starts[1:])
    prefixes = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    values = np.ascontiguousarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    stamp = (computed_at - EPOCH_TIMESTAMP) // dt.timedelta(microseconds=1)
    widest = int(np.diff(prefix_starts).max(initial=0))
    start = len(HEADER)
    out = np.empty(start + len(values) * (widest + 24 + 12 * values.shape[1]) + len(TRAILER), np.uint8)
    out[:start] = np.frombuffer(HEADER, dtype=np.uint8)
    used = start + _pack_feature_rows(
        prefixes,
        prefix_starts,
        np.asarray(row_series, dtype=np.int64),
        np.asarray(row_ds, dtype=np.int64),
        np.int64(stamp),
        values.view(np.uint64),
        finite,
        out[start:],
    )
    out[used : used + len(TRAILER)] = np.frombuffer(TRAILER, dtype=np.uint8)
    return memoryview(out[: used + len(TRAILER)])
