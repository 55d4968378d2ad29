"""Per-snapshot values of the per-series families: the job's part of ``features_stat_history``.

A snapshot of a series is the last row of each calendar period of it (``year`` or ``month``,
the dbt var ``stat_snapshot_cadence``, :func:`python_jobs.definitions.snapshot_period`), so
its latest row is always one. Each ``stat`` family is computed on the series' rows up to each
snapshot (a prefix: no row after ``as_of`` is read) into ``py_features_stat_history``; the
latest snapshot's values are also the series' row of ``py_features_stat``.

Change detection is the series' one, per snapshot: one aggregate query gives every
snapshot's row count and the checksum of the rows up to it (the series checksum of
:mod:`python_jobs.job.reading` summed per period, then accumulated), and
``py_job_snapshot_state`` what each (snapshot, family) was computed from. So a new draw in the
same period costs one snapshot (the latest moves to it; the one it replaces is deleted), the
first draw of a new period also one (the previous latest stays, as its period's snapshot, with
an unchanged checksum), and a corrected row recomputes exactly the snapshots at or after it.

A full refresh recomputes every snapshot, even one whose checksum and family version are
unchanged: a family's version hashes what it declares (parameters, outputs, its ``version``
number, library versions), not its code, and a full refresh is how an edit that was not given
a new version reaches the stored values. Snapshot rows whose values come out the same are
still not rewritten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from python_jobs import config
from python_jobs.job import pgcopy, reading
from python_jobs.job.tables import SNAPSHOT_STATE_TABLE, STAT_HISTORY_TABLE, TABLES, ident_list, table

# The SQL type of as_of in arrays and casts: that of the table's column, without its constraint.
AS_OF_TYPE = dict(TABLES[STAT_HISTORY_TABLE][0])["as_of"].removesuffix(" not null")
HISTORY_STAGE = "_py_stat_history_stage"


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as the staging model gives it: its row and what the rows up to it hash to."""

    loto: str
    unique_id: str
    as_of: dt.datetime
    n_rows: int
    checksum: str


@dataclass(frozen=True)
class SnapshotState:
    """What was computed last time for one (snapshot, family)."""

    feature_version: str
    n_rows: int
    checksum: str | None
    status: str


@dataclass
class HistoryWrite:
    """The snapshot rows of one batch: ``values`` is (snapshots, ``columns``), in ``snapshots`` order."""

    snapshots: list[SnapshotInfo]
    columns: list[str]
    values: np.ndarray
    # (loto, unique_id, as_of, family, feature_version, n_rows, checksum or None, status)
    state: list[tuple]


def snapshot_summary(conn: psycopg.Connection, period: str) -> dict[tuple[str, str], list[SnapshotInfo]]:
    """Every series' snapshots, in ``as_of`` order, with their prefix row count and checksum."""
    if period not in ("year", "month"):
        raise ValueError(f"period must be year or month, not {period!r}")
    query = sql.SQL(
        "select p.loto, p.unique_id, p.as_of, (sum(p.n_rows) over w)::int, (sum(p.checksum) over w)::text "
        "from (select d.loto, d.unique_id, max(d.ds) as as_of, count(*) as n_rows, "
        "(" + reading._CHECKSUM + ")::numeric as checksum "
        "from {} as d group by d.loto, d.unique_id, date_trunc({}, d.ds)) as p "
        "window w as (partition by p.loto, p.unique_id order by p.as_of) "
        "order by p.loto, p.unique_id, p.as_of"
    ).format(table(config.STAGING_MODEL), sql.Literal(period))
    out: dict[tuple[str, str], list[SnapshotInfo]] = {}
    for row in conn.execute(query).fetchall():
        out.setdefault((row[0], row[1]), []).append(SnapshotInfo(*row))
    return out


def load_state(
    conn: psycopg.Connection, families: Sequence[str]
) -> dict[tuple[str, str, dt.datetime, str], SnapshotState]:
    rows = conn.execute(
        sql.SQL(
            "select loto, unique_id, as_of, family, feature_version, n_rows, checksum, status "
            "from {} where family = any(%s)"
        ).format(table(SNAPSHOT_STATE_TABLE)),
        (list(families),),
    ).fetchall()
    return {(row[0], row[1], row[2], row[3]): SnapshotState(*row[4:]) for row in rows}


def delete_stale(conn: psycopg.Connection, current: dict[tuple[str, str], list[SnapshotInfo]]) -> int:
    """Delete the stored snapshots that are no longer snapshots (or of series that left).

    A newer row in the same period replaces a latest snapshot, and a cadence changed from
    monthly to yearly leaves month ends that are not year ends. Returns the snapshots deleted.
    """
    stored = conn.execute(
        sql.SQL("select loto, unique_id, as_of from {} union select loto, unique_id, as_of from {}").format(
            table(STAT_HISTORY_TABLE), table(SNAPSHOT_STATE_TABLE)
        )
    ).fetchall()
    wanted = {(s.loto, s.unique_id, s.as_of) for snaps in current.values() for s in snaps}
    stale = [key for key in map(tuple, stored) if key not in wanted]
    if not stale:
        return 0
    columns = [list(column) for column in zip(*stale, strict=True)]
    with conn.transaction():
        for name in (STAT_HISTORY_TABLE, SNAPSHOT_STATE_TABLE):
            conn.execute(
                sql.SQL(
                    "delete from {} as t using unnest(%s::text[], %s::text[], %s::{}[]) "
                    "as k (loto, unique_id, as_of) "
                    "where t.loto = k.loto and t.unique_id = k.unique_id and t.as_of = k.as_of"
                ).format(table(name), sql.SQL(AS_OF_TYPE)),
                columns,
            )
    return len(stale)


def write_history(conn: psycopg.Connection, batch: HistoryWrite, run_id: str, now: dt.datetime) -> int:
    """Upsert a batch's snapshot rows and their bookkeeping (inside the caller's transaction).

    Rows whose values, row count and checksum are unchanged are left alone. Returns the rows
    inserted or changed.
    """
    written = 0
    if batch.snapshots and batch.columns:
        written = _upsert_rows(conn, batch, now)
    if batch.state:
        columns = [list(column) for column in zip(*batch.state, strict=True)]
        conn.execute(
            sql.SQL(
                "insert into {} (loto, unique_id, as_of, family, feature_version, n_rows, checksum, "
                "status, run_id, computed_at) "
                "select k.*, %s, %s from unnest(%s::text[], %s::text[], %s::{}[], %s::text[], %s::text[], "
                "%s::int[], %s::text[], %s::text[]) as k "
                "on conflict (loto, unique_id, as_of, family) do update set "
                "feature_version = excluded.feature_version, n_rows = excluded.n_rows, "
                "checksum = excluded.checksum, status = excluded.status, run_id = excluded.run_id, "
                "computed_at = excluded.computed_at"
            ).format(table(SNAPSHOT_STATE_TABLE), sql.SQL(AS_OF_TYPE)),
            (run_id, now, *columns),
        )
    return written


def _upsert_rows(conn: psycopg.Connection, batch: HistoryWrite, now: dt.datetime) -> int:
    snaps = batch.snapshots
    conn.execute(
        sql.SQL("create temp table {} (sid int4, {}) on commit drop").format(
            sql.Identifier(HISTORY_STAGE),
            sql.SQL(", ").join(
                sql.SQL("{} double precision").format(sql.Identifier(c)) for c in batch.columns
            ),
        )
    )
    sids = np.arange(1, len(snaps) + 1, dtype=np.int32)
    query = sql.SQL("copy {} ({}) from stdin (format binary)").format(
        sql.Identifier(HISTORY_STAGE), ident_list(["sid", *batch.columns])
    )
    with conn.cursor() as cur, cur.copy(query) as copy:
        copy.write(pgcopy.fixed_rows([sids], batch.values))
    names = ["n_rows", "checksum", *batch.columns]
    cur = conn.execute(
        sql.SQL(
            "insert into {table} as t (loto, unique_id, as_of, {cols}, computed_at) "
            "select k.loto, k.unique_id, k.as_of, k.n_rows, k.checksum, {values}, %(now)s "
            "from {stage} as s join unnest(%(lotos)s::text[], %(uids)s::text[], %(as_of)s::{as_of_type}[], "
            "%(n_rows)s::int[], %(checksums)s::text[]) with ordinality as k "
            "(loto, unique_id, as_of, n_rows, checksum, sid) on s.sid = k.sid "
            "on conflict (loto, unique_id, as_of) do update set {updates} "
            "where ({old}) is distinct from ({new})"
        ).format(
            table=table(STAT_HISTORY_TABLE),
            cols=ident_list(names),
            values=sql.SQL(", ").join(
                sql.SQL("nullif(s.{}, 'NaN'::float8)").format(sql.Identifier(c)) for c in batch.columns
            ),
            stage=sql.Identifier(HISTORY_STAGE),
            as_of_type=sql.SQL(AS_OF_TYPE),
            updates=sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in [*names, "computed_at"]
            ),
            old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in names),
            new=sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in names),
        ),
        {
            "now": now,
            "lotos": [s.loto for s in snaps],
            "uids": [s.unique_id for s in snaps],
            "as_of": [s.as_of for s in snaps],
            "n_rows": [s.n_rows for s in snaps],
            "checksums": [s.checksum for s in snaps],
        },
    )
    return max(cur.rowcount, 0)


@dataclass
class AssembledStat:
    """A batch's ``stat`` results split for the two tables, with their failures per series."""

    history: HistoryWrite
    # (series, columns): each series' latest snapshot, its py_features_stat row
    latest_values: np.ndarray
    # per family, the series whose latest snapshot failed (their py_job_state row is an error)
    failed_latest: dict[str, set[int]]
    # (series index, family, message): one per failing (series, family), the first snapshot's
    errors: list[tuple[int, str, str]]


def prefix_lengths(snapshots: Sequence[Sequence[SnapshotInfo]]) -> list[tuple[int, ...]]:
    """The rows of each snapshot of each series: what a worker cuts each series to."""
    return [tuple(s.n_rows for s in snaps) for snaps in snapshots]


def assemble(
    snapshots: Sequence[Sequence[SnapshotInfo]],
    values: dict[str, np.ndarray],
    errors: dict[str, list[tuple[int, str]]],
    outputs: dict[str, list[str]],
    versions: dict[str, str],
) -> AssembledStat:
    """Turn the per-snapshot results of a batch's ``stat`` families into its writes.

    ``snapshots`` lists each series' snapshots (its latest last); ``values[name]`` is
    (snapshots of every series in order, outputs) and ``errors[name]`` indexes the same rows.
    """
    names = list(values)
    flat = [snap for snaps in snapshots for snap in snaps]
    owner = np.repeat(np.arange(len(snapshots)), [len(snaps) for snaps in snapshots])
    latest = np.cumsum([len(snaps) for snaps in snapshots]) - 1
    stacked = np.hstack([values[name] for name in names])
    state = []
    failed_latest: dict[str, set[int]] = {}
    first_errors: dict[tuple[int, str], str] = {}
    for name in names:
        failed = dict(errors.get(name, []))
        failed_latest[name] = {int(owner[i]) for i in failed if i == latest[owner[i]]}
        for i, snap in enumerate(flat):
            ok = i not in failed
            state.append(
                (
                    snap.loto,
                    snap.unique_id,
                    snap.as_of,
                    name,
                    versions[name],
                    snap.n_rows,
                    snap.checksum if ok else None,
                    "ok" if ok else "error",
                )
            )
        for i in sorted(failed):
            where = "" if i == latest[owner[i]] else f"snapshot as_of {flat[i].as_of}: "
            first_errors.setdefault((int(owner[i]), name), where + failed[i])
    return AssembledStat(
        history=HistoryWrite(flat, [c for name in names for c in outputs[name]], stacked, state),
        latest_values=stacked[latest] if len(flat) else stacked[:0],
        failed_latest=failed_latest,
        errors=[(i, name, message) for (i, name), message in first_errors.items()],
    )
