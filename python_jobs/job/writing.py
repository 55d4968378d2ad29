"""Writing for the feature job: a batch by binary COPY into temporary tables, then set-wise.

Each batch goes to temporary tables by binary ``COPY ... FROM STDIN`` (built by NumPy, no
per-value Python work) and into the job's tables set-wise: ``insert ... on conflict do update``
for the per-series rows, and for the per-draw rows the same upsert done as joins (see
:func:`_write_hist` for why). Rows whose values did not change are not rewritten. A run that
loads a table without its key (an empty table, or the table of a full refresh that is swapped
in at the end, :mod:`python_jobs.job.swap`) COPYs the per-draw rows straight into it.
Everything of a batch, its bookkeeping rows included, is one transaction, so a run that dies
half-way leaves every finished batch complete and every other series still marked as to do.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from python_jobs.job import pgcopy, snapshots
from python_jobs.job.reading import SeriesData
from python_jobs.job.session import Session
from python_jobs.job.tables import (
    ERRORS_TABLE,
    FEATURE_TYPE,
    HIST_TABLE,
    STAT_HISTORY_TABLE,
    STAT_TABLE,
    STATE_TABLE,
    ident_list,
)
from python_jobs.job.tables import table as qualified_table

# Temporary tables of one write (dropped at commit).
STAT_STAGE = "_py_stat_stage"
HIST_STAGE = "_py_hist_stage"
HIST_KEYS = "_py_hist_keys"
HIST_OLD = "_py_hist_old"
HIST_DIFF = "_py_hist_diff"


@dataclass
class BatchWrite:
    """Everything one batch writes, in one transaction.

    ``stat_values`` is (series, stat columns); ``hist_values`` is (rows, hist columns) for the
    rows of ``series`` in order, each series cut to ``ds > cutoffs[i]`` where a cutoff is set.
    """

    run_id: str
    series: list[SeriesData]
    cutoffs: list[dt.datetime | None]
    stat_columns: list[str]
    stat_values: np.ndarray | None
    hist_columns: list[str]
    hist_values: np.ndarray | None
    state: list[tuple[str, str, str, str, int, dt.datetime, str | None, str]]
    errors: list[tuple[str, str, str, str]]
    # A table without its key that the hist rows are COPYed into as they are: the empty
    # py_features_hist, or the table a full refresh swaps in (python_jobs.job.swap). None:
    # they are merged into py_features_hist, compared with the stored rows.
    bulk_into: str | None = None
    # The stat families' values per snapshot (py_features_stat_history) and their bookkeeping.
    history: snapshots.HistoryWrite | None = None


def _copy_in(
    conn: psycopg.Connection, table: str | sql.Composable, columns: Sequence[str], payload: bytes | memoryview
) -> None:
    target = sql.Identifier(table) if isinstance(table, str) else table
    query = sql.SQL("copy {} ({}) from stdin (format binary)").format(target, ident_list(columns))
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
                + [sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL(FEATURE_TYPE)) for col in columns]
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
        table=qualified_table(table),
        cols=ident_list([*grain, *columns, "computed_at"]),
        select=sql.SQL(", ").join(select_cols),
        stage=sql.Identifier(stage),
        grain=ident_list(grain),
        updates=sql.SQL(", ").join(updates),
    )
    cur = conn.execute(query, {"lotos": key_arrays[0], "uids": key_arrays[1], "now": now})
    return max(cur.rowcount, 0)


def write_batch(conn: psycopg.Connection, batch: BatchWrite) -> dict[str, int]:
    """Write one batch: stat rows, hist rows, bookkeeping and errors, in one transaction.

    Returns the rows written per feature table.
    """
    written = {STAT_TABLE: 0, HIST_TABLE: 0, STAT_HISTORY_TABLE: 0}
    lotos = [s.loto for s in batch.series]
    uids = [s.unique_id for s in batch.series]
    sids = np.arange(1, len(batch.series) + 1, dtype=np.int32)
    with conn.transaction():
        now = conn.execute("select now()").fetchone()[0]
        if batch.stat_values is not None and batch.stat_columns:
            _stage_table(conn, STAT_STAGE, [("sid", "int4")], batch.stat_columns)
            _copy_in(
                conn,
                STAT_STAGE,
                ["sid", *batch.stat_columns],
                pgcopy.fixed_rows([sids], batch.stat_values),
            )
            written[STAT_TABLE] = _upsert(
                conn,
                STAT_TABLE,
                STAT_STAGE,
                ["loto", "unique_id"],
                batch.stat_columns,
                (lotos, uids),
                now,
            )
        if batch.hist_values is not None and batch.hist_columns:
            written[HIST_TABLE] = _write_hist(conn, batch, lotos, uids, now)
        if batch.history is not None:
            written[STAT_HISTORY_TABLE] = snapshots.write_history(conn, batch.history, batch.run_id, now)
        if batch.state:
            write_state(conn, batch.run_id, now, batch.state)
        if batch.errors:
            _write_errors(conn, batch.run_id, now, batch.errors)
    return written


def write_state(
    conn: psycopg.Connection,
    run_id: str,
    now: dt.datetime,
    rows: Sequence[tuple[str, str, str, str, int, dt.datetime, str | None, str]],
) -> None:
    """Upsert ``py_job_state`` rows ``(loto, unique_id, family, version, n_rows, max_ds, checksum,
    status)`` of run ``run_id`` (inside the caller's transaction)."""
    cols = list(zip(*rows, strict=True))
    conn.execute(
        sql.SQL(
            "insert into {} (loto, unique_id, family, feature_version, n_rows, max_ds, checksum, "
            "status, run_id, computed_at) "
            "select k.*, %s, %s from unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
            "%s::int[], %s::timestamp[], %s::text[], %s::text[]) as k "
            "on conflict (loto, unique_id, family) do update set "
            "feature_version = excluded.feature_version, n_rows = excluded.n_rows, "
            "max_ds = excluded.max_ds, checksum = excluded.checksum, status = excluded.status, "
            "run_id = excluded.run_id, computed_at = excluded.computed_at"
        ).format(qualified_table(STATE_TABLE)),
        (run_id, now, *[list(c) for c in cols]),
    )


def _write_errors(
    conn: psycopg.Connection, run_id: str, now: dt.datetime, rows: Sequence[tuple[str, str, str, str]]
) -> None:
    cols = list(zip(*rows, strict=True))
    conn.execute(
        sql.SQL(
            "insert into {} (run_id, loto, unique_id, family, error, recorded_at) "
            "select %s, k.*, %s from unnest(%s::text[], %s::text[], %s::text[], %s::text[]) as k "
            "on conflict (run_id, loto, unique_id, family) do update set error = excluded.error"
        ).format(qualified_table(ERRORS_TABLE)),
        (run_id, now, *[list(c) for c in cols]),
    )


# The names of the temporary tables of a hist merge, as the SQL of its steps uses them.
_HIST_NAMES = {
    "stage": sql.Identifier(HIST_STAGE),
    "keys": sql.Identifier(HIST_KEYS),
    "old_rows": sql.Identifier(HIST_OLD),
    "diff": sql.Identifier(HIST_DIFF),
}


def _write_hist(
    conn: psycopg.Connection, batch: BatchWrite, lotos: list[str], uids: list[str], now: dt.datetime
) -> int:
    """The per-draw rows of a batch: one set-based upsert, done as a join instead of row by row.

    ``insert ... on conflict do update`` costs a speculative insertion and an index probe per
    row, several times a plain insert on a (text, text, timestamp) key, and rewrites rows whose
    values did not change. Under the job's schema lock nothing else writes these rows, so the
    upsert is done set-wise (:func:`_stage_hist`, :func:`_fetch_stored`, :func:`_diff_hist`,
    :func:`_apply_diff`): one join updates the rows whose values changed, one anti-join
    inserts the missing ones, and the dates that left a fully rewritten series are deleted.
    A re-computation that gives the same values (a version bump that changes nothing)
    therefore writes nothing, and an appended draw writes one row. A table loaded without its
    key (``batch.bulk_into``) takes the rows as they are (:func:`_copy_hist`).

    Returns the rows inserted or changed.
    """
    row_sid, row_ds = _hist_rows(batch)
    if batch.bulk_into is not None:
        return _copy_hist(conn, batch, lotos, uids, row_sid, row_ds, now)
    _stage_hist(conn, batch, lotos, uids, row_sid, row_ds)
    if not _fetch_stored(conn, batch.hist_columns):
        # Nothing stored yet for these rows (a first run, appended draws): a plain insert.
        return _insert_hist(conn, batch.hist_columns, HIST_STAGE, now)
    _diff_hist(conn, batch.hist_columns)
    return _apply_diff(conn, batch.hist_columns, now)


def _hist_rows(batch: BatchWrite) -> tuple[np.ndarray, np.ndarray]:
    """The series number (from 1) and ``ds`` of each hist row: each series after its cutoff."""
    row_sid, row_ds = [], []
    for i, (series, cutoff) in enumerate(zip(batch.series, batch.cutoffs, strict=True)):
        keep = series.ds > np.datetime64(cutoff, "us") if cutoff is not None else slice(None)
        stamps = series.ds[keep].astype("datetime64[us]")
        row_sid.append(np.full(len(stamps), i + 1, dtype=np.int32))
        row_ds.append(stamps)
    if not row_sid:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype="datetime64[us]")
    return np.concatenate(row_sid), np.concatenate(row_ds)


def _copy_hist(
    conn: psycopg.Connection,
    batch: BatchWrite,
    lotos: list[str],
    uids: list[str],
    row_sid: np.ndarray,
    row_ds: np.ndarray,
    now: dt.datetime,
) -> int:
    """The rows straight into a table without its key, NULLs and all, by one binary COPY."""
    _copy_in(
        conn,
        qualified_table(batch.bulk_into),
        ["loto", "unique_id", "ds", "computed_at", *batch.hist_columns],
        pgcopy.feature_rows(
            list(zip(lotos, uids, strict=True)),
            row_sid - 1,
            pgcopy.timestamp_micros(row_ds),
            now,
            batch.hist_values,
        ),
    )
    return len(batch.hist_values)


def _stage_hist(
    conn: psycopg.Connection,
    batch: BatchWrite,
    lotos: list[str],
    uids: list[str],
    row_sid: np.ndarray,
    row_ds: np.ndarray,
) -> None:
    """The batch's rows and series keys (with their cutoffs) into analysed temporary tables."""
    _stage_table(conn, HIST_STAGE, [("sid", "int4"), ("ds", "timestamp")], batch.hist_columns)
    # A binary timestamp is an int8 of microseconds since 2000-01-01 (pgcopy.fixed_rows).
    _copy_in(
        conn,
        HIST_STAGE,
        ["sid", "ds", *batch.hist_columns],
        pgcopy.fixed_rows([row_sid, row_ds], batch.hist_values),
    )
    conn.execute(
        sql.SQL(
            "create temp table {keys} on commit drop as "
            "select k.sid::int4 as sid, k.loto, k.unique_id, k.cutoff "
            "from unnest(%s::text[], %s::text[], %s::timestamp[]) "
            "with ordinality as k (loto, unique_id, cutoff, sid)"
        ).format(**_HIST_NAMES),
        (lotos, uids, batch.cutoffs),
    )
    # Hash joins of a batch fit in memory instead of spilling to disk.
    conn.execute("set local work_mem = '64MB'")
    # Temporary tables have no statistics until analysed: the joins would be planned as
    # nested loops over whole tables. Only the join keys matter, and analysing the feature
    # columns too would cost more than the joins.
    conn.execute(sql.SQL("analyze {stage} (sid, ds)").format(**_HIST_NAMES))
    conn.execute(sql.SQL("analyze {keys} (sid)").format(**_HIST_NAMES))


def _fetch_stored(conn: psycopg.Connection, columns: Sequence[str]) -> bool:
    """The batch's stored rows (those a cutoff leaves alone excluded), fetched by index once.

    Every later step joins temporary tables only instead of scanning the whole table.
    Returns whether any row is stored.
    """
    conn.execute(
        sql.SQL(
            "create temp table {old_rows} on commit drop as "
            "select k.sid, t.* from {keys} as k cross join lateral ("
            "select t.ds, {old} from {table} as t where t.loto = k.loto and t.unique_id = k.unique_id "
            "and (k.cutoff is null or t.ds > k.cutoff)) as t"
        ).format(
            old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns),
            table=qualified_table(HIST_TABLE),
            **_HIST_NAMES,
        )
    )
    if conn.execute(sql.SQL("select not exists (select 1 from {old_rows})").format(**_HIST_NAMES)).fetchone()[
        0
    ]:
        return False
    conn.execute(sql.SQL("analyze {old_rows} (sid, ds)").format(**_HIST_NAMES))
    return True


def _new_values(columns: Sequence[str]) -> sql.Composable:
    """The stage's values of ``columns`` as stored: NaN read as NULL."""
    return sql.SQL(", ").join(
        sql.SQL("nullif(s.{}, 'NaN'::float8)").format(sql.Identifier(c)) for c in columns
    )


def _insert_hist(
    conn: psycopg.Connection, columns: Sequence[str], source: str, now: dt.datetime, action: str | None = None
) -> int:
    """Insert the rows of ``source`` (the stage, or the diff's rows of ``action``)."""
    query = sql.SQL(
        "insert into {table} (loto, unique_id, ds, {cols}, computed_at) "
        "select k.loto, k.unique_id, s.ds, {new}, %(now)s "
        "from {source} as s join {keys} as k using (sid)"
    ).format(
        table=qualified_table(HIST_TABLE),
        cols=ident_list(columns),
        new=_new_values(columns),
        source=sql.Identifier(source),
        **_HIST_NAMES,
    )
    if action is not None:
        query += sql.SQL(" where s.action = %(action)s")
    return max(conn.execute(query, {"now": now, "action": action}).rowcount, 0)


def _diff_hist(conn: psycopg.Connection, columns: Sequence[str]) -> None:
    """One pass over the stage and the stored rows: every row to insert, change or delete.

    The statements after it touch those rows only, through the primary key.
    """
    conn.execute(
        sql.SQL(
            "create temp table {diff} on commit drop as "
            "select coalesce(s.sid, o.sid) as sid, coalesce(s.ds, o.ds) as ds, "
            "case when o.sid is null then 'insert' when s.sid is null then 'delete' else 'update' end "
            "as action, {stage_cols} "
            "from {stage} as s full join {old_rows} as o on s.sid = o.sid and s.ds = o.ds "
            "where o.sid is null or s.sid is null or ({old}) is distinct from ({new})"
        ).format(
            stage_cols=sql.SQL(", ").join(sql.SQL("s.{0} as {0}").format(sql.Identifier(c)) for c in columns),
            old=sql.SQL(", ").join(sql.SQL("o.{}").format(sql.Identifier(c)) for c in columns),
            new=_new_values(columns),
            **_HIST_NAMES,
        )
    )


def _apply_diff(conn: psycopg.Connection, columns: Sequence[str], now: dt.datetime) -> int:
    """Delete, update and insert the diff's rows; returns the rows changed or inserted."""
    names = {**_HIST_NAMES, "table": qualified_table(HIST_TABLE)}
    conn.execute(
        sql.SQL(
            "delete from {table} as t using {diff} as s join {keys} as k using (sid) "
            "where s.action = 'delete' and t.loto = k.loto and t.unique_id = k.unique_id and t.ds = s.ds"
        ).format(**names)
    )
    updated = conn.execute(
        sql.SQL(
            "update {table} as t set ({cols}, computed_at) = ({new}, %(now)s) "
            "from {diff} as s join {keys} as k using (sid) "
            "where s.action = 'update' and t.loto = k.loto and t.unique_id = k.unique_id and t.ds = s.ds"
        ).format(cols=ident_list(columns), new=_new_values(columns), **names),
        {"now": now},
    ).rowcount
    return max(updated, 0) + _insert_hist(conn, columns, HIST_DIFF, now, action="insert")


class WriteQueue:
    """Writes batches on one background thread while the next batch is computed.

    The database does the writing in its own process, so on a single machine computing and
    writing overlap instead of taking turns. At most ``depth`` writes wait; results come back
    in order, and an error is raised at the next ``put`` or ``drain``. ``write_batch`` is
    looked up at each call, so a test can wrap it.
    """

    def __init__(self, session: Session, depth: int = 2):
        self._session = session
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="py-job-writer")
        self._pending: deque[tuple[Future, Callable[[dict[str, int]], None]]] = deque()
        self._depth = depth
        # Seconds the writer thread spent writing, and the caller spent waiting for it.
        self.busy_seconds = 0.0
        self.wait_seconds = 0.0

    def _write(self, write: BatchWrite) -> dict[str, int]:
        start = time.perf_counter()
        try:
            return self._session.run(lambda conn: write_batch(conn, write), "write batch")
        finally:
            self.busy_seconds += time.perf_counter() - start

    def put(self, write: BatchWrite, done: Callable[[dict[str, int]], None]) -> None:
        future = self._pool.submit(self._write, write)
        self._pending.append((future, done))
        while len(self._pending) > self._depth:
            self._finish_one()

    def drain(self) -> None:
        while self._pending:
            self._finish_one()

    def _finish_one(self) -> None:
        future, done = self._pending.popleft()
        start = time.perf_counter()
        try:
            counts = future.result()
        finally:
            self.wait_seconds += time.perf_counter() - start
        done(counts)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._session.close()
