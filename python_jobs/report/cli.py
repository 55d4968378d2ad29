"""``python -m python_jobs report --loto NAME``: write the feature report of one lottery."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from python_jobs import db
from python_jobs.redact import mask_url


def _cmd_report(args: argparse.Namespace) -> int:
    from python_jobs.report.data import ReportError, load
    from python_jobs.report.html import write_report

    try:
        data = load(args.loto)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except db.DatabaseError as exc:
        print(f"error: {mask_url(str(exc))}", file=sys.stderr)
        return 2
    path = write_report(data, Path(args.out_dir)) if args.out_dir else write_report(data)
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
