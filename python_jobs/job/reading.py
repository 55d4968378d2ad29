"""Reading for the feature job: change detection, then the changed series by binary COPY.

One aggregate query gives every series' row count, last date and checksum, so a job with
nothing new reads no draws at all. The series that changed are then read in batches with
``COPY (...) TO STDOUT (FORMAT BINARY)``: the server packs each series into two byte strings
parsed by NumPy in one call, so memory holds one batch of series at a time.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from python_jobs import config, db
from python_jobs.job.errors import JobIOError
from python_jobs.job.pgcopy import EPOCH_US, HEADER, TRAILER
from python_jobs.job.tables import STATE_TABLE, table

# The checksum of a series, computed in SQL both for the whole series and for a prefix of it:
# the exact sum of a 64-bit hash of each y seeded with a hash of its timestamp, so a changed,
# added, removed or moved draw changes it. A sum needs no sort and no text conversion of each value (an md5
# of the series as text cost four times as much), and a prefix's checksum is the same sum
# over fewer rows. Equal numbers hash equally (1 and 1.0 are one value).
_CHECKSUM = "sum(hash_numeric_extended(d.y, timestamp_hash_extended(d.ds, 0)))::text"


@dataclass(frozen=True)
class SeriesInfo:
    """What the database says about one series before anything is read."""

    loto: str
    unique_id: str
    n_rows: int
    max_ds: dt.datetime
    checksum: str


@dataclass(frozen=True)
class StateRow:
    """What was computed last time for one (series, family)."""

    feature_version: str
    n_rows: int
    max_ds: dt.datetime | None
    checksum: str | None
    status: str


@dataclass
class SeriesData:
    """One series as the families see it: ``y`` in ``ds`` order."""

    loto: str
    unique_id: str
    ds: np.ndarray  # datetime64[us]: naive UTC, midnight for a lottery
    y: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.y)


def series_summary(conn: psycopg.Connection) -> list[SeriesInfo]:
    """Every series of the staging model with its row count, last date and checksum."""
    if not db.table_exists(conn, config.STAGING_MODEL):
        raise JobIOError(
            f"{config.target_schema()}.{config.STAGING_MODEL} does not exist: load data and build "
            "staging first (`loto-features ingest --loto NAME FILE`, then `loto-features build`, "
            "or `make demo`)"
        )
    query = sql.SQL(
        "select d.loto, d.unique_id, count(*)::int, max(d.ds), " + _CHECKSUM + " "
        "from {} as d group by d.loto, d.unique_id order by d.loto, d.unique_id"
    ).format(table(config.STAGING_MODEL))
    return [SeriesInfo(*row) for row in conn.execute(query).fetchall()]


def load_state(conn: psycopg.Connection, families: Sequence[str]) -> dict[tuple[str, str, str], StateRow]:
    rows = conn.execute(
        sql.SQL(
            "select loto, unique_id, family, feature_version, n_rows, max_ds, checksum, status "
            "from {} where family = any(%s)"
        ).format(table(STATE_TABLE)),
        (list(families),),
    ).fetchall()
    return {(row[0], row[1], row[2]): StateRow(*row[3:]) for row in rows}


def prefix_checksums(
    conn: psycopg.Connection, items: Sequence[tuple[str, str, dt.datetime]], chunk: int = 5000
) -> list[str | None]:
    """Checksum of each series' rows with ``ds <= cutoff``, in the order of ``items``."""
    out: list[str | None] = [None] * len(items)
    # Lateral, so that each series is an index range scan (see read_series).
    query = sql.SQL(
        "select k.idx::int, agg.checksum "
        "from unnest(%s::text[], %s::text[], %s::timestamp[]) "
        "with ordinality as k (loto, unique_id, cutoff, idx) "
        "cross join lateral (select " + _CHECKSUM + " as checksum from {} as d "
        "where d.loto = k.loto and d.unique_id = k.unique_id and d.ds <= k.cutoff) as agg"
    ).format(table(config.STAGING_MODEL))
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        rows = conn.execute(
            query, ([i[0] for i in part], [i[1] for i in part], [i[2] for i in part])
        ).fetchall()
        for idx, checksum in rows:
            out[start + idx - 1] = checksum
    return out


def parse_read_copy(data: bytes | bytearray | memoryview) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The rows of a binary COPY of (int4 sid, bytea timestamps, bytea values), decoded.

    The two byte strings are a series' ``timestamp_send`` timestamps (int8 microseconds since
    2000-01-01) and ``float8send`` values, concatenated in ``ds`` order by the server.
    """
    buf = memoryview(data)
    if len(buf) < len(HEADER) + len(TRAILER) or bytes(buf[:11]) != HEADER[:11]:
        raise JobIOError("unexpected COPY output: not PostgreSQL's binary format")
    pos = 19 + struct.unpack_from(">i", buf, 15)[0]
    out = []
    while True:
        (n_fields,) = struct.unpack_from(">h", buf, pos)
        pos += 2
        if n_fields == -1:
            break
        if n_fields != 3:
            raise JobIOError(f"unexpected COPY output: a row of {n_fields} fields, expected 3")
        fields = []
        for _ in range(3):
            (length,) = struct.unpack_from(">i", buf, pos)
            if length < 0:
                raise JobIOError("unexpected COPY output: a NULL field")
            fields.append(buf[pos + 4 : pos + 4 + length])
            pos += 4 + length
        sid = struct.unpack(">i", fields[0])[0]
        if len(fields[1]) % 8:
            raise JobIOError("unexpected COPY output: timestamps of a length not a multiple of 8")
        micros = np.frombuffer(fields[1], dtype=">i8").astype(np.int64)
        values = np.frombuffer(fields[2], dtype=">f8").astype(np.float64)
        if len(micros) != len(values):
            raise JobIOError("unexpected COPY output: dates and values of different lengths")
        out.append((sid, micros, values))
    return out


def read_series(conn: psycopg.Connection, keys: Sequence[tuple[str, str]]) -> list[SeriesData]:
    """The draws of ``keys`` (in that order), each series in ``ds`` order, by one binary COPY.

    The server packs each series into two byte strings (``timestamp_send`` of the
    timestamps, ``float8send`` of the values, in ``ds`` order), so the COPY carries one message
    per series instead of one per draw and NumPy decodes each in a single call.
    """
    # A lateral subquery per series is always an index range scan; a plain join of a few
    # hundred keys is planned as a scan of the whole staging model, once per batch.
    query = sql.SQL(
        "copy (select k.sid::int4, agg.ds, agg.y "
        "from unnest(%s::text[], %s::text[]) with ordinality as k (loto, unique_id, sid) "
        "cross join lateral ("
        "select string_agg(timestamp_send(d.ds), ''::bytea order by d.ds) as ds, "
        "string_agg(float8send(coalesce(d.y::float8, 'NaN'::float8)), ''::bytea order by d.ds) as y "
        "from {} as d where d.loto = k.loto and d.unique_id = k.unique_id"
        ") as agg where agg.ds is not null) to stdout (format binary)"
    ).format(table(config.STAGING_MODEL))
    data = bytearray()
    with conn.cursor() as cur, cur.copy(query, ([k[0] for k in keys], [k[1] for k in keys])) as copy:
        for chunk in copy:
            data += chunk
    found = {sid: (days, values) for sid, days, values in parse_read_copy(data)}
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
    out = []
    for i, (loto, uid) in enumerate(keys, start=1):
        micros, values = found.get(i, empty)
        out.append(SeriesData(loto, uid, EPOCH_US + micros.astype("timedelta64[us]"), values))
    return out
