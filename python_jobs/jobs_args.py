"""Arguments of the Python feature job (``python -m python_jobs features``).

Kept apart from :mod:`python_jobs.job` so that ``--help`` does not import NumPy, the
feature families or Dask.
"""

from __future__ import annotations

import argparse
import os

# Series per batch; python_jobs.job uses the same constant.
DEFAULT_BATCH_SIZE = 64


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default=os.environ.get("DEVICE", "auto"),
        help="gpu needs CuPy and a CUDA device; auto picks it when present (default: $DEVICE or auto)",
    )
    parser.add_argument(
        "--scheduler",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS") or None,
        metavar="ADDRESS",
        help=(
            "where the families run: a Dask scheduler address tcp://host:port; 'local' (a LocalCluster, "
            "one worker per core), 'local-cuda' (dask-cuda, one worker per GPU), 'sync' (in-process). "
            "Default ($DASK_SCHEDULER_ADDRESS or auto): in-process for small jobs and on the GPU, "
            "else a LocalCluster"
        ),
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="worker processes of a local cluster (default: one per core)",
    )
    parser.add_argument(
        "--families",
        action="append",
        default=None,
        metavar="NAME",
        help="run only this family (repeatable; default: every registered family)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"series per batch: one task per family, one upsert per table (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--on-error",
        choices=["raise", "warn", "ignore"],
        default="warn",
        help=(
            "when a family fails on a series: stop (raise), record it in py_job_errors and go on with "
            "that family's columns NULL for the series (warn, default), or go on silently (ignore)"
        ),
    )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="recompute every series, not only those with new or changed draws",
    )
    parser.add_argument(
        "--vars",
        default=None,
        metavar="YAML",
        help=(
            "feature definitions to override, as dbt takes them (e.g. '{windows: [5, 10]}'); "
            "default $LOTO_DBT_VARS, else the vars of dbt_project.yml"
        ),
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they are shown only when stderr is a terminal anyway)",
    )
