"""``loto-features rejects``: the lines ``ingest --skip-bad-rows`` kept out, newest first.

Read-only: it lists ``raw_lottery_rejects`` (file, line number, reason, the line as read) and
changes nothing. A rejected line stays there until the file is fixed and loaded again.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from psycopg import sql

from python_jobs import config, db
from python_jobs.redact import mask_url

# The raw line is shown cut to this many characters: a line is a row of a results file.
_RAW_CHARS = 100


def rejected_lines(loto: str | None = None, limit: int = 20, url: str | None = None) -> list[tuple]:
    """``(rejected_at, loto, source_file, line_no, reason, raw_line)``, newest first."""
    with db.connect(url, attempts=1) as conn:
        if not db.table_exists(conn, config.RAW_REJECTS_TABLE):
            return []
        where = sql.SQL("where loto = %s") if loto else sql.SQL("")
        query = sql.SQL(
            "select rejected_at, loto, source_file, line_no, reason, raw_line from {} {} "
            "order by rejected_at desc, source_file, line_no limit %s"
        ).format(db.qualified(config.RAW_REJECTS_TABLE), where)
        params = (loto, limit) if loto else (limit,)
        return list(conn.execute(query, params).fetchall())


def format_rejects(rows: list[tuple], loto: str | None = None) -> str:
    """One block per line: when, lottery, file:line and the reason, then the raw text."""
    if not rows:
        scope = f" for {loto}" if loto else ""
        return f"no rejected lines{scope} in {config.target_schema()}.{config.RAW_REJECTS_TABLE}"
    out: list[str] = []
    for rejected_at, row_loto, source_file, line_no, reason, raw_line in rows:
        when = rejected_at.astimezone(UTC) if isinstance(rejected_at, datetime) else rejected_at
        out.append(f"{when:%Y-%m-%d %H:%M:%S}  {row_loto}  {source_file}:{line_no}  {reason}")
        raw = (raw_line or "").replace("\r", "")
        raw = raw if len(raw) <= _RAW_CHARS else raw[: _RAW_CHARS - 1] + "…"
        out.append(f"    {raw!r}")
    return "\n".join(out)


def _cmd_rejects(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        rows = rejected_lines(args.loto, args.limit)
    except db.DatabaseError as exc:
        print(f"error: {mask_url(str(exc))}", file=sys.stderr)
        return 2
    print(format_rejects(rows, args.loto))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``rejects`` on the command line."""
    parser = sub.add_parser(
        "rejects",
        help=f"lines that `ingest --skip-bad-rows` kept out ({config.RAW_REJECTS_TABLE}), newest first",
    )
    parser.add_argument("--loto", default=None, help="only this lottery")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="lines to show (default 20)")
    parser.set_defaults(fn=_cmd_rejects)
