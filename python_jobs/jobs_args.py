"""Arguments of the Python feature job (``python -m python_jobs features``)."""

from __future__ import annotations

import argparse
import os


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default=os.environ.get("DEVICE", "auto"),
        help="gpu needs CuPy and a CUDA device; auto picks it when present (default: $DEVICE or auto)",
    )
    parser.add_argument("--scheduler", default=None, help="a Dask scheduler address, tcp://host:port")
    parser.add_argument("--families", action="append", default=None, help="run only this family (repeatable)")
    parser.add_argument("--batch-size", type=int, default=None, help="series per batch")
    parser.add_argument("--on-error", choices=["raise", "warn", "ignore"], default="warn")
    parser.add_argument("--full-refresh", action="store_true", help="recompute every series")
