"""The feature job's tables: their one definition, creation, the job's lock, removed series.

The job is the only owner of these tables: it creates them, and adds a feature column when a
family gains an output. dbt reads them as sources (through staging models that give typed
NULL columns, from the generated column macros, while the job has not run yet).

``py_features_stat``
    One row per series (``loto, unique_id``): the ``stat`` families' columns.
``py_features_hist``
    One row per draw (``loto, unique_id, ds``, ``ds`` a timestamp): the ``hist`` families' columns.
``py_job_runs``
    One row per run: status (``running``, ``success``, ``failed``), device, counts, seconds.
``py_job_errors``
    One row per (run, series, family) that failed with ``--on-error warn``.
``py_job_state``
    One row per (series, family): the family version, row count, last date and checksum of
    the series when it was last computed; what the next run compares to decide what to do.
``py_features_stat_history``
    One row per snapshot (``loto, unique_id, as_of``): the ``stat`` families' columns over the
    series' rows up to ``as_of``, with their row count and checksum
    (:mod:`python_jobs.job.snapshots`).
``py_job_snapshot_state``
    One row per (snapshot, family): what ``py_job_state`` is to a series.

Every feature column is ``double precision`` (:data:`FEATURE_TYPE`); every identifier reaches
SQL through :class:`psycopg.sql.Identifier`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import psycopg
from psycopg import sql

from python_jobs import config, db, retype
from python_jobs.job.errors import JobIOError
from python_jobs.log import get_logger

log = get_logger(__name__)

STAT_TABLE = "py_features_stat"
HIST_TABLE = "py_features_hist"
RUNS_TABLE = "py_job_runs"
ERRORS_TABLE = "py_job_errors"
STATE_TABLE = "py_job_state"
STAT_HISTORY_TABLE = "py_features_stat_history"
SNAPSHOT_STATE_TABLE = "py_job_snapshot_state"
JOB_TABLES = (
    STAT_TABLE,
    HIST_TABLE,
    RUNS_TABLE,
    ERRORS_TABLE,
    STATE_TABLE,
    STAT_HISTORY_TABLE,
    SNAPSHOT_STATE_TABLE,
)
FEATURE_TYPE = "double precision"
# Postgres identifiers longer than this are silently truncated, which would merge columns.
MAX_IDENTIFIER = 63

# (column, type and constraint) per table, then the primary key; feature columns come on top.
TABLES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    STAT_TABLE: (
        (("loto", "text not null"), ("unique_id", "text not null"), ("computed_at", "timestamptz")),
        ("loto", "unique_id"),
    ),
    HIST_TABLE: (
        (
            ("loto", "text not null"),
            ("unique_id", "text not null"),
            ("ds", "timestamp not null"),
            ("computed_at", "timestamptz"),
        ),
        ("loto", "unique_id", "ds"),
    ),
    RUNS_TABLE: (
        (
            ("run_id", "text not null"),
            ("started_at", "timestamptz not null"),
            ("finished_at", "timestamptz"),
            ("status", "text not null"),
            ("device", "text"),
            ("scheduler", "text"),
            ("families", "text[]"),
            ("feature_version", "text"),
            ("series_total", "integer"),
            ("series_computed", "integer"),
            ("series_failed", "integer"),
            ("rows_written", "bigint"),
            ("seconds_per_family", "jsonb"),
            ("seconds_total", "double precision"),
            ("error", "text"),
        ),
        ("run_id",),
    ),
    ERRORS_TABLE: (
        (
            ("run_id", "text not null"),
            ("loto", "text not null"),
            ("unique_id", "text not null"),
            ("family", "text not null"),
            ("error", "text not null"),
            ("recorded_at", "timestamptz not null default now()"),
        ),
        ("run_id", "loto", "unique_id", "family"),
    ),
    STATE_TABLE: (
        (
            ("loto", "text not null"),
            ("unique_id", "text not null"),
            ("family", "text not null"),
            ("feature_version", "text not null"),
            ("n_rows", "integer not null"),
            ("max_ds", "timestamp"),
            ("checksum", "text"),
            ("status", "text not null"),
            ("run_id", "text"),
            ("computed_at", "timestamptz not null"),
        ),
        ("loto", "unique_id", "family"),
    ),
}
# A snapshot's as_of is a ds of its series: the same type.
_AS_OF_TYPE = dict(TABLES[HIST_TABLE][0])["ds"]
TABLES[STAT_HISTORY_TABLE] = (
    (
        ("loto", "text not null"),
        ("unique_id", "text not null"),
        ("as_of", _AS_OF_TYPE),
        ("n_rows", "integer not null"),
        ("checksum", "text not null"),
        ("computed_at", "timestamptz"),
    ),
    ("loto", "unique_id", "as_of"),
)
TABLES[SNAPSHOT_STATE_TABLE] = (
    (
        ("loto", "text not null"),
        ("unique_id", "text not null"),
        ("as_of", _AS_OF_TYPE),
        ("family", "text not null"),
        ("feature_version", "text not null"),
        ("n_rows", "integer not null"),
        ("checksum", "text"),
        ("status", "text not null"),
        ("run_id", "text"),
        ("computed_at", "timestamptz not null"),
    ),
    ("loto", "unique_id", "as_of", "family"),
)


def table(name: str) -> sql.Composed:
    """``schema.table`` of the target schema, quoted."""
    return db.qualified(name)


def ident_list(names: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


def create_statement(
    name: str, *, into: str | None = None, feature_columns: Sequence[str] = (), key: bool = True
) -> sql.Composed:
    """``create table if not exists`` of one of :data:`TABLES`.

    ``into`` names the table made (default ``name``: a table to load and swap in for it takes
    its definition), ``feature_columns`` are added as :data:`FEATURE_TYPE` columns after the
    table's own, and ``key=False`` leaves the primary key to :func:`build_primary_key`.
    """
    columns, primary = TABLES[name]
    # The types are constants of this module, never input: plain SQL text.
    body = [sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL(kind)) for col, kind in columns]
    body += [sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL(FEATURE_TYPE)) for col in feature_columns]
    if key:
        body.append(sql.SQL("primary key ({})").format(ident_list(primary)))
    return sql.SQL("create table if not exists {} ({})").format(table(into or name), sql.SQL(", ").join(body))


def primary_key(conn: psycopg.Connection, name: str) -> str | None:
    """The name of the primary key constraint of ``name`` in the target schema, if it has one."""
    row = conn.execute(
        "select c.conname from pg_constraint as c join pg_class as t on t.oid = c.conrelid "
        "join pg_namespace as n on n.oid = t.relnamespace "
        "where n.nspname = %s and t.relname = %s and c.contype = 'p'",
        (config.target_schema(), name),
    ).fetchone()
    return row[0] if row else None


def add_primary_key(conn: psycopg.Connection, name: str) -> None:
    """Build the primary key of ``name`` if it has none (after a bulk load, or a run killed in one)."""
    if primary_key(conn, name) is not None:
        return
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("set local maintenance_work_mem = '256MB'")
        conn.execute(
            sql.SQL("alter table {} add primary key ({})").format(table(name), ident_list(TABLES[name][1]))
        )
    log.info("job.primary_key_built", table=name, seconds=round(time.perf_counter() - started, 2))


def build_primary_key(conn: psycopg.Connection, name: str, into: str) -> str:
    """Give ``into``, a loaded copy of ``name`` made without its key, the key of ``name``.

    The unique index is built once over the loaded rows (one sort, no per-row upkeep during
    the load), and the key takes it over instead of building a second one. Returns the key's
    name, ``<into>_pkey`` (or the key ``into`` already has: a retried call builds nothing).
    """
    key = primary_key(conn, into)
    if key is not None:
        return key
    key = f"{into}_pkey"
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("set local maintenance_work_mem = '256MB'")
        conn.execute(
            sql.SQL("create unique index {} on {} ({})").format(
                sql.Identifier(key), table(into), ident_list(TABLES[name][1])
            )
        )
        conn.execute(
            sql.SQL("alter table {} add constraint {} primary key using index {}").format(
                table(into), sql.Identifier(key), sql.Identifier(key)
            )
        )
    log.info("job.primary_key_built", table=into, seconds=round(time.perf_counter() - started, 2))
    return key


def begin_bulk_load(conn: psycopg.Connection, name: str) -> bool:
    """Drop the primary key of ``name`` if the table is empty, for a load without index upkeep.

    Inserting a million rows into an indexed table costs about twice as much as inserting
    them unindexed and building the index once after; only an empty table can skip the
    per-row checks (see :func:`python_jobs.job.writing.write_batch`). Returns whether the key
    was dropped: the caller then owes :func:`add_primary_key` at the end of the load.
    """
    with conn.transaction():
        empty = conn.execute(sql.SQL("select not exists (select 1 from {})").format(table(name))).fetchone()
        key = primary_key(conn, name)
        if not (empty and empty[0]) or key is None:
            return False
        conn.execute(sql.SQL("alter table {} drop constraint {}").format(table(name), sql.Identifier(key)))
    return True


def check_identifiers(columns: Iterable[str]) -> None:
    too_long = [name for name in columns if len(name.encode()) > MAX_IDENTIFIER]
    if too_long:
        raise JobIOError(
            f"feature column names longer than {MAX_IDENTIFIER} bytes would be truncated by PostgreSQL: "
            f"{too_long}; shorten them in the family's outputs"
        )


def existing_columns(conn: psycopg.Connection, name: str) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
        "order by ordinal_position",
        (config.target_schema(), name),
    ).fetchall()
    return [row[0] for row in rows]


def ensure_tables(conn: psycopg.Connection, stat_columns: Sequence[str], hist_columns: Sequence[str]) -> None:
    """Create the job's tables if missing and add the feature columns they lack.

    Columns are only altered when some are missing: ``alter table`` takes an exclusive lock.
    """
    check_identifiers([*stat_columns, *hist_columns])
    with conn.transaction():
        db.ensure_schema(conn)
        for name in JOB_TABLES:
            conn.execute(create_statement(name))
        # Tables made while ds was a date: midnight of each day, so no row moves.
        retype.date_to_timestamp(conn, HIST_TABLE, "ds")
        retype.date_to_timestamp(conn, STATE_TABLE, "max_ds")
        # A run killed during a bulk load left the table without its key.
        add_primary_key(conn, HIST_TABLE)
        for name, wanted in (
            (STAT_TABLE, stat_columns),
            (STAT_HISTORY_TABLE, stat_columns),
            (HIST_TABLE, hist_columns),
        ):
            have = set(existing_columns(conn, name))
            missing = [col for col in wanted if col not in have]
            if missing:
                conn.execute(
                    sql.SQL("alter table {} {}").format(
                        table(name),
                        sql.SQL(", ").join(
                            sql.SQL("add column if not exists {} {}").format(
                                sql.Identifier(col), sql.SQL(FEATURE_TYPE)
                            )
                            for col in missing
                        ),
                    )
                )
                log.info("job.columns_added", table=name, columns=len(missing))


def lock_schema(conn: psycopg.Connection) -> None:
    """Hold a session lock so two jobs on one schema run one after the other, not interleaved."""
    key = f"loto_features.py_job.{config.target_schema()}"
    got = conn.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()
    if not (got and got[0]):
        log.info("job.waiting_for_lock", schema=config.target_schema())
        conn.execute("select pg_advisory_lock(hashtextextended(%s, 0))", (key,))


def delete_series(conn: psycopg.Connection, keys: Sequence[tuple[str, str]]) -> None:
    """Drop every output and bookkeeping row of series that left the staging model."""
    if not keys:
        return
    lotos, uids = [k[0] for k in keys], [k[1] for k in keys]
    with conn.transaction():
        for name in (STAT_TABLE, HIST_TABLE, STATE_TABLE, STAT_HISTORY_TABLE, SNAPSHOT_STATE_TABLE):
            conn.execute(
                sql.SQL(
                    "delete from {} as t using unnest(%s::text[], %s::text[]) as k (loto, unique_id) "
                    "where t.loto = k.loto and t.unique_id = k.unique_id"
                ).format(table(name)),
                (lotos, uids),
            )
    log.info("job.series_removed", series=len(keys))
