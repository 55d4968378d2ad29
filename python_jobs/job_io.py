"""Database side of the feature job: tables, change detection, COPY in, COPY out, run records.

Reading: one aggregate query gives every series' row count, last date and checksum, so a job
with nothing new reads no draws at all. The series that changed are then read in batches with
``COPY (...) TO STDOUT (FORMAT BINARY)``: fixed-width rows (series index, date, value) parsed
by NumPy in one call, so memory holds one batch of series at a time.

Writing: each batch goes to temporary tables by binary ``COPY ... FROM STDIN`` (built by NumPy,
no per-value Python work) and into the job's tables set-wise: ``insert ... on conflict do
update`` for the per-series rows, and for the per-draw rows the same upsert done as joins (see
:func:`_write_hist` for why). Rows whose values did not change are not rewritten. Everything
of a batch, its bookkeeping rows included, is one transaction, so a run that dies half-way
leaves every finished batch complete and every other series still marked as to do.

Transient errors (connection lost, serialization failure, deadlock) are retried through
:func:`python_jobs.db.retry`, each attempt on a fresh connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import psycopg
from psycopg import sql

from python_jobs import config, db
from python_jobs.log import get_logger

log = get_logger(__name__)
T = TypeVar("T")

STAT_TABLE = "py_features_stat"
HIST_TABLE = "py_features_hist"
RUNS_TABLE = "py_job_runs"
ERRORS_TABLE = "py_job_errors"
STATE_TABLE = "py_job_state"
JOB_TABLES = (STAT_TABLE, HIST_TABLE, RUNS_TABLE, ERRORS_TABLE, STATE_TABLE)

# PostgreSQL's binary COPY: signature, flags, header extension length; a tuple count of -1 ends it.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_PG_EPOCH = np.datetime64("2000-01-01", "D")
# Postgres identifiers longer than this are silently truncated, which would merge columns.
MAX_IDENTIFIER = 63

# The checksum of a series, computed in SQL both for the whole series and for a prefix of it.
_CHECKSUM = "md5(string_agg(d.ds::text || ':' || d.y::text, ',' order by d.ds))"

_BASE_DDL = """
create table if not exists {stat} (
    loto text not null,
    unique_id text not null,
    computed_at timestamptz,
    primary key (loto, unique_id)
);
create table if not exists {hist} (
    loto text not null,
    unique_id text not null,
    ds date not null,
    computed_at timestamptz,
    primary key (loto, unique_id, ds)
);
create table if not exists {runs} (
    run_id text primary key,
    started_at timestamptz not null,
    finished_at timestamptz,
    status text not null,
    device text,
    scheduler text,
    families text[],
    feature_version text,
    series_total integer,
    series_computed integer,
    series_failed integer,
    rows_written bigint,
    seconds_per_family jsonb,
    seconds_total double precision,
    error text
);
create table if not exists {errors} (
    run_id text not null,
    loto text not null,
    unique_id text not null,
    family text not null,
    error text not null,
    recorded_at timestamptz not null default now(),
    primary key (run_id, loto, unique_id, family)
);
create table if not exists {state} (
    loto text not null,
    unique_id text not null,
    family text not null,
    feature_version text not null,
    n_rows integer not null,
    max_ds date,
    checksum text,
    status text not null,
    run_id text,
    computed_at timestamptz not null,
    primary key (loto, unique_id, family)
);
"""


class JobIOError(RuntimeError):
    """A problem with the job's input or tables; the message says what to do."""


@dataclass(frozen=True)
class SeriesInfo:
    """What the database says about one series before anything is read."""

    loto: str
    unique_id: str
    n_rows: int
    max_ds: dt.date
    checksum: str


@dataclass(frozen=True)
class StateRow:
    """What was computed last time for one (series, family)."""

    feature_version: str
    n_rows: int
    max_ds: dt.date | None
    checksum: str | None
    status: str


@dataclass
class SeriesData:
    """One series as the families see it: ``y`` in ``ds`` order."""

    loto: str
    unique_id: str
    ds: np.ndarray  # datetime64[D]
    y: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class BatchWrite:
    """Everything one batch writes, in one transaction.

    ``stat_values`` is (series, stat columns); ``hist_values`` is (rows, hist columns) for the
    rows of ``series`` in order, each series cut to ``ds > cutoffs[i]`` where a cutoff is set.
    """

    run_id: str
    series: list[SeriesData]
    cutoffs: list[dt.date | None]
    stat_columns: list[str]
    stat_values: np.ndarray | None
    hist_columns: list[str]
    hist_values: np.ndarray | None
    state: list[tuple[str, str, str, str, int, dt.date, str | None, str]]
    errors: list[tuple[str, str, str, str]]


def target_schema() -> str:
    return config.target_schema()


def _table(name: str) -> sql.Composed:
    return db.qualified(name)


def _ident_list(names: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    conn = db.connect(url, autocommit=autocommit)
    # Dates as ISO text in checksums, whatever the server's default DateStyle.
    conn.execute("set datestyle to 'ISO, YMD'")
    if not autocommit:
        conn.commit()
    return conn


class Session:
    """A connection that is reopened after a transient error, with the work retried on it.

    ``on_connect`` runs on every new connection (e.g. to take the job's lock again: a lock
    held by a dead session is gone with it).
    """

    def __init__(
        self,
        url: str,
        *,
        autocommit: bool = False,
        on_connect: Callable[[psycopg.Connection], None] | None = None,
    ):
        self.url = url
        self.autocommit = autocommit
        self.on_connect = on_connect
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.reset()
            conn = connect(self.url, autocommit=self.autocommit)
            if self.on_connect is not None:
                self.on_connect(conn)
            self._conn = conn
        return self._conn

    def run(self, fn: Callable[[psycopg.Connection], T], what: str) -> T:
        def attempt() -> T:
            conn = self.connection()
            try:
                return fn(conn)
            except db.TRANSIENT_ERRORS:
                self.reset()
                raise

        return db.retry(attempt, what=what)

    def reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self.reset()


# -- tables -------------------------------------------------------------------------------------


def check_identifiers(columns: Iterable[str]) -> None:
    too_long = [name for name in columns if len(name.encode()) > MAX_IDENTIFIER]
    if too_long:
        raise JobIOError(
            f"feature column names longer than {MAX_IDENTIFIER} bytes would be truncated by PostgreSQL: "
            f"{too_long}; shorten them in the family's outputs()"
        )


def existing_columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
        "order by ordinal_position",
        (target_schema(), table),
    ).fetchall()
    return [row[0] for row in rows]


def ensure_tables(conn: psycopg.Connection, stat_columns: Sequence[str], hist_columns: Sequence[str]) -> None:
    """Create the job's tables if missing and add the feature columns they lack.

    The dbt hook ``create_python_job_tables`` makes the same tables (with every registered
    column) so the marts build before the job ever ran; this makes the job independent of it.
    Columns are only altered when some are missing: ``alter table`` takes an exclusive lock.
    """
    check_identifiers([*stat_columns, *hist_columns])
    with conn.transaction():
        db.ensure_schema(conn)
        conn.execute(
            sql.SQL(_BASE_DDL).format(
                stat=_table(STAT_TABLE),
                hist=_table(HIST_TABLE),
                runs=_table(RUNS_TABLE),
                errors=_table(ERRORS_TABLE),
                state=_table(STATE_TABLE),
            )
        )
        for table, wanted in ((STAT_TABLE, stat_columns), (HIST_TABLE, hist_columns)):
            have = set(existing_columns(conn, table))
            missing = [col for col in wanted if col not in have]
            if missing:
                conn.execute(
                    sql.SQL("alter table {} {}").format(
                        _table(table),
                        sql.SQL(", ").join(
                            sql.SQL("add column if not exists {} double precision").format(
                                sql.Identifier(col)
                            )
                            for col in missing
                        ),
                    )
                )
                log.info("job.columns_added", table=table, columns=len(missing))


def lock_schema(conn: psycopg.Connection) -> None:
    """Hold a session lock so two jobs on one schema run one after the other, not interleaved."""
    key = f"loto_features.py_job.{target_schema()}"
    got = conn.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()
    if not (got and got[0]):
        log.info("job.waiting_for_lock", schema=target_schema())
        conn.execute("select pg_advisory_lock(hashtextextended(%s, 0))", (key,))


# -- change detection ---------------------------------------------------------------------------


def series_summary(conn: psycopg.Connection) -> list[SeriesInfo]:
    """Every series of the staging model with its row count, last date and checksum."""
    if not db.table_exists(conn, config.STAGING_MODEL):
        raise JobIOError(
            f"{target_schema()}.{config.STAGING_MODEL} does not exist: load data and build staging first "
            "(`python -m python_jobs ingest ...` then `dbt build --select staging`, or `make demo`)"
        )
    query = sql.SQL(
        "select d.loto, d.unique_id, count(*)::int, max(d.ds), " + _CHECKSUM + " "
        "from {} as d group by d.loto, d.unique_id order by d.loto, d.unique_id"
    ).format(_table(config.STAGING_MODEL))
    return [SeriesInfo(*row) for row in conn.execute(query).fetchall()]


def load_state(conn: psycopg.Connection, families: Sequence[str]) -> dict[tuple[str, str, str], StateRow]:
    rows = conn.execute(
        sql.SQL(
            "select loto, unique_id, family, feature_version, n_rows, max_ds, checksum, status "
            "from {} where family = any(%s)"
        ).format(_table(STATE_TABLE)),
        (list(families),),
    ).fetchall()
    return {(row[0], row[1], row[2]): StateRow(*row[3:]) for row in rows}


def prefix_checksums(
    conn: psycopg.Connection, items: Sequence[tuple[str, str, dt.date]], chunk: int = 5000
) -> list[str | None]:
    """Checksum of each series' rows with ``ds <= cutoff``, in the order of ``items``."""
    out: list[str | None] = [None] * len(items)
    # Lateral, so that each series is an index range scan (see read_series).
    query = sql.SQL(
        "select k.idx::int, agg.checksum "
        "from unnest(%s::text[], %s::text[], %s::date[]) with ordinality as k (loto, unique_id, cutoff, idx) "
        "cross join lateral (select " + _CHECKSUM + " as checksum from {} as d "
        "where d.loto = k.loto and d.unique_id = k.unique_id and d.ds <= k.cutoff) as agg"
    ).format(_table(config.STAGING_MODEL))
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        rows = conn.execute(
            query, ([i[0] for i in part], [i[1] for i in part], [i[2] for i in part])
        ).fetchall()
        for idx, checksum in rows:
            out[start + idx - 1] = checksum
    return out


def delete_series(conn: psycopg.Connection, keys: Sequence[tuple[str, str]]) -> None:
    """Drop every output and bookkeeping row of series that left the staging model."""
    if not keys:
        return
    lotos, uids = [k[0] for k in keys], [k[1] for k in keys]
    with conn.transaction():
        for table in (STAT_TABLE, HIST_TABLE, STATE_TABLE):
            conn.execute(
                sql.SQL(
                    "delete from {} as t using unnest(%s::text[], %s::text[]) as k (loto, unique_id) "
                    "where t.loto = k.loto and t.unique_id = k.unique_id"
                ).format(_table(table)),
                (lotos, uids),
            )
    log.info("job.series_removed", series=len(keys))


# -- reading ------------------------------------------------------------------------------------


def parse_read_copy(data: bytes | bytearray | memoryview) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The rows of a binary COPY of (int4 sid, bytea dates, bytea values), decoded.

    The two byte strings are a series' ``int4send`` dates (days since 2000-01-01) and
    ``float8send`` values, concatenated in ``ds`` order by the server.
    """
    buf = memoryview(data)
    if len(buf) < len(_COPY_HEADER) + len(_COPY_TRAILER) or bytes(buf[:11]) != _COPY_HEADER[:11]:
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
        days = np.frombuffer(fields[1], dtype=">i4").astype(np.int32)
        values = np.frombuffer(fields[2], dtype=">f8").astype(np.float64)
        if len(days) != len(values):
            raise JobIOError("unexpected COPY output: dates and values of different lengths")
        out.append((sid, days, values))
    return out


def read_series(conn: psycopg.Connection, keys: Sequence[tuple[str, str]]) -> list[SeriesData]:
    """The draws of ``keys`` (in that order), each series in ``ds`` order, by one binary COPY.

    The server packs each series into two byte strings (``int4send`` of the dates,
    ``float8send`` of the values, in ``ds`` order), so the COPY carries one message per
    series instead of one per draw and NumPy decodes each in a single call.
    """
    # A lateral subquery per series is always an index range scan; a plain join of a few
    # hundred keys is planned as a scan of the whole staging model, once per batch.
    query = sql.SQL(
        "copy (select k.sid::int4, agg.ds, agg.y "
        "from unnest(%s::text[], %s::text[]) with ordinality as k (loto, unique_id, sid) "
        "cross join lateral ("
        "select string_agg(int4send(d.ds - date '2000-01-01'), ''::bytea order by d.ds) as ds, "
        "string_agg(float8send(coalesce(d.y::float8, 'NaN'::float8)), ''::bytea order by d.ds) as y "
        "from {} as d where d.loto = k.loto and d.unique_id = k.unique_id"
        ") as agg where agg.ds is not null) to stdout (format binary)"
    ).format(_table(config.STAGING_MODEL))
    data = bytearray()
    with conn.cursor() as cur, cur.copy(query, ([k[0] for k in keys], [k[1] for k in keys])) as copy:
        for chunk in copy:
            data += chunk
    found = {sid: (days, values) for sid, days, values in parse_read_copy(data)}
    empty = (np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64))
    out = []
    for i, (loto, uid) in enumerate(keys, start=1):
        days, values = found.get(i, empty)
        out.append(SeriesData(loto, uid, _PG_EPOCH + days.astype("timedelta64[D]"), values))
    return out


# -- writing ------------------------------------------------------------------------------------


def binary_copy_payload(ints: Sequence[np.ndarray], floats: np.ndarray) -> bytes:
    """Binary COPY data of rows (int4 ..., float8 ...); NaN stands for NULL (see :func:`write_batch`)."""
    n_rows = len(floats)
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i in range(len(ints)):
        fields += [(f"li{i}", ">i4"), (f"i{i}", ">i4")]
    for j in range(floats.shape[1]):
        fields += [(f"lf{j}", ">i4"), (f"f{j}", ">f8")]
    rows = np.empty(n_rows, dtype=np.dtype(fields))
    rows["n"] = len(ints) + floats.shape[1]
    for i, values in enumerate(ints):
        rows[f"li{i}"] = 4
        rows[f"i{i}"] = values
    clean = np.where(np.isfinite(floats), floats, np.nan)
    for j in range(floats.shape[1]):
        rows[f"lf{j}"] = 8
        rows[f"f{j}"] = clean[:, j]
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def _copy_in(conn: psycopg.Connection, table: str, columns: Sequence[str], payload: bytes) -> None:
    query = sql.SQL("copy {} ({}) from stdin (format binary)").format(
        sql.Identifier(table), _ident_list(columns)
    )
    with conn.cursor() as cur, cur.copy(query) as copy:
        copy.write(payload)


def _stage_table(
    conn: psycopg.Connection, name: str, keys: Sequence[tuple[str, str]], columns: Sequence[str]
) -> None:
    conn.execute(
        sql.SQL("create temp table {} ({}) on commit drop").format(
            sql.Identifier(name),
            sql.SQL(", ").join(
                [sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL(kind)) for col, kind in keys]
                + [sql.SQL("{} double precision").format(sql.Identifier(col)) for col in columns]
            ),
        )
    )


def _upsert(
    conn: psycopg.Connection,
    table: str,
    stage: str,
    grain: Sequence[str],
    columns: Sequence[str],
    key_arrays: tuple[list[str], list[str]],
    now: dt.datetime,
) -> int:
    """One set-based upsert of a stage table (NaN read as NULL) joined to the batch's series keys."""
    extra = [c for c in grain if c not in ("loto", "unique_id")]
    select_cols = [sql.SQL("k.loto"), sql.SQL("k.unique_id")]
    select_cols += [sql.SQL("s.{}").format(sql.Identifier(c)) for c in extra]
    select_cols += [sql.SQL("nullif(s.{}, 'NaN'::float8)").format(sql.Identifier(c)) for c in columns]
    select_cols.append(sql.Placeholder("now"))
    updates = [sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in [*columns, "computed_at"]]
    # Rows whose values are unchanged are left alone (and not counted as written).
    query = sql.SQL(
        "insert into {table} as t ({cols}) "
        "select {select} from {stage} as s "
        "join unnest(%(lotos)s::text[], %(uids)s::text[]) with ordinality as k (loto, unique_id, sid) "
        "on s.sid = k.sid "
        "on conflict ({grain}) do update set {updates} "
        "where ({old}) is distinct from ({new})"
    ).format(
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns),
        new=sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in columns),
        table=_table(table),
        cols=_ident_list([*grain, *columns, "computed_at"]),
        select=sql.SQL(", ").join(select_cols),
        stage=sql.Identifier(stage),
        grain=_ident_list(grain),
        updates=sql.SQL(", ").join(updates),
    )
    cur = conn.execute(query, {"lotos": key_arrays[0], "uids": key_arrays[1], "now": now})
    return max(cur.rowcount, 0)


def write_batch(conn: psycopg.Connection, batch: BatchWrite) -> dict[str, int]:
    """Write one batch: stat rows, hist rows, bookkeeping and errors, in one transaction.

    Returns the rows written per feature table.
    """
    written = {STAT_TABLE: 0, HIST_TABLE: 0}
    lotos = [s.loto for s in batch.series]
    uids = [s.unique_id for s in batch.series]
    sids = np.arange(1, len(batch.series) + 1, dtype=np.int32)
    with conn.transaction():
        now = conn.execute("select now()").fetchone()[0]
        if batch.stat_values is not None and batch.stat_columns:
            _stage_table(conn, "_py_stat_stage", [("sid", "int4")], batch.stat_columns)
            _copy_in(
                conn,
                "_py_stat_stage",
                ["sid", *batch.stat_columns],
                binary_copy_payload([sids], batch.stat_values),
            )
            written[STAT_TABLE] = _upsert(
                conn,
                STAT_TABLE,
                "_py_stat_stage",
                ["loto", "unique_id"],
                batch.stat_columns,
                (lotos, uids),
                now,
            )
        if batch.hist_values is not None and batch.hist_columns:
            written[HIST_TABLE] = _write_hist(conn, batch, lotos, uids, now)
        if batch.state:
            cols = list(zip(*batch.state, strict=True))
            conn.execute(
                sql.SQL(
                    "insert into {} (loto, unique_id, family, feature_version, n_rows, max_ds, checksum, "
                    "status, run_id, computed_at) "
                    "select k.*, %s, %s from unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
                    "%s::int[], %s::date[], %s::text[], %s::text[]) as k "
                    "on conflict (loto, unique_id, family) do update set "
                    "feature_version = excluded.feature_version, n_rows = excluded.n_rows, "
                    "max_ds = excluded.max_ds, checksum = excluded.checksum, status = excluded.status, "
                    "run_id = excluded.run_id, computed_at = excluded.computed_at"
                ).format(_table(STATE_TABLE)),
                (batch.run_id, now, *[list(c) for c in cols]),
            )
        if batch.errors:
            cols = list(zip(*batch.errors, strict=True))
            conn.execute(
                sql.SQL(
                    "insert into {} (run_id, loto, unique_id, family, error, recorded_at) "
                    "select %s, k.*, %s from unnest(%s::text[], %s::text[], %s::text[], %s::text[]) as k "
                    "on conflict (run_id, loto, unique_id, family) do update set error = excluded.error"
                ).format(_table(ERRORS_TABLE)),
                (batch.run_id, now, *[list(c) for c in cols]),
            )
    return written


def _write_hist(
    conn: psycopg.Connection, batch: BatchWrite, lotos: list[str], uids: list[str], now: dt.datetime
) -> int:
    """The per-draw rows of a batch: one set-based upsert, done as a join instead of row by row.

    ``insert ... on conflict do update`` costs a speculative insertion and an index probe per
    row, several times a plain insert on a (text, text, date) key, and rewrites rows whose
    values did not change. Under the job's schema lock nothing else writes these rows, so the
    upsert is done set-wise: one join updates the rows whose values changed, one anti-join
    inserts the missing ones, and the dates that left a fully rewritten series are deleted.
    A re-computation that gives the same values (a full refresh, a version bump that changes
    nothing) therefore writes nothing, and an appended draw writes one row.

    Returns the rows inserted or changed.
    """
    row_sid, row_ds = [], []
    for i, (series, cutoff) in enumerate(zip(batch.series, batch.cutoffs, strict=True)):
        keep = series.ds > np.datetime64(cutoff, "D") if cutoff is not None else slice(None)
        days = (series.ds[keep] - _PG_EPOCH).astype(np.int32)
        row_sid.append(np.full(len(days), i + 1, dtype=np.int32))
        row_ds.append(days)
    _stage_table(conn, "_py_hist_stage", [("sid", "int4"), ("ds", "date")], batch.hist_columns)
    # A binary date is an int4 of days since 2000-01-01, so dates travel as int4 fields.
    _copy_in(
        conn,
        "_py_hist_stage",
        ["sid", "ds", *batch.hist_columns],
        binary_copy_payload([np.concatenate(row_sid), np.concatenate(row_ds)], batch.hist_values),
    )
    conn.execute(
        "create temp table _py_hist_keys on commit drop as "
        "select k.sid::int4 as sid, k.loto, k.unique_id, k.cutoff "
        "from unnest(%s::text[], %s::text[], %s::date[]) with ordinality as k (loto, unique_id, cutoff, sid)",
        (lotos, uids, batch.cutoffs),
    )
    # Hash joins of a batch fit in memory instead of spilling to disk.
    conn.execute("set local work_mem = '64MB'")
    table = _table(HIST_TABLE)
    columns = batch.hist_columns
    cols = _ident_list(columns)
    # The batch's stored rows (those a cutoff leaves alone excluded), fetched by index once;
    # everything else joins temporary tables only instead of scanning the whole table.
    conn.execute(
        sql.SQL(
            "create temp table _py_hist_old on commit drop as "
            "select k.sid, t.* from _py_hist_keys as k cross join lateral ("
            "select t.ds, {old} from {table} as t where t.loto = k.loto and t.unique_id = k.unique_id "
            "and (k.cutoff is null or t.ds > k.cutoff)) as t"
        ).format(
            table=table, old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns)
        )
    )
    # Temporary tables have no statistics until analysed: the joins below would be planned
    # as nested loops over whole tables. Only the join keys matter, and analysing the feature
    # columns too would cost more than the joins.
    conn.execute("analyze _py_hist_stage (sid, ds)")
    conn.execute("analyze _py_hist_keys (sid)")
    new_values = sql.SQL(", ").join(
        sql.SQL("nullif(s.{}, 'NaN'::float8)").format(sql.Identifier(c)) for c in columns
    )
    insert_all = sql.SQL(
        "insert into {table} (loto, unique_id, ds, {cols}, computed_at) "
        "select k.loto, k.unique_id, s.ds, {new}, %(now)s "
        "from {source} as s join _py_hist_keys as k using (sid) "
    )
    if conn.execute("select not exists (select 1 from _py_hist_old)").fetchone()[0]:
        # Nothing stored yet for these rows (a first run, appended draws): a plain insert.
        return max(
            conn.execute(
                insert_all.format(
                    table=table, cols=cols, new=new_values, source=sql.Identifier("_py_hist_stage")
                ),
                {"now": now},
            ).rowcount,
            0,
        )
    conn.execute("analyze _py_hist_old (sid, ds)")
    # One pass over stage and stored rows finds every row to insert, change or delete; the
    # statements after it touch those rows only, through the primary key.
    conn.execute(
        sql.SQL(
            "create temp table _py_hist_diff on commit drop as "
            "select coalesce(s.sid, o.sid) as sid, coalesce(s.ds, o.ds) as ds, "
            "case when o.sid is null then 'insert' when s.sid is null then 'delete' else 'update' end "
            "as action, {stage_cols} "
            "from _py_hist_stage as s full join _py_hist_old as o on s.sid = o.sid and s.ds = o.ds "
            "where o.sid is null or s.sid is null or ({old}) is distinct from ({new})"
        ).format(
            stage_cols=sql.SQL(", ").join(sql.SQL("s.{0} as {0}").format(sql.Identifier(c)) for c in columns),
            old=sql.SQL(", ").join(sql.SQL("o.{}").format(sql.Identifier(c)) for c in columns),
            new=new_values,
        )
    )
    conn.execute(
        sql.SQL(
            "delete from {table} as t using _py_hist_diff as s join _py_hist_keys as k using (sid) "
            "where s.action = 'delete' and t.loto = k.loto and t.unique_id = k.unique_id and t.ds = s.ds"
        ).format(table=table)
    )
    updated = conn.execute(
        sql.SQL(
            "update {table} as t set ({cols}, computed_at) = ({new}, %(now)s) "
            "from _py_hist_diff as s join _py_hist_keys as k using (sid) "
            "where s.action = 'update' and t.loto = k.loto and t.unique_id = k.unique_id and t.ds = s.ds"
        ).format(table=table, cols=cols, new=new_values),
        {"now": now},
    ).rowcount
    inserted = conn.execute(
        insert_all.format(table=table, cols=cols, new=new_values, source=sql.Identifier("_py_hist_diff"))
        + sql.SQL("where s.action = 'insert'"),
        {"now": now},
    ).rowcount
    return max(updated, 0) + max(inserted, 0)


# -- run records --------------------------------------------------------------------------------


def start_run(
    conn: psycopg.Connection,
    run_id: str,
    *,
    device: str,
    scheduler: str,
    families: list[str],
    feature_version: str,
) -> None:
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "insert into {} (run_id, started_at, status, device, scheduler, families, feature_version) "
                "values (%s, now(), 'running', %s, %s, %s, %s)"
            ).format(_table(RUNS_TABLE)),
            (run_id, device, scheduler, families, feature_version),
        )


def finish_run(conn: psycopg.Connection, run_id: str, **fields: Any) -> None:
    values = dict(fields)
    if "seconds_per_family" in values:
        values["seconds_per_family"] = json.dumps(values["seconds_per_family"])
    assignments = [sql.SQL("finished_at = now()")] + [
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in values
    ]
    with conn.transaction():
        conn.execute(
            sql.SQL("update {} set {} where run_id = {}").format(
                _table(RUNS_TABLE), sql.SQL(", ").join(assignments), sql.Placeholder("run_id")
            ),
            {**values, "run_id": run_id},
        )
