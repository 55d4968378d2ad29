"""Arguments of the Python feature job (``loto-features features``).

Kept apart from :mod:`python_jobs.job` so that ``--help`` does not import NumPy, the
feature families or Dask.
"""

from __future__ import annotations

import argparse

from python_jobs import settings

# Series per batch when no settings are loaded; the settings' batch.series_per_batch wins.
DEFAULT_BATCH_SIZE = 64


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    runtime = settings.get()
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default=runtime.gpu.device,
        help="gpu needs CuPy and a CUDA device; auto picks it when present (default: gpu.device, $DEVICE)",
    )
    parser.add_argument(
        "--scheduler",
        default=runtime.dask.scheduler_address,
        metavar="ADDRESS",
        help=(
            "where the families run: a Dask scheduler address tcp://host:port; 'local' (a LocalCluster, "
            "one worker per core), 'local-cuda' (dask-cuda, one worker per GPU), 'sync' (in-process). "
            "Default (dask.scheduler_address, $DASK_SCHEDULER_ADDRESS, or auto): on the GPU in-process, "
            "with the host-only stages of GPU families in a pool of the other cores; in-process for "
            "small jobs; else a LocalCluster"
        ),
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=runtime.dask.workers,
        metavar="N",
        help=(
            "worker processes of a local cluster, or of the GPU run's host pool "
            "(default: dask.workers, else one per core, one less for the host pool)"
        ),
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
        default=runtime.batch.series_per_batch,
        metavar="N",
        help="series per batch: one task per family, one upsert per table (default: batch.series_per_batch)",
    )
    parser.add_argument(
        "--on-error",
        choices=["raise", "warn", "ignore"],
        default=runtime.errors.mode,
        help=(
            "when a family fails on a series: stop (raise), record it in py_job_errors and go on with "
            "that family's columns NULL for the series (warn), or go on silently (ignore); "
            "default: errors.mode"
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
