"""tsfresh calculators with their arithmetic kept and their per-call overhead removed.

Each function returns what the tsfresh calculator of the same name returns, by the same
numpy operations on the same arrays, but shares the work tsfresh repeats per calculator:

- :class:`Shared` sorts the series once; the sorted copy gives ``np.unique``'s values and
  counts (``np.unique`` sorts and compares neighbours the same way) for the four
  re-occurrence calculators, the order statistics of :func:`quantile` (numpy's default
  linear interpolation, its own lerp formula, for both quantiles from one sort) and the
  range of :func:`binned_entropy`; it also holds ``np.mean`` and ``np.var`` of the series,
  which eight calculators would each compute again;
- :func:`binned_entropy`'s ``np.histogram`` counts in one numba pass with numpy's own
  uniform-bin index arithmetic;
- :func:`agg_autocorrelation` computes only the lags it aggregates: statsmodels' ``acf``
  (direct method, below tsfresh's FFT threshold of 1,250 values) correlates the whole series
  at every lag, O(n^2), where each lag is one dot product of the same two slices;
- :func:`benford_correlation`'s first digits of integer values by integer division in one
  numba pass (tsfresh formats every value as a string);
- :func:`c3`, :func:`time_reversal_asymmetry_statistic` and :func:`number_peaks` read
  slices where tsfresh builds rolled copies (the same elements, where no roll wraps);
- :func:`covariance` and :func:`correlation` are ``np.cov`` and ``np.corrcoef``'s own steps
  for two series, without their argument handling (a large share of their cost here).

The tests hold every one equal to tsfresh.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
from tsfresh.feature_extraction import feature_calculators

from python_jobs.features._numba import njit

# tsfresh's agg_autocorrelation switches statsmodels' acf to the FFT above this length.
ACF_FFT_THRESHOLD = 1250
# Exact integers below this are first-digit-able by integer division in int64.
_EXACT_INTEGER = 2.0**53
BENFORD = np.array([np.log10(1 + 1 / n) for n in range(1, 10)])  # as tsfresh builds it


def covariance(a: np.ndarray, b: np.ndarray, ddof: int) -> np.ndarray:
    """``np.cov(a, b, ddof=ddof)`` for two 1-D float series: numpy's own steps without its checks.

    The rows stacked, each less its mean, ``dot(X, X.T.conj())`` (the same BLAS call), times
    ``1 / (n - ddof)``.
    """
    X = np.empty((2, len(a)))
    X[0] = a
    X[1] = b
    avg = X.mean(axis=1)
    X -= avg[:, None]
    c = np.dot(X, X.T.conj())
    c *= np.true_divide(1, len(a) - ddof)
    return c


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """``np.corrcoef(a, b)[0, 1]`` by numpy's own steps (:func:`covariance`, then the scaling)."""
    c = covariance(a, b, 1)
    stddev = np.sqrt(np.diag(c))
    c /= stddev[:, None]
    c /= stddev[None, :]
    np.clip(c, -1, 1, out=c)
    return c[0, 1]


class Shared:
    """The sorted series, its distinct values with their counts, its mean and variance, once.

    ``mean`` and ``var`` are ``np.mean(x)`` and ``np.var(x)``, the values each tsfresh
    calculator computes for itself (``np.std`` is the square root of the latter).
    """

    def __init__(self, x: np.ndarray):
        self.x = x
        self.mean = np.mean(x) if len(x) else math.nan
        self.var = np.var(x) if len(x) else math.nan
        self.sorted = np.sort(x)
        if len(x) == 0:
            self.unique = self.sorted
            self.counts = np.zeros(0, dtype=np.intp)
            return
        mask = np.empty(len(x), dtype=bool)
        mask[0] = True
        np.not_equal(self.sorted[1:], self.sorted[:-1], out=mask[1:])
        self.unique = self.sorted[mask]
        starts = np.flatnonzero(mask)
        self.counts = np.diff(np.append(starts, len(x)))

    @cached_property
    def abs_diff(self) -> np.ndarray:
        """``np.abs(np.diff(x))``, which two calculators take."""
        return np.abs(np.diff(self.x))


def _shared(x: np.ndarray, shared: Shared | None) -> Shared:
    return Shared(np.asarray(x, dtype=np.float64)) if shared is None else shared


def has_duplicate_max(x: np.ndarray, shared: Shared | None = None) -> bool:
    """``np.sum(x == np.max(x)) >= 2``: the count of the largest distinct value."""
    return bool(_shared(x, shared).counts[-1] >= 2)


def has_duplicate_min(x: np.ndarray, shared: Shared | None = None) -> bool:
    """``np.sum(x == np.min(x)) >= 2``: the count of the smallest distinct value."""
    return bool(_shared(x, shared).counts[0] >= 2)


def absolute_maximum(x: np.ndarray, shared: Shared | None = None) -> float:
    """``np.max(np.absolute(x))``: the larger magnitude of the two extremes."""
    if len(x) == 0:
        return math.nan
    ordered = _shared(x, shared).sorted
    return max(abs(ordered[0]), abs(ordered[-1]))


def mean_abs_change(x: np.ndarray, shared: Shared | None = None) -> float:
    return np.mean(_shared(x, shared).abs_diff)


def absolute_sum_of_changes(x: np.ndarray, shared: Shared | None = None) -> float:
    return np.sum(_shared(x, shared).abs_diff)


def count_above_mean(x: np.ndarray, shared: Shared | None = None) -> int:
    return int(np.count_nonzero(x > _shared(x, shared).mean))


def count_below_mean(x: np.ndarray, shared: Shared | None = None) -> int:
    return int(np.count_nonzero(x < _shared(x, shared).mean))


def variation_coefficient(x: np.ndarray, shared: Shared | None = None) -> float:
    s = _shared(x, shared)
    if s.mean == 0:
        return math.nan
    return np.sqrt(s.var) / s.mean


def ratio_beyond_r_sigma(x: np.ndarray, r: float, shared: Shared | None = None) -> float:
    s = _shared(x, shared)
    return np.sum(np.abs(x - s.mean) > r * np.sqrt(s.var)) / x.size


def cid_ce(x: np.ndarray, normalize: bool, shared: Shared | None = None) -> float:
    s = _shared(x, shared)
    if normalize:
        std = np.sqrt(s.var)
        if std == 0:
            return 0.0
        x = (x - s.mean) / std
    x = np.diff(x)
    return np.sqrt(np.dot(x, x))


@njit(cache=True, nogil=True)
def _histogram(x, first, norm_denom, edges, counts):  # pragma: no cover
    # np.histogram's uniform-bin path for values inside [first, last], value by value:
    # the same float index, then its corrections against the edges.
    bins = counts.shape[0]
    for k in range(x.shape[0]):
        v = x[k]
        index = int(((v - first) / norm_denom) * bins)
        if index == bins:
            index -= 1
        if v < edges[index]:
            index -= 1
        if v >= edges[index + 1] and index != bins - 1:
            index += 1
        counts[index] += 1


def binned_entropy(x: np.ndarray, max_bins: int, shared: Shared | None = None) -> float:
    """tsfresh's ``binned_entropy``: entropy of ``np.histogram(x, bins=max_bins)``'s frequencies."""
    s = _shared(x, shared)
    if len(x) == 0 or np.isnan(x).any():
        return feature_calculators.binned_entropy(x, max_bins)
    first, last = s.sorted[0], s.sorted[-1]
    if first == last:
        first, last = first - 0.5, last + 0.5
    edges = np.linspace(first, last, max_bins + 1, endpoint=True)
    if np.any(edges[:-1] >= edges[1:]):
        return feature_calculators.binned_entropy(x, max_bins)
    hist = np.zeros(max_bins, dtype=np.intp)
    _histogram(np.ascontiguousarray(x, dtype=np.float64), first, last - first, edges, hist)
    probs = hist / x.size
    probs[probs == 0] = 1.0
    return -np.sum(probs * np.log(probs))


def sum_of_reoccurring_values(x: np.ndarray, shared: Shared | None = None) -> float:
    s = _shared(x, shared)
    counts = s.counts.copy()
    counts[counts < 2] = 0
    counts[counts > 1] = 1
    return np.sum(counts * s.unique)


def sum_of_reoccurring_data_points(x: np.ndarray, shared: Shared | None = None) -> float:
    s = _shared(x, shared)
    counts = s.counts.copy()
    counts[counts < 2] = 0
    return np.sum(counts * s.unique)


def percentage_of_reoccurring_values_to_all_values(x: np.ndarray, shared: Shared | None = None) -> float:
    if len(x) == 0:
        return math.nan
    counts = _shared(x, shared).counts
    if counts.shape[0] == 0:
        return 0.0
    return np.sum(counts > 1) / float(counts.shape[0])


def ratio_value_number_to_time_series_length(x: np.ndarray, shared: Shared | None = None) -> float:
    if len(x) == 0:
        return math.nan
    return _shared(x, shared).unique.size / len(x)


def quantile(x: np.ndarray, q: float, shared: Shared | None = None) -> float:
    """``np.quantile(x, q)`` (linear method) from the sorted values, numpy's lerp formula."""
    if len(x) == 0:
        return math.nan
    ordered = _shared(x, shared).sorted
    n = len(ordered)
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return float(ordered[-1])
    if virtual < 0:
        return float(ordered[0])
    previous = math.floor(virtual)
    gamma = virtual - previous
    a, b = float(ordered[previous]), float(ordered[previous + 1])
    diff_b_a = b - a
    return b - diff_b_a * (1 - gamma) if gamma >= 0.5 else a + diff_b_a * gamma


def c3(x: np.ndarray, lag: int) -> float:
    """tsfresh's ``c3``: mean of ``x[i + 2 lag] x[i + lag] x[i]``, its rolled copies as slices."""
    n = x.size
    if lag < 1 or 2 * lag >= n:
        return feature_calculators.c3(x, lag)
    return np.mean(x[2 * lag :] * x[lag : n - lag] * x[: n - 2 * lag])


def time_reversal_asymmetry_statistic(x: np.ndarray, lag: int) -> float:
    """tsfresh's: mean of ``x[i + 2 lag]^2 x[i + lag] - x[i + lag] x[i]^2``, rolls as slices."""
    n = len(x)
    if lag < 1 or 2 * lag >= n:
        return feature_calculators.time_reversal_asymmetry_statistic(x, lag)
    two_lag = x[2 * lag :]
    one_lag = x[lag : n - lag]
    head = x[: n - 2 * lag]
    return np.mean(two_lag * two_lag * one_lag - one_lag * head * head)


def number_peaks(x: np.ndarray, n: int) -> int:
    """tsfresh's: values larger than their ``n`` neighbours on each side, rolls as slices."""
    size = len(x)
    if n < 1 or size <= 2 * n:
        return feature_calculators.number_peaks(x, n)
    x_reduced = x[n : size - n]
    res = None
    for i in range(1, n + 1):
        result_first = x_reduced > x[n - i : size - n - i]
        res = result_first if res is None else res & result_first
        res &= x_reduced > x[n + i : size - n + i]
    return np.sum(res)


def _acf(x: np.ndarray, nlags: int, mean: float) -> np.ndarray:
    # statsmodels acf(x, adjusted=True, fft=False)[: nlags + 1]: acovf's full correlation at
    # lag k is xo[k:] . xo[:n - k] (the same dot product), divided by n - k, then by lag 0.
    n = len(x)
    xo = x - mean
    acov = np.array([xo[k:].dot(xo[: n - k]) for k in range(nlags + 1)])
    acov /= n - np.arange(nlags + 1)
    return acov / acov[0]


def agg_autocorrelation(
    x: np.ndarray, param: list[dict], shared: Shared | None = None
) -> list[tuple[str, float]]:
    """tsfresh's ``agg_autocorrelation``: an aggregate of the autocorrelations at lags 1 .. maxlag."""
    n = len(x)
    if n > ACF_FFT_THRESHOLD:
        return feature_calculators.agg_autocorrelation(x, param)
    s = _shared(x, shared)
    var = s.var
    max_maxlag = max(config["maxlag"] for config in param)
    flat = np.abs(var) < 10**-10 or n == 1
    a = [0] * n if flat else _acf(x, min(max_maxlag, n - 1), s.mean)[1:]
    return [
        (
            f'f_agg_"{config["f_agg"]}"__maxlag_{config["maxlag"]}',
            getattr(np, config["f_agg"])(a[: int(config["maxlag"])]),
        )
        for config in param
    ]


def autocorrelation(x: np.ndarray, lag: int, shared: Shared | None = None) -> float:
    """tsfresh's ``autocorrelation``, ``np.isclose(v, 0)`` written out (``|v| <= 1e-8``)."""
    if len(x) < lag:
        return math.nan
    s = _shared(x, shared)
    y1 = x[: (len(x) - lag)]
    y2 = x[lag:]
    x_mean = s.mean
    sum_product = np.sum((y1 - x_mean) * (y2 - x_mean))
    v = s.var
    if abs(v) <= 1e-8:
        return math.nan
    return sum_product / ((len(x) - lag) * v)


@njit(cache=True, nogil=True)
def _first_digit_counts(x: np.ndarray, counts: np.ndarray) -> bool:  # pragma: no cover
    # counts[d] of first significant digit d of |nan_to_num(x)| (0 for 0 and NaN); False where
    # a value is not an integer below 2**53 (infinities included: tsfresh's string path then
    # decides).
    for k in range(x.shape[0]):
        value = 0.0 if math.isnan(x[k]) else abs(x[k])
        if not (value == math.floor(value) and value < _EXACT_INTEGER):
            return False
        digit = np.int64(value)
        while digit >= 10:
            digit //= 10
        counts[digit] += 1
    return True


def benford_correlation(x: np.ndarray) -> float:
    """tsfresh's ``benford_correlation``, with integer first digits computed without strings."""
    arr = np.ascontiguousarray(x, dtype=np.float64)
    counts = np.zeros(10, dtype=np.int64)
    if len(arr) == 0 or not _first_digit_counts(arr, counts):
        return feature_calculators.benford_correlation(x)
    # tsfresh's (digits == d).mean() is count / n
    data_distribution = counts[1:] / len(arr)
    return correlation(BENFORD, data_distribution)
