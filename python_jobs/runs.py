"""Run history: one row per stage of every ingest, dbt phase, feature job and demo run.

The ``pipeline_runs`` table (in the target schema) answers "what ran, when, how long, and did
it work" without reading logs; ``loto-features runs`` prints the last runs. (The feature job's
own runs, one row per job with its parameters, are ``py_job_runs``:
:mod:`python_jobs.job.runs`.) A database from before the table had this name keeps its rows:
the first use renames ``loto_runs`` and its constraints in place.

A stage is recorded with :func:`record`::

    with runs.record("ingest", what="loto6 loto6.json") as stage:
        result = ingest_file(...)
        stage.rows = result.rows_loaded

The row is written when the block ends, on success or failure (the error's message is kept,
passwords masked). Writing it never fails the stage: with the database down the row is lost
and a warning says so, since the stage's own error is what the user needs to see.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from python_jobs import config, db
from python_jobs.log import get_logger
from python_jobs.redact import mask_url

log = get_logger(__name__)

RUNS_TABLE = "pipeline_runs"
#: The table's earlier name, renamed to :data:`RUNS_TABLE` on first use (:func:`migrate_legacy`).
LEGACY_RUNS_TABLE = "loto_runs"
#: Environment variable carrying the run id to child processes, so one run's stages share it.
RUN_ID_ENV = "LOTO_RUN_ID"
# Longest error text kept per row: the head of a message says what went wrong.
_ERROR_CHARS = 2000

# PostgreSQL's name for the table's check constraint, which _allow_warn replaces.
_OUTCOME_CHECK = sql.Identifier(f"{RUNS_TABLE}_outcome_check")

_DDL = """
create table if not exists {table} (
    run_id text not null,
    stage text not null,
    what text,
    rows bigint,
    seconds double precision not null,
    outcome text not null check (outcome in ('ok', 'warn', 'failed')),
    error text,
    started_at timestamptz not null
)
"""


def current_run_id() -> str:
    """The id of this process's run (set once; inherited from ``LOTO_RUN_ID`` when present)."""
    run_id = os.environ.get(RUN_ID_ENV)
    if not run_id:
        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        os.environ[RUN_ID_ENV] = run_id
    return run_id


@dataclass
class Stage:
    """What a stage reports about itself while it runs."""

    name: str
    what: str | None
    rows: int | None = None
    outcome: str = "ok"
    error: str | None = None

    def fail(self, error: str) -> None:
        """Mark the stage failed without raising (a command that returns an exit code)."""
        self.outcome = "failed"
        self.error = error

    def warn(self, message: str) -> None:
        """Mark the stage done with warnings (dbt warned, series failed); ``message`` names them."""
        if self.outcome != "failed":
            self.outcome = "warn"
            self.error = message


def migrate_legacy(conn: psycopg.Connection) -> bool:
    """Rename ``loto_runs`` (and its constraints) to ``pipeline_runs`` when only the old one exists.

    Returns whether this call renamed it. ``conn`` may be in autocommit or not; the rename is
    one transaction, and a process that loses a race to do it finds it done.
    """
    if db.table_exists(conn, RUNS_TABLE) or not db.table_exists(conn, LEGACY_RUNS_TABLE):
        return False
    legacy, prefix = db.qualified(LEGACY_RUNS_TABLE), f"{LEGACY_RUNS_TABLE}_"
    try:
        with conn.transaction():
            conn.execute(sql.SQL("lock table {} in access exclusive mode").format(legacy))
            names = conn.execute(
                "select conname from pg_constraint "
                "where conrelid = to_regclass(%s) and starts_with(conname, %s)",
                (legacy.as_string(conn), prefix),
            ).fetchall()
            conn.execute(sql.SQL("alter table {} rename to {}").format(legacy, sql.Identifier(RUNS_TABLE)))
            for (name,) in names:
                conn.execute(
                    sql.SQL("alter table {} rename constraint {} to {}").format(
                        db.qualified(RUNS_TABLE),
                        sql.Identifier(name),
                        sql.Identifier(RUNS_TABLE + name.removeprefix(LEGACY_RUNS_TABLE)),
                    )
                )
    except (psycopg.errors.UndefinedTable, psycopg.errors.DuplicateTable):
        # Another process renamed it (or made the new table) between the check and the lock.
        return False
    log.info("runs.renamed", table=RUNS_TABLE, was=LEGACY_RUNS_TABLE)
    return True


def ensure_table(conn: psycopg.Connection) -> None:
    """Create ``pipeline_runs`` in the target schema if it is missing (renaming ``loto_runs``)."""
    migrate_legacy(conn)
    # Two processes creating it at the same moment: the other one won, which is fine.
    with contextlib.suppress(psycopg.errors.UniqueViolation):
        conn.execute(sql.SQL(_DDL).format(table=db.qualified(RUNS_TABLE)))
    _allow_warn(conn)


def _allow_warn(conn: psycopg.Connection) -> None:
    """A table made before the ``warn`` outcome existed gets the wider check once."""
    row = conn.execute(
        "select pg_get_constraintdef(oid) from pg_constraint "
        "where conrelid = to_regclass(%s) and contype = 'c' and pg_get_constraintdef(oid) like %s",
        (db.qualified(RUNS_TABLE).as_string(conn), "%outcome%"),
    ).fetchone()
    if row and "'warn'" not in row[0]:
        table = db.qualified(RUNS_TABLE)
        conn.execute(sql.SQL("alter table {} drop constraint if exists {}").format(table, _OUTCOME_CHECK))
        conn.execute(
            sql.SQL("alter table {} add constraint {} check (outcome in ('ok', 'warn', 'failed'))").format(
                table, _OUTCOME_CHECK
            )
        )


def _write(stage: Stage, seconds: float, started_at: datetime, url: str | None) -> None:
    error = mask_url(stage.error)[:_ERROR_CHARS] if stage.error else None
    try:
        with db.connect(url, autocommit=True, attempts=1) as conn:
            db.ensure_schema(conn)
            ensure_table(conn)
            conn.execute(
                sql.SQL(
                    "insert into {} (run_id, stage, what, rows, seconds, outcome, error, started_at) "
                    "values (%s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(db.qualified(RUNS_TABLE)),
                (
                    current_run_id(),
                    stage.name,
                    stage.what,
                    stage.rows,
                    seconds,
                    stage.outcome,
                    error,
                    started_at,
                ),
            )
    except (psycopg.Error, db.DatabaseError) as exc:
        log.warning("runs.not_recorded", stage=stage.name, error=mask_url(str(exc).strip()))


@contextmanager
def record(stage: str, *, what: str | None = None, url: str | None = None) -> Iterator[Stage]:
    """Time the block and write one ``pipeline_runs`` row for it, whether it succeeds or raises.

    Parameters
    ----------
    stage
        Stage name (``ingest``, ``dbt build marts``, ``python feature job``...).
    what
        What the stage worked on (a file, a selector); shown by ``runs``.
    url
        Database URL; default the settings' (or the embedded server).
    """
    current = Stage(stage, what)
    started_at = datetime.now(UTC)
    start = time.perf_counter()
    try:
        yield current
    except BaseException as exc:
        current.fail(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        _write(current, time.perf_counter() - start, started_at, url)


def last_runs(limit: int = 5, url: str | None = None) -> list[tuple]:
    """The stages of the last ``limit`` runs, newest run first, stages in order."""
    with db.connect(url, autocommit=True, attempts=1) as conn:
        migrate_legacy(conn)
        if not db.table_exists(conn, RUNS_TABLE):
            return []
        query = sql.SQL(
            """
            with recent as (
                select run_id, min(started_at) as run_started
                from {table} group by run_id order by run_started desc limit %s
            )
            select runs.run_id, runs.started_at, runs.stage, runs.what, runs.rows, runs.seconds,
                   runs.outcome, runs.error
            from {table} as runs
            inner join recent on recent.run_id = runs.run_id
            order by recent.run_started desc, runs.started_at
            """
        ).format(table=db.qualified(RUNS_TABLE))
        return list(conn.execute(query, (limit,)).fetchall())


def format_runs(rows: list[tuple]) -> str:
    """The table ``loto-features runs`` prints."""
    if not rows:
        return f"no runs recorded yet in {config.target_schema()}.{RUNS_TABLE}"
    header = ("run", "started (UTC)", "stage", "what", "rows", "seconds", "outcome")
    body = []
    for run_id, started_at, stage, what, rows_count, seconds, outcome, error in rows:
        body.append(
            (
                run_id,
                f"{started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                stage,
                what or "",
                "" if rows_count is None else f"{rows_count:,}",
                f"{seconds:.2f}",
                outcome if not error else f"{outcome}: {error.splitlines()[0][:80]}",
            )
        )
    widths = [max(len(str(line[i])) for line in (header, *body)) for i in range(len(header))]
    numeric = {4, 5}

    def fmt(line: tuple) -> str:
        cells = [
            str(cell).rjust(w) if i in numeric else str(cell).ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), *(fmt(line) for line in body)])


def _cmd_runs(args: argparse.Namespace) -> int:
    try:
        rows = last_runs(args.limit)
    except db.DatabaseError as exc:
        print(f"error: {mask_url(str(exc))}", file=sys.stderr)
        return 2
    print(format_runs(rows))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``runs`` on the command line."""
    parser = sub.add_parser("runs", help=f"the last runs, one line per stage (table {RUNS_TABLE})")
    parser.add_argument("--limit", type=int, default=5, metavar="N", help="runs to show (default 5)")
    parser.set_defaults(fn=_cmd_runs)
