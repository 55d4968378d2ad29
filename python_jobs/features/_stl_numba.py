"""statsmodels' STL (non-robust), ported line by line to numba.

``statsmodels.tsa.seasonal.STL(x, period, seasonal)`` with its other defaults (degree-1
LOESS everywhere, every jump 1, trend and low-pass windows from the period) and
``fit()`` with its non-robust defaults (5 inner iterations, no outer ones) is a port of
Cleveland et al.'s Fortran ``stl``; this module is the same port with the same operations in
the same order, compiled with numba so that the family does not pay statsmodels' per-call
cost (and with the tricube weights computed by multiplication rather than ``pow``, which
was most of statsmodels' run time). The tests hold trend and seasonal equal to statsmodels'
within 1e-12.

Non-robust STL is linear in ``x`` (the LOESS weights depend on positions only), which the GPU
path uses: :func:`stl_operators` returns the matrices ``T`` and ``S`` with
``trend = T @ x`` and ``seasonal = S @ x`` for one length and period.

Reference: R. B. Cleveland, W. S. Cleveland, J. E. McRae, I. Terpenning, "STL: A
Seasonal-Trend Decomposition Procedure Based on Loess", J. Official Statistics 6 (1990).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from python_jobs.features._numba import njit

INNER_ITERATIONS = 5


def windows(period: int, seasonal: int) -> tuple[int, int]:
    """statsmodels' default ``(trend, low_pass)`` window lengths for a period and seasonal window."""
    trend = math.ceil(1.5 * period / (1 - 1.5 / seasonal))
    trend += trend % 2 == 0
    low_pass = period + 1
    low_pass += low_pass % 2 == 0
    return trend, low_pass


@njit(cache=True, nogil=True)
def _est(y, n, len_, xs, nleft, nright, w):  # pragma: no cover
    rng = n - 1.0
    h = float(max(xs - nleft, nright - xs))
    if len_ > n:
        h += (len_ - n) // 2.0
    h9 = 0.999 * h
    h1 = 0.001 * h
    a = 0.0
    for j in range(nleft - 1, nright):
        w[j] = 0.0
        r = math.fabs(j + 1 - xs)
        if r <= h9:
            if r <= h1:
                w[j] = 1.0
            else:
                # Tricube by multiplication: pow() would be most of the run time (statsmodels
                # calls it; the results differ by rounding only, ~1e-16 relative).
                q = r / h
                t = 1.0 - q * q * q
                w[j] = t * t * t
            a = a + w[j]
    if a <= 0:
        return np.nan
    for j in range(nleft - 1, nright):
        w[j] = w[j] / a
    if h > 0:
        a = 0.0
        for j in range(nleft - 1, nright):
            a = a + w[j] * (j + 1)
        b = xs - a
        c = 0.0
        for j in range(nleft - 1, nright):
            d = j + 1 - a
            c = c + w[j] * (d * d)
        if math.sqrt(c) > 0.001 * rng:
            b = b / c
            for j in range(nleft - 1, nright):
                w[j] = w[j] * (b * (j + 1 - a) + 1.0)
    ys = 0.0
    for j in range(nleft - 1, nright):
        ys = ys + w[j] * y[j]
    return ys


@njit(cache=True, nogil=True)
def _ess(y, n, len_, ys, res):  # pragma: no cover
    # Every jump is 1, so statsmodels' interpolation branches are never taken.
    if n < 2:
        ys[0] = y[0]
        return
    if len_ >= n:
        for i in range(n):
            ys[i] = _est(y, n, len_, i + 1, 1, n, res)
            if np.isnan(ys[i]):
                ys[i] = y[i]
        return
    nsh = (len_ + 2) // 2
    nleft = 1
    nright = len_
    for i in range(n):
        if (i + 1) > nsh and nright != n:
            nleft = nleft + 1
            nright = nright + 1
        ys[i] = _est(y, n, len_, i + 1, nleft, nright, res)
        if np.isnan(ys[i]):
            ys[i] = y[i]


@njit(cache=True, nogil=True)
def _ma(x, n, len_, ave):  # pragma: no cover
    newn = n - len_ + 1
    flen = float(len_)
    v = 0.0
    for i in range(len_):
        v = v + x[i]
    ave[0] = v / flen
    for j in range(1, newn):
        # the running sum gains x[j + len - 1] and loses x[j - 1], as statsmodels updates it
        v += x[j + len_ - 1] - x[j - 1]
        ave[j] = v / flen


@njit(cache=True, nogil=True)
def _ss(work, n, period, ns, season_buffer):  # pragma: no cover
    y = work[0]
    season = work[1]
    work1 = work[2]
    work2 = work[3]
    for j in range(period):
        k = (n - (j + 1)) // period + 1
        for i in range(k):
            work1[i] = y[i * period + j]
        _ess(work1, k, ns, work2[1:], season_buffer)
        nright = min(ns, k)
        work2[0] = _est(work1, k, ns, 0, 1, nright, season_buffer)
        if np.isnan(work2[0]):
            work2[0] = work2[1]
        nleft = max(1, k - ns + 1)
        work2[k + 1] = _est(work1, k, ns, k + 1, nleft, k, season_buffer)
        if np.isnan(work2[k + 1]):
            work2[k + 1] = work2[k]
        for m in range(k + 2):
            season[m * period + j] = work2[m]


@njit(cache=True, nogil=True)
def stl_decompose(y, period, seasonal, trend_len, low_pass):  # pragma: no cover
    """``(trend, seasonal)`` of statsmodels ``STL(y, period, seasonal).fit()`` (non-robust)."""
    n = y.shape[0]
    trend = np.zeros(n)
    season = np.zeros(n)
    work = np.zeros((7, n + 2 * period))
    for _ in range(INNER_ITERATIONS):
        for i in range(n):
            work[0, i] = y[i] - trend[i]
        _ss(work, n, period, seasonal, season)
        # statsmodels' _fts: three moving averages of the cycle-subseries smooth.
        size = n + 2 * period
        _ma(work[1], size, period, work[2])
        _ma(work[2], size - period + 1, period, work[0])
        _ma(work[0], size - 2 * period + 2, 3, work[2])
        _ess(work[2], n, low_pass, work[0], work[4])
        for i in range(n):
            season[i] = work[1, period + i] - work[0, i]
            work[0, i] = y[i] - season[i]
        _ess(work[0], n, trend_len, trend, work[2])
    return trend, season


def decompose(y: np.ndarray, period: int, seasonal: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """``(trend, seasonal)`` as statsmodels' ``STL(y, period, seasonal).fit()`` returns them."""
    trend_len, low_pass = windows(period, seasonal)
    return stl_decompose(np.ascontiguousarray(y, dtype=np.float64), period, seasonal, trend_len, low_pass)


@lru_cache(maxsize=8)
def stl_operators(n: int, period: int, seasonal: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """``(T, S)``, ``(n, n)`` matrices with ``trend = T @ y`` and ``seasonal = S @ y``.

    Built column by column from the decomposition of the unit vectors (non-robust STL is
    linear); read-only, cached per (length, period).
    """
    trend_ops = np.empty((n, n))
    season_ops = np.empty((n, n))
    unit = np.zeros(n)
    for col in range(n):
        unit[col] = 1.0
        trend_ops[:, col], season_ops[:, col] = decompose(unit, period, seasonal)
        unit[col] = 0.0
    trend_ops.setflags(write=False)
    season_ops.setflags(write=False)
    return trend_ops, season_ops


@njit(cache=True, nogil=True)
def _record(y_len, n, len_, xs, nleft, nright, fallback, index, weights, row):  # pragma: no cover
    # One LOESS output as a weighted sum: the weights _est leaves in its buffer, or a copy
    # of input ``fallback`` where _est has no positive weight (statsmodels keeps y there).
    buffer = np.zeros(y_len)
    value = _est(np.zeros(y_len), n, len_, xs, nleft, nright, buffer)
    index[row, :] = 0
    weights[row, :] = 0.0
    if np.isnan(value):
        index[row, 0] = fallback
        weights[row, 0] = 1.0
        return
    for j in range(nleft - 1, nright):
        index[row, j - nleft + 1] = j
        weights[row, j - nleft + 1] = buffer[j]


@njit(cache=True, nogil=True)
def _smoother_table(n, len_, index, weights):  # pragma: no cover
    # _ess (every jump 1) as a table: output i = sum_k weights[i, k] * y[index[i, k]].
    if len_ >= n:
        for i in range(n):
            _record(n, n, len_, i + 1, 1, n, i, index, weights, i)
        return
    nsh = (len_ + 2) // 2
    nleft = 1
    nright = len_
    for i in range(n):
        if (i + 1) > nsh and nright != n:
            nleft = nleft + 1
            nright = nright + 1
        _record(n, n, len_, i + 1, nleft, nright, i, index, weights, i)


@njit(cache=True, nogil=True)
def _cycle_table(n, period, ns, index, weights):  # pragma: no cover
    # _ss as a table over y (length n) for its n + 2 period outputs, the cycle-subseries
    # smooths extended one period at each end.
    for j in range(period):
        k = (n - (j + 1)) // period + 1
        width = min(ns, k)
        rows_index = np.zeros((k + 2, width), dtype=np.int64)
        rows_weights = np.zeros((k + 2, width))
        _smoother_table(k, ns, rows_index[1 : k + 1], rows_weights[1 : k + 1])
        _record(k, k, ns, 0, 1, width, -1, rows_index, rows_weights, 0)
        if rows_weights[0, 0] == 1.0 and rows_index[0, 0] == -1:
            rows_index[0] = rows_index[1]
            rows_weights[0] = rows_weights[1]
        _record(k, k, ns, k + 1, max(1, k - ns + 1), k, -1, rows_index, rows_weights, k + 1)
        if rows_weights[k + 1, 0] == 1.0 and rows_index[k + 1, 0] == -1:
            rows_index[k + 1] = rows_index[k]
            rows_weights[k + 1] = rows_weights[k]
        for m in range(k + 2):
            out = m * period + j
            for c in range(width):
                index[out, c] = rows_index[m, c] * period + j
                weights[out, c] = rows_weights[m, c]


@lru_cache(maxsize=8)
def stl_tables(n: int, period: int, seasonal: int = 13) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The decomposition's LOESS smoothers as ``(index, weights)`` gather tables for length ``n``.

    ``cycle`` maps ``y`` (n) to the cycle-subseries smooth (n + 2 period), ``low_pass`` and
    ``trend`` map n values to n. Output ``i`` of a smoother is
    ``sum_k weights[i, k] * input[index[i, k]]``: :func:`decompose` with the weights computed
    once, which is what lets a batch of series share them (``python_jobs.gpu.stl``).
    """
    trend_len, low_pass = windows(period, seasonal)
    kmax = (n - 1) // period + 1
    tables = {}
    cycle_index = np.zeros((n + 2 * period, min(seasonal, kmax)), dtype=np.int64)
    cycle_weights = np.zeros(cycle_index.shape)
    _cycle_table(n, period, seasonal, cycle_index, cycle_weights)
    tables["cycle"] = (cycle_index, cycle_weights)
    for name, width in (("low_pass", low_pass), ("trend", trend_len)):
        index = np.zeros((n, min(width, n)), dtype=np.int64)
        weights = np.zeros(index.shape)
        _smoother_table(n, width, index, weights)
        tables[name] = (index, weights)
    for index, weights in tables.values():
        index.setflags(write=False)
        weights.setflags(write=False)
    return tables
