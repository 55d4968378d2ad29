"""The whole Python job's arithmetic on the CPU and on the GPU: seconds, ratio, and parity.

Every registered family runs over one synthetic panel (``bench.families_cpu.synthetic_panel``:
lottery-like integer series) twice: on the CPU, the family function series by series on every
core of this machine (a ``distributed.LocalCluster`` with one single-threaded worker per core,
what the job's ``--scheduler local`` uses), and on the GPU, the family's batched CuPy function
over the whole panel. Every output column of every series is compared: the GPU value must equal
the CPU value within 1e-6 (absolute, or relative to values above 1), NaN where the CPU gives
NaN. The ratio printed is CPU seconds over GPU seconds for the whole job (all families), the
figure the GPU path is held to (at least 3x): a GPU is compared with the whole machine it sits
in, not with one of its cores.

``--job`` also times the job end to end (``run_job``: read from PostgreSQL, compute, write) on
each device, on the same panel loaded through ``ingest`` into a schema of its own: the CPU run
on a local cluster of every core, the GPU run with ``--device gpu`` and the default scheduler
(the device families in-process, the host-only stages of GPU families in a pool of the other
cores; a GPU failure stops it rather than finishing on the CPU). It needs ``DATABASE_URL`` (or
the embedded server) and dbt, and its parity is the per-column check above.

Without CuPy or a CUDA device where a kernel runs this exits with status 2 and says so, before
any work.

Usage: ``python -m bench.families_gpu [--series 1000] [--rows 1000] [--family NAME] [--job]
[--cpu-workers N]``; ``make bench DEVICE=gpu`` runs it after the CPU benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bench.families_cpu import synthetic_panel
from bench.panel import load_panel
from bench.run import _reset_schema
from python_jobs import db, dbt
from python_jobs.features import registry
from python_jobs.job import run_job

TOLERANCE = 1e-6
RESULTS = Path(__file__).resolve().parent / "results" / "families_gpu.json"
JOB_SCHEMA = "bench_gpu_job"


def _worst(got: list[dict], want: list[dict]) -> tuple[float, int, str]:
    """Largest scaled difference, count of values over the tolerance, and the worst column."""
    worst, failures, column = 0.0, 0, ""
    for g, w in zip(got, want, strict=True):
        for name, value in w.items():
            a = np.atleast_1d(np.asarray(g[name], dtype=float))
            b = np.atleast_1d(np.asarray(value, dtype=float))
            nan_mismatch = np.isnan(a) != np.isnan(b)
            both = ~np.isnan(a) & ~np.isnan(b)
            scaled = np.abs(a[both] - b[both]) / np.maximum(1.0, np.abs(b[both]))
            bad = int(nan_mismatch.sum()) + int((scaled > TOLERANCE).sum())
            failures += bad
            top = math.inf if nan_mismatch.any() else float(scaled.max(initial=0.0))
            if top > worst:
                worst, column = top, name
    return worst, failures, column


def _batch_function(fam: registry.Family, through_numpy: bool):
    params = fam.resolved()
    if not through_numpy:
        return lambda ys: fam.gpu_fn()(ys, **params)
    # <name>_batch(ys) is <name>_batch_xp(cupy, ys): the same array code with NumPy
    module, _, attr = fam.gpu.partition(":")
    batch_xp = getattr(importlib.import_module(module), f"{attr}_xp")
    return lambda ys: batch_xp(np, ys, **params)


def _compute_chunk(fam: registry.Family, ys: list[np.ndarray]) -> list[dict]:
    """The CPU family over a few series, on one core (one task of a worker)."""
    return [fam.compute(y) for y in ys]


@contextlib.contextmanager
def cpu_runner(workers: int) -> Iterator[Callable[[registry.Family, list[np.ndarray]], list[dict]]]:
    """``run(fam, ys)``: the CPU family over ``ys`` on ``workers`` cores, results in order.

    One worker computes in this process; more start a ``distributed.LocalCluster`` of
    single-threaded worker processes (as the job's ``--scheduler local`` does), each series
    chunk one task, so every core is busy.
    """
    if workers <= 1:
        yield _compute_chunk
        return
    import logging

    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        silence_logs=logging.WARNING,
        dashboard_address=None,
    )
    client = Client(cluster)

    def run(fam: registry.Family, ys: list[np.ndarray]) -> list[dict]:
        # A few chunks per core, so that a slow chunk does not leave the other cores idle.
        chunks = np.array_split(np.arange(len(ys)), min(len(ys), 4 * workers))
        futures = [client.submit(_compute_chunk, fam, [ys[i] for i in c], pure=False) for c in chunks]
        return [result for future in futures for result in future.result()]

    try:
        yield run
    finally:
        client.close()
        cluster.close()


def compare_devices(
    n_series: int,
    n_rows: int,
    families: list[str] | None = None,
    *,
    through_numpy: bool = False,
    cpu_workers: int | None = None,
) -> dict:
    """Per family and in total: CPU seconds, GPU seconds, ratio and parity (module docstring).

    ``through_numpy`` runs the GPU code with NumPy instead of CuPy (no device needed): a check
    of the plumbing and of parity, not a speed figure. ``cpu_workers`` is the number of cores
    the CPU side uses (default: every core of this machine).
    """
    from python_jobs.gpu import require_gpu

    if not through_numpy:
        require_gpu()
    workers = cpu_workers or os.cpu_count() or 1
    ys = synthetic_panel(n_series, n_rows)
    with cpu_runner(workers) as cpu_run:
        rows = [_compare_family(fam, ys, cpu_run, through_numpy) for fam in registry.families(names=families)]
    cpu_total = sum(row["cpu_seconds"] for row in rows)
    gpu_total = sum(row["gpu_seconds"] for row in rows)
    return {
        "panel": f"{n_series} series x {n_rows} draws",
        "array_module": "numpy (dry run, no device)" if through_numpy else "cupy",
        "cpu_workers": workers,
        "families": rows,
        "cpu_seconds": round(cpu_total, 3),
        "gpu_seconds": round(gpu_total, 3),
        "ratio_whole_job": round(cpu_total / gpu_total, 2),
        "parity": all(row["values_over_tolerance"] == 0 for row in rows),
        "bar": "ratio >= 3 (target 10) against every core, every value within 1e-6",
    }


def _compare_family(
    fam: registry.Family, ys: list[np.ndarray], cpu_run: Callable, through_numpy: bool
) -> dict:
    """One family: CPU seconds (every core), GPU seconds, and the parity of every value."""
    if fam.gpu is None:
        raise SystemExit(f"family {fam.name} has no GPU path")
    fam = fam.bind()
    gpu_fn = _batch_function(fam, through_numpy)
    cpu_run(fam, ys[:2])  # warm-up: imports, numba cache loads (on the workers too)
    gpu_fn(ys[:2])  # warm-up: CUDA context, kernel compilation
    start = time.perf_counter()
    want = cpu_run(fam, ys)
    cpu_seconds = time.perf_counter() - start
    start = time.perf_counter()
    got = gpu_fn(ys)
    gpu_seconds = time.perf_counter() - start
    worst, failures, column = _worst(got, want)
    return {
        "family": fam.name,
        "cpu_seconds": round(cpu_seconds, 3),
        "gpu_seconds": round(gpu_seconds, 3),
        "ratio": round(cpu_seconds / gpu_seconds, 2),
        "max_scaled_diff": worst,
        "values_over_tolerance": failures,
        "worst_column": column,
    }


def job_runs(cpu_workers: int) -> dict[str, dict]:
    """The ``run_job`` options of each device's end-to-end run.

    The CPU run uses every core (a local cluster of ``cpu_workers`` single-threaded workers);
    the GPU run is the job's default on the GPU (the host-only stages of GPU families in a
    pool of the other cores) and asks for the GPU by name, so a GPU failure stops it instead
    of being computed on the CPU and timed as the GPU's.
    """
    return {
        "cpu": {"device": "cpu", "scheduler": "local", "n_workers": cpu_workers},
        "gpu": {"device": "gpu", "scheduler": "auto"},
    }


def time_job_end_to_end(n_series: int, n_rows: int, cpu_workers: int | None = None) -> dict:
    """``run_job`` full refresh on each device, same panel (needs a database and dbt)."""
    workers = cpu_workers or os.cpu_count() or 1
    url = db.database_url()
    os.environ["DBT_SCHEMA"] = JOB_SCHEMA
    _reset_schema(url, JOB_SCHEMA)
    load_panel(url, n_series, n_rows)
    dbt.run(["seed", "--quiet"], url=url)
    dbt.run(["build", "--quiet", "--select", "staging"], url=url)
    seconds = {}
    for device, options in job_runs(workers).items():
        start = time.perf_counter()
        run_job(url=url, full_refresh=True, progress=False, quiet=True, **options)
        seconds[device] = round(time.perf_counter() - start, 2)
    return {
        "job_seconds": seconds,
        "cpu_workers": workers,
        "ratio": round(seconds["cpu"] / seconds["gpu"], 2) if seconds["gpu"] else None,
    }


def print_report(result: dict) -> None:
    cores = f"{result['cpu_workers']} cores"
    print(f"Python job, CPU ({cores}) vs GPU ({result['array_module']}), {result['panel']}")
    print(f"  {'family':<24} {'cpu s':>9} {'gpu s':>9} {'ratio':>8} {'max diff':>10} {'over 1e-6':>10}")
    for row in result["families"]:
        print(
            f"  {row['family']:<24} {row['cpu_seconds']:9.3f} {row['gpu_seconds']:9.3f} {row['ratio']:8.2f} "
            f"{row['max_scaled_diff']:10.2e} {row['values_over_tolerance']:10d}"
        )
    print(
        f"  {'whole job':<24} {result['cpu_seconds']:9.3f} {result['gpu_seconds']:9.3f} "
        f"{result['ratio_whole_job']:8.2f}   (bar >= 3x, target 10x)"
    )
    print(f"  every column within 1e-6: {'yes' if result['parity'] else 'NO'}")
    if "end_to_end" in result:
        job = result["end_to_end"]
        print(f"  run_job end to end: cpu {job['job_seconds']['cpu']} s, gpu {job['job_seconds']['gpu']} s")


def main(argv: list[str] | None = None) -> int:
    from python_jobs.gpu import GpuUnavailableError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--family", action="append", default=None)
    parser.add_argument("--job", action="store_true", help="also time run_job end to end on each device")
    parser.add_argument(
        "--cpu-workers", type=int, default=None, help="cores of the CPU side (default: every core)"
    )
    parser.add_argument(
        "--numpy", action="store_true", help="run the GPU code with NumPy (a parity dry run, no device)"
    )
    args = parser.parse_args(argv)
    try:
        result = compare_devices(
            args.series, args.rows, args.family, through_numpy=args.numpy, cpu_workers=args.cpu_workers
        )
        if args.job:
            result["end_to_end"] = time_job_end_to_end(args.series, args.rows, args.cpu_workers)
    except GpuUnavailableError as exc:
        print(f"GPU benchmark not run: {exc}", file=sys.stderr)
        return 2
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print_report(result)
    print(f"\nwrote {RESULTS}")
    return 0 if result["parity"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
