"""Command line of the feature report."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``report`` on the command line."""
    parser = sub.add_parser("report", help="write reports/<loto>.html: plots of the features of one lottery")
    parser.add_argument("--loto", required=True)
