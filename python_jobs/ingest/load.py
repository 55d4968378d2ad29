"""Loading parsed records: COPY into a temporary table, one set-based upsert, one transaction.

All or nothing: a file with a bad row loads nothing unless ``skip_bad_rows`` is set, in which
case the good rows load and the bad ones go to the rejects table with their reasons. Loading
the same file twice changes nothing (the upsert skips identical rows, the rejects are keyed by
file checksum, line and reason).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from python_jobs import config, db
from python_jobs.ingest.parse import FileLevelError, ParseResult, Problem, parse_file
from python_jobs.log import get_logger

log = get_logger(__name__)

DDL = """
create table if not exists {draws} (
    loto text not null,
    unique_id text not null,
    ds date not null,
    y numeric not null,
    num integer,
    co bigint,
    source_file text,
    loaded_at timestamptz not null default now(),
    primary key (loto, unique_id, ds)
);
create table if not exists {rejects} (
    loto text not null,
    source_file text not null,
    file_sha256 text not null,
    line_no integer not null,
    draw_date text,
    reason text not null,
    raw_line text,
    rejected_at timestamptz not null default now(),
    primary key (file_sha256, line_no, reason)
);
create table if not exists {runs} (
    run_id bigserial primary key,
    loto text not null,
    source_file text not null,
    file_sha256 text not null,
    layout text not null,
    rows_read integer not null,
    rows_inserted integer not null,
    rows_updated integer not null,
    rows_rejected integer not null,
    loaded_at timestamptz not null default now()
);
"""


class IngestError(RuntimeError):
    """A file that cannot be loaded as it is. Nothing was written."""

    def __init__(self, path: Path, loto: str, problems: list[Problem], hint: str = ""):
        self.path = path
        self.loto = loto
        self.problems = problems
        self.hint = hint
        super().__init__(self.report())

    def report(self, limit: int = 200) -> str:
        lines = [f"ingest of {self.path} as {self.loto} failed: nothing was loaded."]
        shown = self.problems[:limit]
        for problem in shown:
            lines.append(f"  {problem}")
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more bad rows")
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


@dataclass
class IngestResult:
    path: Path
    loto: str
    layout: str
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_rejected: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return self.rows_inserted + self.rows_updated

    def summary(self) -> str:
        text = (
            f"{self.path.name} ({self.layout}, {self.loto}): {self.rows_read} lines read, "
            f"{self.rows_inserted} rows inserted, {self.rows_updated} updated, "
            f"{self.rows_rejected} bad lines rejected"
        )
        if self.rows_rejected:
            text += f" (see {config.target_schema()}.{config.RAW_REJECTS_TABLE})"
        return text


def ensure_tables(conn: psycopg.Connection) -> None:
    conn.execute(
        sql.SQL(DDL).format(
            draws=db.qualified(config.RAW_DRAWS_TABLE),
            rejects=db.qualified(config.RAW_REJECTS_TABLE),
            runs=db.qualified(config.INGEST_RUNS_TABLE),
        )
    )


def _copy_records(conn: psycopg.Connection, parsed: ParseResult, source_file: str) -> None:
    conn.execute(
        "create temporary table _ingest_draws "
        "(loto text, unique_id text, ds date, y numeric, num integer, co bigint, source_file text) "
        "on commit drop"
    )
    frame = parsed.to_frame().assign(source_file=source_file)
    with conn.cursor().copy(
        "copy _ingest_draws (loto, unique_id, ds, y, num, co, source_file) from stdin with (format csv)"
    ) as copy:
        for start in range(0, len(frame), 200_000):
            copy.write(frame.iloc[start : start + 200_000].to_csv(index=False, header=False))


def _upsert(conn: psycopg.Connection) -> tuple[int, int]:
    """Merge the temporary table into the raw table. Returns (inserted, updated)."""
    row = conn.execute(
        sql.SQL(
            """
            with merged as (
                insert into {draws} as target (loto, unique_id, ds, y, num, co, source_file)
                select loto, unique_id, ds, y, num, co, source_file from _ingest_draws
                on conflict (loto, unique_id, ds) do update
                    set y = excluded.y,
                        num = excluded.num,
                        co = excluded.co,
                        source_file = excluded.source_file,
                        loaded_at = now()
                    where (target.y, target.num, target.co)
                        is distinct from (excluded.y, excluded.num, excluded.co)
                returning (xmax = 0) as inserted
            )
            select count(*) filter (where inserted), count(*) filter (where not inserted) from merged
            """
        ).format(draws=db.qualified(config.RAW_DRAWS_TABLE))
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _write_rejects(
    conn: psycopg.Connection, loto: str, source_file: str, sha256: str, problems: list[Problem]
) -> None:
    if not problems:
        return
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL(
                "insert into {rejects} "
                "(loto, source_file, file_sha256, line_no, draw_date, reason, raw_line) "
                "values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing"
            ).format(rejects=db.qualified(config.RAW_REJECTS_TABLE)),
            [(loto, source_file, sha256, p.line or 0, p.draw_date, p.reason, p.raw[:2000]) for p in problems],
        )


def ingest_file(
    loto: str, path: Path, *, skip_bad_rows: bool = False, url: str | None = None
) -> IngestResult:
    """Load one results file into the raw table, all or nothing.

    Parameters
    ----------
    loto
        Lottery name: one of seeds/loto_spec.csv, or any name for a long-format file.
    path
        The file (JSON, wide Japanese CSV or long-format CSV).
    skip_bad_rows
        Load the good rows and write the bad ones to the rejects table instead of failing.
    url
        Database URL; default ``DATABASE_URL`` or the embedded server.

    Raises
    ------
    IngestError
        The file, or a row of it, is bad (and ``skip_bad_rows`` is not set). Nothing is written.
    """
    path = Path(path)
    try:
        parsed = parse_file(path, loto)
    except FileLevelError as exc:
        raise IngestError(path, loto, [Problem(None, None, str(exc))]) from exc
    if parsed.problems and not skip_bad_rows:
        raise IngestError(
            path,
            loto,
            parsed.problems,
            hint="Fix these lines, or rerun with --skip-bad-rows to load the good rows and keep "
            f"the bad ones in {config.RAW_REJECTS_TABLE}.",
        )
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    source_file = path.name

    def load() -> tuple[int, int]:
        with db.transaction(url) as conn:
            ensure_tables(conn)
            _copy_records(conn, parsed, source_file)
            inserted, updated = _upsert(conn)
            _write_rejects(conn, loto, source_file, sha256, parsed.problems if skip_bad_rows else [])
            conn.execute(
                sql.SQL(
                    "insert into {runs} (loto, source_file, file_sha256, layout, rows_read, rows_inserted, "
                    "rows_updated, rows_rejected) values (%s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(runs=db.qualified(config.INGEST_RUNS_TABLE)),
                (
                    loto,
                    source_file,
                    sha256,
                    parsed.layout,
                    parsed.lines_read,
                    inserted,
                    updated,
                    len(parsed.problems),
                ),
            )
            return inserted, updated

    # The whole load is one transaction: a retry after a dropped connection starts it over.
    inserted, updated = db.retry(load, attempts=3, what=f"ingest {path.name}")
    result = IngestResult(
        path=path,
        loto=loto,
        layout=parsed.layout,
        rows_read=parsed.lines_read,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_rejected=len(parsed.problems),
        problems=parsed.problems,
    )
    log.info(
        "ingest.loaded",
        file=path.name,
        loto=loto,
        layout=parsed.layout,
        inserted=inserted,
        updated=updated,
        rejected=len(parsed.problems),
    )
    return result
