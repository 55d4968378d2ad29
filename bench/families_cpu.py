"""Throughput of the Python feature families on a synthetic panel, family by family.

Each family runs over the same panel of ``n_series`` integer series (values 1..43, seeded
RNG, ``n_rows`` draws each), one process, one core, no Dask: the per-family cost the job
runner then spreads over its workers. A warm-up call first pays the one-off costs (imports,
numba cache loads or compilation, the CUDA context) and is reported apart.

``device="gpu"`` runs each family's batched CuPy function over the whole panel where it has
one (the rest fall back to the CPU function, as the job does) and checks the first series
against the CPU within 1e-6.

Usage: ``python -m bench.families_cpu --series 100 --rows 1000 [--device gpu] [--family rolling]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from python_jobs import definitions
from python_jobs.features import registry

# The feature definitions of dbt_project.yml (python_jobs/definitions.py).
DEFS = definitions.load()

PARITY_SAMPLE = 8


def synthetic_panel(n_series: int, n_rows: int, seed: int = 0) -> list[np.ndarray]:
    """``n_series`` lottery-like float series of ``n_rows`` draws, values 1..43."""
    rng = np.random.default_rng(seed)
    return list(rng.integers(1, 44, size=(n_series, n_rows)).astype(np.float64))


def _max_abs_diff(got: list[dict], want: list[dict]) -> float:
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        for name, value in w.items():
            a, b = np.asarray(g[name], dtype=float), np.asarray(value, dtype=float)
            if not np.array_equal(np.isnan(a), np.isnan(b)):
                return float("inf")
            both = ~np.isnan(b)
            if both.any():
                worst = max(worst, float(np.max(np.abs(a[both] - b[both]))))
    return worst


def _pandas_rolling_row(ys: list[np.ndarray]) -> dict:
    # The same 21 columns by pandas groupby-rolling, as a user without this project would.
    frame = pd.DataFrame({"id": np.repeat(np.arange(len(ys)), len(ys[0])), "y": np.concatenate(ys)})
    start = time.perf_counter()
    grouped = frame.groupby("id")["y"]
    for w in DEFS.windows:
        window = grouped.rolling(w)
        window.median()
        window.quantile(0.25)
        window.quantile(0.75)
    seconds = time.perf_counter() - start
    return {
        "family": "rolling[pandas]",
        "kind": "hist",
        "device": "cpu",
        "seconds": round(seconds, 3),
        "series_per_second": round(len(ys) / seconds, 1),
        "ms_per_series": round(1000 * seconds / len(ys), 3),
        "warmup_seconds": 0.0,
    }


def bench_families(
    n_series: int = 1000,
    n_rows: int = 1000,
    families: list[str] | None = None,
    device: str = "cpu",
    *,
    baselines: bool = False,
) -> list[dict]:
    """Seconds and series per second of each family over a synthetic panel.

    Parameters
    ----------
    n_series, n_rows : int
        Panel size.
    families : list of str, optional
        Family names (default: every registered family, in job order).
    device : {"cpu", "gpu"}
        ``gpu`` runs the batched CuPy function of each family that has one; raises
        :class:`python_jobs.gpu.GpuUnavailableError` where CuPy or a device is missing.
    baselines : bool
        Also time pandas computing the rolling family's columns (row ``rolling[pandas]``).

    Returns
    -------
    list of dict
        Per family: ``family``, ``kind``, ``device`` (where it actually ran), ``seconds``,
        ``series_per_second``, ``ms_per_series``, ``warmup_seconds``, and on the GPU
        ``max_abs_diff_vs_cpu`` over the first series.
    """
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', not {device!r}")
    if device == "gpu":
        from python_jobs.gpu import require_gpu

        require_gpu()
    ys = synthetic_panel(n_series, n_rows)
    rows = []
    for fam in registry.families(names=families):
        on_gpu = device == "gpu" and fam.gpu is not None
        start = time.perf_counter()
        if on_gpu:
            fam.gpu_fn()(ys[:2], **fam.resolved())
        else:
            fam.compute(ys[0])
        warmup = time.perf_counter() - start
        start = time.perf_counter()
        results = fam.gpu_fn()(ys, **fam.resolved()) if on_gpu else [fam.compute(y) for y in ys]
        seconds = time.perf_counter() - start
        row = {
            "family": fam.name,
            "kind": fam.kind,
            "device": "gpu" if on_gpu else "cpu",
            "seconds": round(seconds, 3),
            "series_per_second": round(n_series / seconds, 1),
            "ms_per_series": round(1000 * seconds / n_series, 3),
            "warmup_seconds": round(warmup, 3),
        }
        if on_gpu:
            sample = ys[:PARITY_SAMPLE]
            row["max_abs_diff_vs_cpu"] = _max_abs_diff(
                results[:PARITY_SAMPLE], [fam.compute(y) for y in sample]
            )
        rows.append(row)
        if baselines and fam.name == "rolling":
            rows.append(_pandas_rolling_row(ys))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--family", action="append", default=None)
    args = parser.parse_args(argv)
    rows = bench_families(args.series, args.rows, args.family, args.device, baselines=True)
    print(f"{args.series} series x {args.rows} draws, one core")
    print(f"{'family':<22} {'device':<6} {'seconds':>9} {'series/s':>10} {'ms/series':>10} {'warm-up s':>10}")
    for row in rows:
        print(
            f"{row['family']:<22} {row['device']:<6} {row['seconds']:9.3f} {row['series_per_second']:10.1f} "
            f"{row['ms_per_series']:10.3f} {row['warmup_seconds']:10.3f}"
        )
    total = sum(row["seconds"] for row in rows if not row["family"].endswith("]"))
    print(f"{'all families':<22} {'':<6} {total:9.3f} {args.series / total:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
