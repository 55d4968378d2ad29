"""STL decomposition and related shape features of the PyPI ``tsfeatures`` package.

``stat_trend_strength``, ``stat_seasonality_strength``, ``stat_linearity``, ``stat_curvature``,
``stat_spikiness`` are ``tsfeatures.stl_features``' values; ``stat_entropy_tsfeatures``
(tsfeatures' ``entropy``: antropy's normalised spectral entropy) comes from the entropy
family's :func:`python_jobs.features.entropy.spectral_entropy`.
Everything is re-implemented here with the same arithmetic, because the package's versions
pay for Python loops or per-call overhead far above their arithmetic:

- ``stl_features``: statsmodels' STL is replaced by the numba port in
  :mod:`python_jobs.features._stl_numba` (equal within 1e-12), followed by the package's own
  formulas in one numba pass (:func:`stl_shape`), the quadratic fit through statsmodels'
  ``OLS`` pseudo-inverse, computed once per length;
- ``hurst`` (O(n^2) Python in tsfeatures: 40 ms for 1,000 rows), here a SIMD kernel that
  keeps each prefix's sums in tsfeatures' order (:func:`_rescaled_ranges`);
- ``stability``, ``lumpiness``, ``crossing_points`` and ``flat_spots`` (a Python ``groupby``
  over every row): single numba passes, ``flat_spots`` over pandas' own bin edges.

The tests hold every value equal to ``tsfeatures.tsfeatures()``.

Every value is computed on the mean-std scaled series ``(y - mean(y)) / std(y, ddof=1)``,
as ``tsfeatures.tsfeatures(panel, freq=season_length)`` does with its default
``scale=True`` (following R's ``tsfeatures``). The scale-free features (strengths, entropy,
Hurst, crossing points, flat spots) are unchanged by it; ``linearity`` and ``curvature``
are in units of the series' standard deviation, ``spikiness``, ``stability`` and
``lumpiness`` in its powers, so series of different ranges compare.

GPU: :mod:`python_jobs.gpu.stl` computes every output for a batch of series on the device.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
from statsmodels.api import add_constant
from statsmodels.tools.tools import pinv_extended

from python_jobs.features._common import as_series, finite_or_nan, is_constant, nan_dict, quiet, usable
from python_jobs.features._numba import import_cached, njit
from python_jobs.features._stl_numba import decompose
from python_jobs.features.entropy import spectral_entropy
from python_jobs.features.registry import definition, param, register

# tsfeatures imports antropy, which compiles at import: cache it first.
import_cached("antropy")
tsfeatures = import_cached("tsfeatures")

# output name -> tsfeatures key
STL_KEYS = {
    "stat_trend_strength": "trend",
    "stat_seasonality_strength": "seasonal_strength",
    "stat_linearity": "linearity",
    "stat_curvature": "curvature",
    "stat_spikiness": "spike",
    "stat_stability": "stability",
    "stat_lumpiness": "lumpiness",
    "stat_entropy_tsfeatures": "entropy",
    "stat_hurst_exponent": "hurst",
    "stat_crossing_points": "crossing_points",
    "stat_flat_spots": "flat_spots",
}


# tsfeatures' STL call: STL(x, period, seasonal=13) with statsmodels' other defaults.
STL_SEASONAL = 13


def stl_outputs() -> list[str]:
    return list(STL_KEYS)


def min_length(freq: int) -> int:
    """STL needs two full seasonal periods; tsfeatures returns placeholder zeros below that."""
    return 2 * max(freq, 2)


@njit(cache=True, nogil=True, error_model="numpy")
def _window_variances(x: np.ndarray, width: int) -> tuple[float, float]:  # pragma: no cover
    # Variance (ddof 1) of the window means and of the window variances (ddof 1), as numpy's
    # mean/var compute them (sum / count, then the squared deviations from it), in one pass.
    count = x.shape[0] // width
    means = np.empty(count)
    variances = np.empty(count)
    for s in range(count):
        total = 0.0
        for k in range(s * width, (s + 1) * width):
            total += x[k]
        mean = total / width
        squares = 0.0
        for k in range(s * width, (s + 1) * width):
            d = x[k] - mean
            squares += d * d
        means[s] = mean
        variances[s] = squares / (width - 1)
    return _variance(means), _variance(variances)


@njit(cache=True, nogil=True, error_model="numpy")
def _variance(v: np.ndarray) -> float:  # pragma: no cover
    # numpy's var(ddof=1): the mean, then the mean squared deviation over n - 1.
    n = v.shape[0]
    total = 0.0
    for k in range(n):
        total += v[k]
    mean = total / n
    squares = 0.0
    for k in range(n):
        d = v[k] - mean
        squares += d * d
    return squares / (n - 1)


def _width(freq: int) -> int:
    return 10 if freq == 1 else freq


def _segments(x: np.ndarray, width: int) -> np.ndarray:
    count = len(x) // width
    return x[: count * width].reshape(count, width)


def stability(x: np.ndarray, freq: int) -> float:
    """``tsfeatures.stability``: variance (ddof 1) of the means of non-overlapping windows.

    One numba pass for a finite series; tsfeatures' NaN-skipping numpy otherwise.
    """
    width = _width(freq)
    if len(x) < 2 * width:
        return 0.0
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(arr).all():
        return float(np.nanvar(np.nanmean(_segments(arr, width), axis=1), ddof=1))
    return float(_window_variances(arr, width)[0])


def lumpiness(x: np.ndarray, freq: int) -> float:
    """``tsfeatures.lumpiness``: variance (ddof 1) of the variances of non-overlapping windows.

    One numba pass for a finite series; tsfeatures' NaN-skipping numpy otherwise.
    """
    width = _width(freq)
    if len(x) < 2 * width:
        return 0.0
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(arr).all():
        return float(np.nanvar(np.nanvar(_segments(arr, width), axis=1, ddof=1), ddof=1))
    return float(_window_variances(arr, width)[1])


@njit(cache=True, nogil=True, error_model="numpy")
def _add_terms(x, cumulative, mean, squares, lo, hi, first, last, stop):  # pragma: no cover
    # Terms j = first .. last - 1 of the prefixes i < stop (i >= j), one term at a time.
    for j in range(first, last):
        for i in range(j, stop):
            d = x[j] - mean[i]
            squares[i] += d * d
            deviation = cumulative[j] - (j + 1.0) * mean[i]
            lo[i] = min(lo[i], deviation)
            hi[i] = max(hi[i], deviation)


@njit(cache=True, nogil=True, error_model="numpy")
def _add_four_terms(x, cumulative, mean, squares, lo, hi, j):  # pragma: no cover
    # Terms j .. j + 3 of every prefix i >= j + 4, added in j order within each prefix.
    x0, x1, x2, x3 = x[j], x[j + 1], x[j + 2], x[j + 3]
    c0, c1, c2, c3 = cumulative[j], cumulative[j + 1], cumulative[j + 2], cumulative[j + 3]
    t0, t1, t2, t3 = j + 1.0, j + 2.0, j + 3.0, j + 4.0
    m, s, low, high = mean[j + 4 :], squares[j + 4 :], lo[j + 4 :], hi[j + 4 :]
    for i in range(m.shape[0]):
        mi = m[i]
        d0, d1, d2, d3 = x0 - mi, x1 - mi, x2 - mi, x3 - mi
        s[i] = (((s[i] + d0 * d0) + d1 * d1) + d2 * d2) + d3 * d3
        e0, e1, e2, e3 = c0 - t0 * mi, c1 - t1 * mi, c2 - t2 * mi, c3 - t3 * mi
        low[i] = min(min(min(min(low[i], e0), e1), e2), e3)
        high[i] = max(max(max(max(high[i], e0), e1), e2), e3)


@njit(cache=True, nogil=True, error_model="numpy")
def _rescaled_ranges(x: np.ndarray) -> np.ndarray:  # pragma: no cover
    # tsfeatures.utils.hurst_exponent's r_t / s_t for every prefix x[: i + 1]: with the prefix
    # mean m_i, s_t^2 = sum_{j<=i} (x_j - m_i)^2 / (i + 1) and r_t the range of
    # cumsum(x)_j - (j + 1) m_i over j <= i. The loops run j outer, i inner: every prefix
    # still sums its terms in j order (the same rounding as one prefix at a time), the inner
    # loop over independent prefixes compiles to SIMD code, and four terms per pass (the
    # small triangle i < j + 4 first) cut its loads and stores fourfold.
    n = x.shape[0]
    cumulative = np.cumsum(x)
    mean = np.empty(n)
    for i in range(n):
        mean[i] = cumulative[i] / (i + 1)
    squares = np.zeros(n)
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    j = 0
    while j + 4 <= n:
        _add_terms(x, cumulative, mean, squares, lo, hi, j, j + 4, j + 4)
        _add_four_terms(x, cumulative, mean, squares, lo, hi, j)
        j += 4
    _add_terms(x, cumulative, mean, squares, lo, hi, j, n, n)
    out = np.empty(n)
    for i in range(n):
        out[i] = (hi[i] - lo[i]) / math.sqrt(squares[i] / (i + 1))
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _log_slope(ranges: np.ndarray) -> float:  # pragma: no cover
    # Least-squares slope of log(ranges[t - 1]) on log(t), t = 2 .. n, in closed form; NaN
    # where a rescaled range is not finite and positive.
    n = ranges.shape[0] - 1
    log_rs = np.empty(n)
    log_t = np.empty(n)
    for k in range(n):
        log_rs[k] = math.log(ranges[k + 1]) if ranges[k + 1] > 0 else np.nan
        if not math.isfinite(log_rs[k]):
            return np.nan
        log_t[k] = math.log(k + 2.0)
    mean_t = log_t.sum() / n
    mean_rs = log_rs.sum() / n
    cross = 0.0
    squares = 0.0
    for k in range(n):
        dt = log_t[k] - mean_t
        cross += dt * (log_rs[k] - mean_rs)
        squares += dt * dt
    return cross / squares


def hurst(x: np.ndarray) -> float:
    """``tsfeatures.hurst``: slope of log(R/S) on log(t) over the prefixes t = 2 .. n.

    NaN where a rescaled range is not finite and positive (tsfeatures' least squares then
    fails and it returns NaN). The rescaled ranges are O(n^2) (one pass per prefix); the
    kernel keeps tsfeatures' per-prefix arithmetic and runs the prefixes side by side.
    """
    if len(x) < 3:
        return math.nan
    return float(_log_slope(_rescaled_ranges(np.ascontiguousarray(x, dtype=np.float64))))


@lru_cache(maxsize=8)
def quadratic_fit(n: int) -> np.ndarray:
    """The ``(3, n)`` pseudo-inverse statsmodels' ``OLS(trend, add_constant(poly(t, 2))).fit()`` uses."""
    design = add_constant(tsfeatures.utils.poly(np.arange(n) + 1, 2))
    pinv = pinv_extended(design)[0]
    pinv.setflags(write=False)
    return pinv


@njit(cache=True, nogil=True, error_model="numpy")
def _strengths(
    x: np.ndarray, trend: np.ndarray, seasonal: np.ndarray
) -> tuple[float, float, float]:  # pragma: no cover
    # tsfeatures.stl_features' trend and seasonal strengths and spike (formulas in stl_shape).
    n = x.shape[0]
    remainder = x - seasonal - trend
    eps = np.finfo(np.float64).eps
    varx = _variance(x)
    vare = _variance(remainder)
    vardeseason = _variance(x - seasonal)
    flat = varx < eps or vardeseason / varx < 1e-10
    strength = 0.0 if flat else max(0.0, min(1.0, 1 - vare / vardeseason))
    var_season_remainder = _variance(remainder + seasonal)
    if varx < eps or var_season_remainder < eps:
        season = 0.0
    else:
        season = max(0.0, min(1.0, 1 - vare / var_season_remainder))
    mean = remainder.sum() / n
    leave_one_out = np.empty(n)
    for k in range(n):
        d = remainder[k] - mean
        leave_one_out[k] = (vare * (n - 1) - d * d) / (n - 2)
    return strength, season, _variance(leave_one_out)


def stl_shape(x: np.ndarray, trend: np.ndarray, seasonal: np.ndarray) -> dict[str, float]:
    """``tsfeatures.stl_features``' trend, seasonal_strength, spike, linearity and curvature.

    The package's formulas, given the STL trend and seasonal components of ``x`` (period > 1),
    with remainder ``e = x - seasonal - trend``: trend strength
    ``max(0, min(1, 1 - var(e) / var(x - seasonal)))`` (0 for a flat series), seasonal strength
    ``max(0, min(1, 1 - var(e) / var(e + seasonal)))``, spike the variance of the leave-one-out
    variances of ``e``, linearity and curvature the quadratic fit's coefficients of the trend.
    One numba pass for the variances (numpy's nanvar costs more in call overhead than in
    arithmetic here).
    """
    strength, season, spike = _strengths(x, trend, seasonal)
    coefs = np.dot(quadratic_fit(len(x)), trend)
    return {
        "trend": strength,
        "seasonal_strength": season,
        "spike": spike,
        "linearity": coefs[1],
        "curvature": -coefs[2],
    }


@njit(cache=True, nogil=True, error_model="numpy")
def _longest_bin_run(x: np.ndarray, bins: np.ndarray) -> int:  # pragma: no cover
    # Bin of each value as pandas' cut finds it (searchsorted left in the edges), the
    # longest run of one bin.
    best = 0
    run = 0
    previous = -1
    for k in range(x.shape[0]):
        code = np.searchsorted(bins, x[k])
        run = run + 1 if code == previous else 1
        previous = code
        best = max(best, run)
    return best


@njit(cache=True, nogil=True, error_model="numpy")
def _crossings(x: np.ndarray) -> int:  # pragma: no cover
    # Only the sides of the median matter: any midpoint of the two middle values splits the
    # values alike, so numba's median counts as numpy's does.
    midline = np.median(x)
    count = 0
    for k in range(1, x.shape[0]):
        count += (x[k - 1] <= midline) != (x[k] <= midline)
    return count


def crossing_points(x: np.ndarray) -> float:
    """``tsfeatures.crossing_points``: how often consecutive values fall on two sides of the median.

    One numba pass for a finite series; tsfeatures' function otherwise.
    """
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(arr).all():
        return float(tsfeatures.crossing_points(arr)["crossing_points"])
    return float(_crossings(arr))


def _cut_edges(x: np.ndarray) -> np.ndarray | None:
    # pd.cut(x, bins=10)'s edges: linspace(min, max, 11), the first lowered by 0.1% of the
    # range. None where pandas takes another branch (a constant series, repeated edges) or
    # where include_lowest would move the minimum into the first bin (lowered edge == min).
    lo, hi = float(x.min()), float(x.max())
    if not lo < hi:
        return None
    bins = np.linspace(lo, hi, 11)
    bins[0] -= (hi - lo) * 0.001
    if not (bins[0] < lo and (np.diff(bins) > 0).all()):
        return None
    return bins


def flat_spots(x: np.ndarray) -> float:
    """``tsfeatures.flat_spots``: the longest run of one decile bin (``pd.cut`` into 10 bins).

    pandas' bin edges, then a numba pass over the values; pandas itself where its edges
    take another branch.
    """
    bins = _cut_edges(x)
    if bins is None:
        codes = np.asarray(pd.cut(x, bins=10, include_lowest=True, labels=False))
        change = np.flatnonzero(np.diff(codes) != 0)
        bounds = np.concatenate(([-1], change, [len(codes) - 1]))
        return float(np.diff(bounds).max())
    return float(_longest_bin_run(np.ascontiguousarray(x, dtype=np.float64), bins))


def scale(x: np.ndarray) -> np.ndarray:
    """``tsfeatures.utils.scalets``: ``(x - mean) / std(ddof=1)``, the same operations in the same order."""
    return (x - x.mean()) / x.std(ddof=1)


def stl(y, freq: int | None = None) -> dict[str, float]:
    """tsfeatures' STL-based and shape features of ``y``.

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.
    freq : int, optional
        Seasonal period in rows; default the family's ``freq`` (dbt var ``season_length``).

    Returns
    -------
    dict of str to float
        ``stat_trend_strength`` (tsfeatures ``trend``), ``stat_seasonality_strength``
        (``seasonal_strength``), ``stat_linearity``, ``stat_curvature``, ``stat_spikiness``
        (``spike``), ``stat_stability``, ``stat_lumpiness``, ``stat_entropy_tsfeatures``
        (``entropy``), ``stat_hurst_exponent`` (``hurst``), ``stat_crossing_points``,
        ``stat_flat_spots``, of the scaled series (module docstring). All NaN for a series
        shorter than two seasonal periods (where
        tsfeatures returns placeholder zeros), holding a non-finite value, or constant (the
        strengths are 0/0 and tsfeatures returns rounding noise).

    Notes
    -----
    Reference: ``tsfeatures.tsfeatures(panel, freq=freq)`` with its defaults, from the PyPI
    ``tsfeatures`` package (Nixtla), a port of R's ``tsfeatures``
    (R. J. Hyndman et al.); STL by statsmodels with ``seasonal=13`` as tsfeatures calls it.
    Wang, Smith & Hyndman, "Characteristic-based clustering for time series data", Data Min.
    Knowl. Disc. 13 (2006), DOI 10.1007/s10618-005-0039-x.
    """
    arr = as_series(y)
    period = param("stl", "freq", freq)
    names = stl_outputs()
    if not usable(arr, min_length(period)) or is_constant(arr):
        return nan_dict(names)
    with quiet():
        arr = scale(arr)
        if period > 1:
            values = stl_shape(arr, *decompose(arr, period, STL_SEASONAL))
        else:  # no seasonal period: tsfeatures fits a super smoother instead of STL
            values = dict(tsfeatures.stl_features(arr, period))
        values["stability"] = stability(arr, period)
        values["lumpiness"] = lumpiness(arr, period)
        values["entropy"] = spectral_entropy(arr)  # tsfeatures.entropy is antropy's, normalised
        values["hurst"] = hurst(arr)
        values["crossing_points"] = crossing_points(arr)
        values["flat_spots"] = flat_spots(arr)
    return {name: finite_or_nan(values.get(key)) for name, key in STL_KEYS.items()}


@register(
    "stl",
    kind="stat",
    outputs=list(STL_KEYS),
    params={"freq": definition("season_length")},
    # 2: every value is of the scaled series (mean 0, std 1), as tsfeatures() computes them.
    version=2,
    libraries=("tsfeatures", "statsmodels", "antropy"),
    cost="high",
    gpu="python_jobs.gpu.stl:stl_batch",
    reference="tsfeatures stl_features, stability, lumpiness, entropy, hurst, crossing_points, flat_spots",
    min_length=lambda params: min_length(params["freq"]),
)
def stl_family(y: np.ndarray, *, freq: int) -> dict[str, float]:
    return stl(y, freq)
