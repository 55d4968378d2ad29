"""Loading a results file: stream it into temporary tables, check, merge, all in one transaction.

All or nothing: a file with a bad row loads nothing unless ``skip_bad_rows`` is set, in which
case the good rows load and the bad ones go to the rejects table with their reasons. Loading
the same file twice changes nothing (the upsert skips identical rows, the rejects are keyed by
file checksum, line and reason). Draws and their prize tables load in the same transaction.

``ds`` of the draws table is a ``timestamp`` without time zone (naive UTC): a lottery's draws
at midnight, a user's series at whatever instant its file gives. A table made when ``ds`` was
a ``date`` is converted in place the first time the tables are ensured (:func:`ensure_tables`;
every value becomes midnight of its day, so nothing moves). The prize table stays keyed by the
draw's day (``ds date``): prizes exist only for the known lotteries, whose draws are at
midnight, and stg_lottery__prizes casts that day to the draws' timestamp for the joins.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import io
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from python_jobs import config, db, retype
from python_jobs.ingest import checks
from python_jobs.ingest.long import DRAW_COLUMNS
from python_jobs.ingest.parse import OPTIONAL_DRAW_COLUMNS, Chunk, ParsedFile, parse_file
from python_jobs.ingest.problems import FileLevelError, Problem
from python_jobs.ingest.spec import load_specs
from python_jobs.log import get_logger

log = get_logger(__name__)

RAW_PRIZES_TABLE = "raw_lottery_prizes"
# How many bad lines a report lists; the rest are counted.
REPORT_LIMIT = 200
# Parsed chunks waiting for COPY while the next one is parsed.
PARSE_AHEAD = 1
# A rejects row is keyed by its reason: bounded so the key fits a btree index row.
REASON_KEEP = 500

DDL = """
create table if not exists {draws} (
    loto text not null,
    unique_id text not null,
    ds timestamp not null,
    y numeric not null,
    num integer,
    co bigint,
    source_file text,
    loaded_at timestamptz not null default now(),
    primary key (loto, unique_id, ds)
);
create table if not exists {prizes} (
    loto text not null,
    ds date not null,
    tier integer not null,
    winners bigint,
    prize bigint,
    source_file text,
    loaded_at timestamptz not null default now(),
    primary key (loto, ds, tier)
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

    def __init__(
        self, path: Path, loto: str, problems: list[Problem], hint: str = "", total: int | None = None
    ):
        self.path = path
        self.loto = loto
        self.problems = problems
        self.hint = hint
        self.total = len(problems) if total is None else total
        super().__init__(self.report())

    def report(self, limit: int = REPORT_LIMIT) -> str:
        lines = [f"ingest of {self.path} as {self.loto!r} failed: nothing was loaded."]
        lines += [f"  {problem}" for problem in self.problems[:limit]]
        if self.total > min(limit, len(self.problems)):
            lines.append(f"  ... and {self.total - min(limit, len(self.problems))} more bad lines")
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
    prizes_inserted: int = 0
    prizes_updated: int = 0
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
        if self.prizes_inserted or self.prizes_updated:
            text += f"; prize rows: {self.prizes_inserted} inserted, {self.prizes_updated} updated"
        if self.rows_rejected:
            text += f" (see {config.target_schema()}.{config.RAW_REJECTS_TABLE})"
        return text


def ensure_tables(conn: psycopg.Connection) -> None:
    """Create the raw tables where missing, and give an older draws table a timestamp ``ds``."""
    conn.execute(
        sql.SQL(DDL).format(
            draws=db.qualified(config.RAW_DRAWS_TABLE),
            prizes=db.qualified(RAW_PRIZES_TABLE),
            rejects=db.qualified(config.RAW_REJECTS_TABLE),
            runs=db.qualified(config.INGEST_RUNS_TABLE),
        )
    )
    migrate_draws_ds(conn)


def migrate_draws_ds(conn: psycopg.Connection) -> bool:
    """Turn a ``ds date`` column of the draws table into ``timestamp``; True when it did.

    Tables made before ``ds`` could hold a time of day have a ``date``. Each value becomes
    midnight of its day, so the keys and every feature built on them stay as they were. A
    table already converted is left alone (one catalog lookup), so this runs on every load.
    """
    return retype.date_to_timestamp(conn, config.RAW_DRAWS_TABLE, "ds")


def _csv_text(frame: pd.DataFrame, columns: list[str]) -> str:
    """The columns as CSV for ``COPY ... (format csv)``: a missing value is an empty field (NULL).

    The standard library's C writer over the columns as Python lists, a third faster than
    ``DataFrame.to_csv`` and with the same output: fields quoted only where they hold a comma,
    a quote or a line break.
    """
    values = []
    for name in columns:
        column = frame[name]
        values.append(column.astype(object).where(column.notna(), None).tolist())
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(zip(*values, strict=True))
    return buffer.getvalue()


def _copy_frame(conn: psycopg.Connection, table: str, frame: pd.DataFrame, columns: list[str]) -> None:
    if not frame.empty:
        _copy_text(conn, table, _csv_text(frame, columns), columns)


def _copy_text(conn: psycopg.Connection, table: str, text: str, columns: list[str]) -> None:
    if not text:
        return
    statement = sql.SQL("copy {} ({}) from stdin with (format csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        copy.write(text)


def _stage_chunk(conn: psycopg.Connection, chunk: Chunk) -> None:
    if chunk.draws_csv is not None:
        _copy_text(conn, "_ingest_draws", chunk.draws_csv, DRAW_COLUMNS)
    else:
        _copy_frame(conn, "_ingest_draws", chunk.draws, DRAW_COLUMNS)
    _copy_frame(conn, "_ingest_prizes", chunk.prizes, ["loto", "ds", "tier", "winners", "prize", "line"])
    if chunk.problems:
        with conn.cursor().copy(
            "copy _ingest_problems (line, draw_date, reason, raw_line) from stdin"
        ) as copy:
            for problem in chunk.problems:
                copy.write_row((problem.line or 0, problem.draw_date, problem.reason, problem.raw))


def _problems(conn: psycopg.Connection) -> tuple[list[Problem], int]:
    """The first bad lines (one entry per line, reasons joined) and how many lines are bad."""
    total = conn.execute("select count(distinct line) from _ingest_problems").fetchone()
    rows = conn.execute(
        "select line, min(draw_date), string_agg(reason, '; ' order by reason), max(raw_line) "
        "from _ingest_problems group by line order by line limit %s",
        (REPORT_LIMIT,),
    ).fetchall()
    return [Problem(line or None, ds, reason, raw or "") for line, ds, reason, raw in rows], int(
        total[0] if total else 0
    )


def _upsert(
    conn: psycopg.Connection, source_file: str, draw_columns: frozenset[str] = OPTIONAL_DRAW_COLUMNS
) -> tuple[int, int]:
    """Merge the staged draws into the raw table. Returns (inserted, updated).

    The first file of a lottery is a plain insert: with no stored row of its lotteries nothing
    can conflict (the file's own repeated keys were refused before), and ``on conflict`` would
    cost a speculative insertion per row, twice the time of the insert itself.

    Of the optional columns (``num``, ``co``), only those in ``draw_columns`` (the ones the
    file has) overwrite a stored row: a file without a carry-over column is no statement that
    the carry-over is unknown, so the stored one stays, and a row counts as updated only when
    a value the file gives differs.
    """
    merged = ["y", *(name for name in ("num", "co") if name in draw_columns)]
    draws = db.qualified(config.RAW_DRAWS_TABLE)
    insert = sql.SQL(
        "insert into {draws} as target (loto, unique_id, ds, y, num, co, source_file) "
        "select loto, unique_id, ds, y, num, co, %(source)s from _ingest_draws"
    ).format(draws=draws)
    first = conn.execute(
        sql.SQL(
            "select not exists (select 1 from {draws} as stored "
            "where stored.loto in (select distinct staged.loto from _ingest_draws as staged))"
        ).format(draws=draws)
    ).fetchone()
    if first and first[0]:
        return max(conn.execute(insert, {"source": source_file}).rowcount, 0), 0
    row = conn.execute(
        sql.SQL(
            """
            with merged as (
                {insert}
                on conflict (loto, unique_id, ds) do update
                    set {assignments},
                        source_file = excluded.source_file,
                        loaded_at = now()
                    where ({stored}) is distinct from ({given})
                returning (xmax = 0) as inserted
            )
            select count(*) filter (where inserted), count(*) filter (where not inserted) from merged
            """
        ).format(
            insert=insert,
            assignments=sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name)) for name in merged
            ),
            stored=sql.SQL(", ").join(sql.SQL("target.{}").format(sql.Identifier(name)) for name in merged),
            given=sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(name)) for name in merged),
        ),
        {"source": source_file},
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _upsert_prizes(conn: psycopg.Connection, source_file: str) -> tuple[int, int]:
    row = conn.execute(
        sql.SQL(
            """
            with merged as (
                insert into {prizes} as target (loto, ds, tier, winners, prize, source_file)
                select loto, ds, tier, winners, prize, %(source)s from _ingest_prizes
                on conflict (loto, ds, tier) do update
                    set winners = excluded.winners,
                        prize = excluded.prize,
                        source_file = excluded.source_file,
                        loaded_at = now()
                    where (target.winners, target.prize) is distinct from (excluded.winners, excluded.prize)
                returning (xmax = 0) as inserted
            )
            select count(*) filter (where inserted), count(*) filter (where not inserted) from merged
            """
        ).format(prizes=db.qualified(RAW_PRIZES_TABLE)),
        {"source": source_file},
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _write_rejects(conn: psycopg.Connection, loto: str, source_file: str, sha256: str) -> None:
    conn.execute(
        sql.SQL(
            "insert into {rejects} (loto, source_file, file_sha256, line_no, draw_date, reason, raw_line) "
            "select %s, %s, %s, line, min(draw_date), left(string_agg(reason, '; ' order by reason), %s), "
            "max(raw_line) from _ingest_problems group by line on conflict do nothing"
        ).format(rejects=db.qualified(config.RAW_REJECTS_TABLE)),
        (loto, source_file, sha256, REASON_KEEP),
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class _Counts:
    inserted: int = 0
    updated: int = 0
    prizes_inserted: int = 0
    prizes_updated: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)


class _Phases:
    """Seconds per step of a load, logged at debug level (where a slow load spends its time)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now


_DONE = object()


def _parse_ahead(parsed: ParsedFile, chunks: queue.Queue, stop: threading.Event) -> None:
    """Producer: parse chunks while the previous one is copied (the server works meanwhile)."""
    try:
        for chunk in parsed.chunks():
            while not stop.is_set():
                try:
                    chunks.put(chunk, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        chunks.put(_DONE)
    except BaseException as exc:  # handed to the consumer, which raises it in its own thread
        chunks.put(exc)


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, as it was after it.

    Parsing makes a list per line and keeps a chunk of them alive: the collector, started every
    few hundred allocations, walks them again and again (2.8 of 7.6 s on a million-line file).
    Parsing makes no reference cycles; its objects are freed by reference counting as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@cyclic_gc_paused()
def _stage_file(conn: psycopg.Connection, parsed: ParsedFile) -> None:
    """Stream the file's chunks into the temporary tables, parsing one chunk ahead.

    At most ``PARSE_AHEAD`` parsed chunks wait at any time, so memory stays bounded.
    """
    chunks: queue.Queue = queue.Queue(maxsize=PARSE_AHEAD)
    stop = threading.Event()
    producer = threading.Thread(target=_parse_ahead, args=(parsed, chunks, stop), daemon=True)
    producer.start()
    try:
        while (item := chunks.get()) is not _DONE:
            if isinstance(item, FileLevelError):
                raise IngestError(parsed.path, parsed.loto, [Problem(item.line, None, item.message)])
            if isinstance(item, BaseException):
                raise item
            _stage_chunk(conn, item)
    finally:
        stop.set()
        producer.join()


def _load(
    conn: psycopg.Connection,
    parsed: ParsedFile,
    *,
    skip_bad_rows: bool,
    sha256: str,
    prizes_only: bool = False,
) -> _Counts:
    """Every step of one load, inside the caller's transaction."""
    source_file = parsed.path.name
    phases = _Phases()
    ensure_tables(conn)
    checks.create_staging(conn, load_specs().values())
    _stage_file(conn, parsed)
    phases.done("parse_and_copy")
    checks.find_file_problems(conn, skip_bad_rows=skip_bad_rows)
    problems, total = _problems(conn)
    phases.done("file_checks")
    if total and not skip_bad_rows:
        raise IngestError(
            parsed.path,
            parsed.loto,
            problems,
            hint="Fix these lines, or rerun with --skip-bad-rows to load the good rows and keep "
            f"the bad ones in {config.RAW_REJECTS_TABLE}.",
            total=total,
        )
    if total:
        checks.drop_bad_lines(conn)
    counts = _Counts(rejected=total, problems=problems)
    if not prizes_only:
        counts.inserted, counts.updated = _upsert(conn, source_file, parsed.draw_columns)
    counts.prizes_inserted, counts.prizes_updated = _upsert_prizes(conn, source_file)
    phases.done("merge")
    broken = [] if prizes_only else checks.stored_draw_problems(conn, db.qualified(config.RAW_DRAWS_TABLE))
    phases.done("stored_checks")
    log.debug("ingest.phases", file=source_file, **phases.seconds)
    if broken:
        raise IngestError(
            parsed.path,
            parsed.loto,
            broken,
            hint="The file would leave these draws inconsistent with the rows already stored; "
            "load the whole draw (every position) or correct the stored rows first.",
        )
    if skip_bad_rows and total:
        _write_rejects(conn, parsed.loto, source_file, sha256)
    conn.execute(
        sql.SQL(
            "insert into {runs} (loto, source_file, file_sha256, layout, rows_read, rows_inserted, "
            "rows_updated, rows_rejected) values (%s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(runs=db.qualified(config.INGEST_RUNS_TABLE)),
        (
            parsed.loto,
            source_file,
            sha256,
            parsed.layout,
            parsed.lines_read,
            counts.inserted,
            counts.updated,
            total,
        ),
    )
    return counts


def ingest_file(
    loto: str,
    path: Path,
    *,
    skip_bad_rows: bool = False,
    url: str | None = None,
    prizes_only: bool = False,
) -> IngestResult:
    """Load one results file into the raw tables (draws and prizes), all or nothing.

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
    prizes_only
        Check the whole file as usual but merge only its prize tables, leaving the stored
        draws as they are (the demo uses it to add the prizes of a bundled file to draws that
        were loaded, and perhaps corrected, before prize tables were kept).

    Raises
    ------
    IngestError
        The file, or a line of it, is bad (and ``skip_bad_rows`` is not set), or the merge
        would leave a stored draw breaking its lottery's rules. Nothing is written.
    db.DatabaseError
        The database is unreachable or refused the load; nothing is written.
    """
    path = Path(path)
    try:
        parsed = parse_file(path, loto)
        sha256 = _sha256(path)
    except FileLevelError as exc:
        raise IngestError(path, loto, [Problem(exc.line, None, exc.message)]) from None
    except OSError as exc:
        raise IngestError(
            path, loto, [Problem(None, None, f"cannot read the file: {exc.strerror}")]
        ) from None

    def load() -> _Counts:
        parsed.lines_read = 0
        with db.transaction(url) as conn:
            return _load(conn, parsed, skip_bad_rows=skip_bad_rows, sha256=sha256, prizes_only=prizes_only)

    # The whole load is one transaction: a retry after a dropped connection starts it over.
    counts = db.retry(load, attempts=3, what=f"ingest {path.name}")
    log.info(
        "ingest.loaded",
        file=path.name,
        loto=loto,
        layout=parsed.layout,
        inserted=counts.inserted,
        updated=counts.updated,
        prizes=counts.prizes_inserted + counts.prizes_updated,
        rejected=counts.rejected,
    )
    return IngestResult(
        path=path,
        loto=loto,
        layout=parsed.layout,
        rows_read=parsed.lines_read,
        rows_inserted=counts.inserted,
        rows_updated=counts.updated,
        rows_rejected=counts.rejected,
        prizes_inserted=counts.prizes_inserted,
        prizes_updated=counts.prizes_updated,
        problems=counts.problems,
    )
