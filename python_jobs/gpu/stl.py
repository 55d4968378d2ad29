"""The tsfeatures (stl) family on the GPU: a batched STL and tsfeatures' formulas as array code.

Non-robust STL applies fixed LOESS weights (they depend on positions only), so the weights of
each smoother are computed once per (length, period) on the CPU
(:func:`python_jobs.features._stl_numba.stl_tables`) and the five inner iterations run on the
device as gathers over the whole batch: cycle-subseries smooth, three moving averages,
low-pass smooth, trend smooth. The outputs then follow tsfeatures' formulas on the scaled
series: strengths, spikiness, the quadratic fit (one product with statsmodels'
pseudo-inverse), stability and lumpiness (window means and variances), spectral entropy (the
entropy family's periodogram), crossing points (the median from one sort) and the Hurst
exponent (every prefix's rescaled range at once: O(n^2) memory per series, chunked).

Falls back to the CPU for one output: ``stat_flat_spots`` (``pandas.cut``'s bin edges, a few
microseconds per series on the host). A season length of 1 (no STL) runs the CPU family.
cuDF is not used: every step is a gather or a reduction over a dense batch.
"""

from __future__ import annotations

import functools
import math
from types import ModuleType

import numpy as np

from python_jobs.features import stl as cpu
from python_jobs.features._stl_numba import INNER_ITERATIONS, stl_tables
from python_jobs.features.registry import param
from python_jobs.gpu import batching, cupy
from python_jobs.gpu._stat import run_stat_batch
from python_jobs.gpu.entropy import _spectral_entropy

EPS = float(np.finfo(float).eps)


def _smooth(xp: ModuleType, values, table):
    index, weights = table
    return (values[:, index] * weights[None]).sum(axis=2)


def _moving_average(xp: ModuleType, values, width: int):
    count = values.shape[1] - width + 1
    windows = values[:, batching.window_index(xp, values.shape[1], width)]
    return windows.sum(axis=2)[:, :count] / float(width)


def decompose_xp(xp: ModuleType, x, period: int, seasonal: int = cpu.STL_SEASONAL):
    """``(trend, seasonal)`` of every row of ``x``: statsmodels' STL, batched."""
    n = x.shape[1]
    tables = {
        name: (xp.asarray(i), xp.asarray(w)) for name, (i, w) in stl_tables(n, period, seasonal).items()
    }
    trend = xp.zeros_like(x)
    season = xp.zeros_like(x)
    for _ in range(INNER_ITERATIONS):
        cycle = _smooth(xp, x - trend, tables["cycle"])
        low = _moving_average(xp, _moving_average(xp, _moving_average(xp, cycle, period), period), 3)
        low = _smooth(xp, low, tables["low_pass"])
        season = cycle[:, period : period + n] - low
        trend = _smooth(xp, x - season, tables["trend"])
    return trend, season


def _variance(xp: ModuleType, values, axis: int = 1):
    return values.var(axis=axis, ddof=1)


def _shape(xp: ModuleType, x, trend, season) -> dict:
    n = x.shape[1]
    remainder = x - season - trend
    varx = _variance(xp, x)
    vare = _variance(xp, remainder)
    vardeseason = _variance(xp, x - season)
    flat = (varx < EPS) | (vardeseason / varx < 1e-10)
    strength = xp.where(flat, 0.0, xp.clip(1 - vare / vardeseason, 0, 1))
    var_sr = _variance(xp, remainder + season)
    seasonal = xp.where((varx < EPS) | (var_sr < EPS), 0.0, xp.clip(1 - vare / var_sr, 0, 1))
    squared = (remainder - remainder.mean(axis=1, keepdims=True)) ** 2
    spike = _variance(xp, (vare[:, None] * (n - 1) - squared) / (n - 2))
    coefs = trend @ xp.asarray(cpu.quadratic_fit(n)).T
    return {
        "trend": strength,
        "seasonal_strength": seasonal,
        "spike": spike,
        "linearity": coefs[:, 1],
        "curvature": -coefs[:, 2],
    }


def _segments(xp: ModuleType, x, period: int):
    width = 10 if period == 1 else period
    count = x.shape[1] // width
    return x[:, : count * width].reshape(x.shape[0], count, width), count >= 2


def _hurst(xp: ModuleType, x):
    n = x.shape[1]
    t = xp.arange(1, n + 1, dtype=xp.float64)
    cumulative = xp.cumsum(x, axis=1)
    mean = cumulative / t  # (B, n): mean of each prefix
    prefix = xp.arange(n)[None, :, None] >= xp.arange(n)[None, None, :]  # (1, i, j): j <= i
    centred = xp.where(prefix, x[:, None, :] - mean[:, :, None], 0.0)
    spread = xp.sqrt((centred * centred).sum(axis=2) / t)
    deviation = cumulative[:, None, :] - t[None, None, :] * mean[:, :, None]
    high = xp.where(prefix, deviation, -xp.inf).max(axis=2)
    low = xp.where(prefix, deviation, xp.inf).min(axis=2)
    with np.errstate(all="ignore"):
        log_rs = xp.log((high - low) / spread)[:, 1:]
    log_t = xp.log(t[1:])
    dt = log_t - log_t.mean()
    slope = ((log_rs - log_rs.mean(axis=1, keepdims=True)) * dt).sum(axis=1) / (dt * dt).sum()
    return xp.where(xp.isfinite(log_rs).all(axis=1), slope, np.nan)


def _crossing_points(xp: ModuleType, x):
    ordered = xp.sort(x, axis=1)
    n = x.shape[1]
    median = ordered[:, n // 2] if n % 2 else (ordered[:, n // 2 - 1] + ordered[:, n // 2]) / 2
    below = x <= median[:, None]
    return (below[:, 1:] != below[:, :-1]).sum(axis=1)


def stl_xp(xp: ModuleType, values, period: int) -> dict:
    """Every ``stl`` output but ``stat_flat_spots`` for each row of ``values``."""
    freq = period
    with np.errstate(all="ignore"):
        x = values - values.mean(axis=1, keepdims=True)
        x = x / values.std(axis=1, ddof=1, keepdims=True)
        out = _shape(xp, x, *decompose_xp(xp, x, freq))
        segments, enough = _segments(xp, x, freq)
        if enough:
            out["stability"] = _variance(xp, segments.mean(axis=2))
            out["lumpiness"] = _variance(xp, _variance(xp, segments, axis=2))
        else:  # tsfeatures: 0 below two windows
            out["stability"] = out["lumpiness"] = xp.zeros(x.shape[0])
        out["entropy"] = _spectral_entropy(xp, x)
        out["hurst"] = _hurst(xp, x)
        out["crossing_points"] = _crossing_points(xp, x)
    named = {name: out[key] for name, key in cpu.STL_KEYS.items() if key != "flat_spots"}
    named["stat_flat_spots"] = xp.full(x.shape[0], np.nan)
    return {name: xp.where(xp.isfinite(v), v, np.nan).astype(xp.float64) for name, v in named.items()}


def stl_batch_xp(xp: ModuleType, ys: list[np.ndarray], freq: int | None = None) -> list[dict[str, float]]:
    """The ``stl`` family for many series, with array module ``xp``."""
    freq = param("stl", "freq", freq)
    if freq < 2:
        return [cpu.stl(y, freq) for y in ys]
    results = run_stat_batch(
        xp,
        ys,
        cpu.stl_outputs(),
        functools.partial(stl_xp, period=freq),
        min_length=cpu.min_length(freq),
        # the Hurst prefixes: a few (n, n) float64 temporaries per series
        bytes_per_row=lambda n: 40 * n,
    )
    for y, result in zip(ys, results, strict=True):
        if math.isfinite(result["stat_crossing_points"]):  # the series was computed
            result["stat_flat_spots"] = cpu.flat_spots(cpu.scale(np.asarray(y, dtype=np.float64)))
    return results


def stl_batch(ys: list[np.ndarray]) -> list[dict[str, float]]:
    """GPU counterpart of the ``stl`` family (CuPy)."""
    return stl_batch_xp(cupy(), ys)
