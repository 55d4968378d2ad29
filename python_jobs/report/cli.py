"""``loto-features report --loto NAME``: write the feature report of one lottery."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from python_jobs import db
from python_jobs.marts import MartNotReadyError
from python_jobs.redact import mask_url


def _out_dir_problem(out_dir: Path) -> str | None:
    """Why ``out_dir`` cannot hold the report (it or a parent is a file), checked before any read."""
    for path in (out_dir, *out_dir.parents):
        if path.exists():
            return None if path.is_dir() else f"--out-dir {out_dir}: {path} is a file, not a folder"
    return None


def _cmd_report(args: argparse.Namespace) -> int:
    from python_jobs.report.data import ReportError, load
    from python_jobs.report.html import REPORTS_DIR, write_report

    out_dir = Path(args.out_dir) if args.out_dir else REPORTS_DIR
    problem = _out_dir_problem(out_dir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        data = load(args.loto)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MartNotReadyError as exc:
        # Not bad input: the database needs a rebuild, as `health` reports (exit 1 there too).
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except db.DatabaseError as exc:
        print(f"error: {mask_url(str(exc))}", file=sys.stderr)
        return 2
    try:
        path = write_report(data, out_dir)
    except OSError as exc:
        print(f"error: cannot write the report to {out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``report`` on the command line."""
    parser = sub.add_parser(
        "report",
        help="write reports/<loto>.html: series, hot/cold numbers, static features, timings (PNG plots)",
    )
    parser.add_argument("--loto", required=True, help="a lottery in the staging table (loto6, bingo5...)")
    parser.add_argument("--out-dir", default=None, metavar="DIR", help="where to write (default: reports/)")
    parser.set_defaults(fn=_cmd_report)
