"""statsmodels' STL (non-robust), ported to numba.

``statsmodels.tsa.seasonal.STL(x, period, seasonal)`` with its other defaults (degree-1
LOESS everywhere, every jump 1, trend and low-pass windows from the period) and ``fit()``
with its non-robust defaults (5 inner iterations, no outer ones) is a port of Cleveland et
al.'s Fortran ``stl``. Without robustness weights every LOESS weight depends on positions
only, so :func:`stl_tables` runs statsmodels' ``_est`` once per output position (same
operations, in the same order, except the tricube weights computed by multiplication rather
than ``pow``) and keeps the final weights; :func:`decompose` then runs the five passes as
weighted sums in ``_est``'s own order. The tests hold trend and seasonal equal to
statsmodels' within 1e-12; the tables are what the GPU path (``python_jobs.gpu.stl``) batches.

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
def _apply(index, weights, values, out, start, stop):  # pragma: no cover
    # Rows start .. stop - 1 of sum_k weights[i, k] * values[index[i, k]], k ascending:
    # _est's own final sum, term by term.
    for i in range(start, stop):
        total = 0.0
        for k in range(index.shape[1]):
            total = total + weights[i, k] * values[index[i, k]]
        out[i] = total


@njit(cache=True, nogil=True)
def _apply_banded(index, weights, weights_t, offsets, first, stop, values, out):  # pragma: no cover
    # _apply over every row, the rows first .. stop - 1 reading values[i + offsets[k]]: the
    # same sums in the same order, run k outer and i inner over contiguous values, which
    # compiles to SIMD code (the gathers of _apply do not).
    _apply(index, weights, values, out, 0, first)
    _apply(index, weights, values, out, stop, index.shape[0])
    band = out[first:stop]
    band[:] = 0.0
    for k in range(offsets.shape[0]):
        w = weights_t[k, first:stop]
        v = values[first + offsets[k] : stop + offsets[k]]
        for i in range(band.shape[0]):
            band[i] = band[i] + w[i] * v[i]


@njit(cache=True, nogil=True)
def _decompose_tables(y, period, cycle, low, trend_table):  # pragma: no cover
    n = y.shape[0]
    size = n + 2 * period
    trend = np.zeros(n)
    season = np.zeros(n)
    detrended = np.empty(n)
    cycle_out = np.empty(size)
    work_a = np.empty(size)
    work_b = np.empty(size)
    low_out = np.empty(n)
    for _ in range(INNER_ITERATIONS):
        for i in range(n):
            detrended[i] = y[i] - trend[i]
        _apply_banded(*cycle, detrended, cycle_out)
        _ma(cycle_out, size, period, work_a)
        _ma(work_a, size - period + 1, period, work_b)
        _ma(work_b, size - 2 * period + 2, 3, work_a)
        _apply_banded(*low, work_a, low_out)
        for i in range(n):
            season[i] = cycle_out[period + i] - low_out[i]
            detrended[i] = y[i] - season[i]
        _apply_banded(*trend_table, detrended, trend)
    return trend, season


def decompose(y: np.ndarray, period: int, seasonal: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """``(trend, seasonal)`` as statsmodels' ``STL(y, period, seasonal).fit()`` returns them.

    Uses the smoothers' weight tables (:func:`stl_tables`, computed once per length and
    period), so each of the five passes is a few weighted sums per point; away from the ends
    each smoother reads a fixed band of its input (:func:`banded_tables`).
    """
    arr = np.ascontiguousarray(y, dtype=np.float64)
    tables = banded_tables(len(arr), period, seasonal)
    return _decompose_tables(arr, period, tables["cycle"], tables["low_pass"], tables["trend"])


def _band(index: np.ndarray, weights: np.ndarray) -> tuple:
    # The longest run of rows around the middle whose index row is i + offsets (one offset
    # vector for the whole run): there output i = sum_k weights[i, k] * input[i + offsets[k]].
    rows = index.shape[0]
    shifts = index - np.arange(rows)[:, None]
    middle = rows // 2
    offsets = np.ascontiguousarray(shifts[middle])
    match = (shifts == offsets).all(axis=1)
    first, stop = middle, middle + 1
    while first > 0 and match[first - 1]:
        first -= 1
    while stop < rows and match[stop]:
        stop += 1
    return (index, weights, np.ascontiguousarray(weights.T), offsets, first, stop)


@lru_cache(maxsize=32)
def banded_tables(n: int, period: int, seasonal: int = 13) -> dict[str, tuple]:
    """:func:`stl_tables` with, per smoother, its transposed weights and constant-offset band.

    Each value is ``(index, weights, weights.T, offsets, first, stop)``: rows ``first`` to
    ``stop - 1`` read ``input[i + offsets[k]]``, the rest go through ``index``.
    """
    return {name: _band(*table) for name, table in stl_tables(n, period, seasonal).items()}


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


@lru_cache(maxsize=32)
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
