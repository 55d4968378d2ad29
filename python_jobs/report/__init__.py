"""The feature report: ``loto-features report --loto loto6`` writes ``reports/loto6.html``."""

from python_jobs.report.cli import add_parser

__all__ = ["add_parser"]
