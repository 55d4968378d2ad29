"""STL decomposition and related shape features of the PyPI ``tsfeatures`` package.

``stat_trend_strength``, ``stat_seasonality_strength``, ``stat_linearity``, ``stat_curvature``,
``stat_spikiness`` are ``tsfeatures.stl_features``' values and ``stat_crossing_points`` comes
from the tsfeatures function of the same name, called directly; ``stat_entropy_tsfeatures``
(tsfeatures' ``entropy``: antropy's normalised spectral entropy) from the entropy family's
:func:`python_jobs.features.entropy.spectral_entropy`.
The rest is re-implemented here with the same arithmetic, because the package's versions pay
for Python loops or per-call overhead far above their arithmetic:

- ``stl_features``: statsmodels' STL is replaced by the numba port in
  :mod:`python_jobs.features._stl_numba` (equal within 1e-12, ~5x faster), followed by the
  package's own formulas (:func:`stl_shape`), the quadratic fit through statsmodels' ``OLS``
  pseudo-inverse, computed once per length;
- ``stability``, ``lumpiness``, ``hurst`` (O(n^2) Python in tsfeatures: 40 ms for 1,000 rows)
  and ``flat_spots`` (a Python ``groupby`` over every row).

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


def _segments(x: np.ndarray, freq: int) -> np.ndarray:
    width = 10 if freq == 1 else freq
    count = len(x) // width
    return x[: count * width].reshape(count, width)


def stability(x: np.ndarray, freq: int) -> float:
    """``tsfeatures.stability``: variance (ddof 1) of the means of non-overlapping windows."""
    width = 10 if freq == 1 else freq
    if len(x) < 2 * width:
        return 0.0
    return float(np.nanvar(np.nanmean(_segments(x, freq), axis=1), ddof=1))


def lumpiness(x: np.ndarray, freq: int) -> float:
    """``tsfeatures.lumpiness``: variance (ddof 1) of the variances of non-overlapping windows."""
    width = 10 if freq == 1 else freq
    if len(x) < 2 * width:
        return 0.0
    return float(np.nanvar(np.nanvar(_segments(x, freq), axis=1, ddof=1), ddof=1))


@njit(cache=True, nogil=True, error_model="numpy")
def _rescaled_ranges(x: np.ndarray) -> np.ndarray:  # pragma: no cover
    # tsfeatures.utils.hurst_exponent's r_t / s_t for every prefix x[: i + 1].
    n = x.shape[0]
    out = np.empty(n)
    cumulative = np.cumsum(x)
    for i in range(n):
        mean = cumulative[i] / (i + 1)
        squares = 0.0
        lo = np.inf
        hi = -np.inf
        for j in range(i + 1):
            squares += (x[j] - mean) ** 2
            deviation = cumulative[j] - (j + 1) * mean
            lo = min(lo, deviation)
            hi = max(hi, deviation)
        out[i] = (hi - lo) / math.sqrt(squares / (i + 1))
    return out


def hurst(x: np.ndarray) -> float:
    """``tsfeatures.hurst``: slope of log(R/S) on log(t) over the prefixes t = 2 .. n.

    NaN where a rescaled range is not finite and positive (tsfeatures' least squares then
    fails and it returns NaN).
    """
    if len(x) < 3:
        return math.nan
    with np.errstate(all="ignore"):
        log_rs = np.log(_rescaled_ranges(x))[1:]
    if not np.isfinite(log_rs).all():
        return math.nan
    log_t = np.log(np.arange(2, len(x) + 1, dtype=np.float64))
    design = np.column_stack((log_t, np.ones(len(log_t))))
    return float(np.linalg.lstsq(design, log_rs, rcond=-1)[0][0])


@lru_cache(maxsize=8)
def quadratic_fit(n: int) -> np.ndarray:
    """The ``(3, n)`` pseudo-inverse statsmodels' ``OLS(trend, add_constant(poly(t, 2))).fit()`` uses."""
    design = add_constant(tsfeatures.utils.poly(np.arange(n) + 1, 2))
    pinv = pinv_extended(design)[0]
    pinv.setflags(write=False)
    return pinv


def stl_shape(x: np.ndarray, trend: np.ndarray, seasonal: np.ndarray) -> dict[str, float]:
    """``tsfeatures.stl_features``' trend, seasonal_strength, spike, linearity and curvature.

    The package's formulas, given the STL trend and seasonal components of ``x`` (period > 1).
    """
    remainder = x - seasonal - trend
    n = len(x)
    eps = np.finfo(float).eps
    varx = np.nanvar(x, ddof=1)
    vare = np.nanvar(remainder, ddof=1)
    vardeseason = np.nanvar(x - seasonal, ddof=1)
    flat = varx < eps or vardeseason / varx < 1e-10
    strength = 0.0 if flat else max(0, min(1, 1 - vare / vardeseason))
    var_season_remainder = np.nanvar(remainder + seasonal, ddof=1)
    if varx < eps or var_season_remainder < eps:
        season = 0.0
    else:
        season = max(0, min(1, 1 - vare / var_season_remainder))
    squared = (remainder - np.nanmean(remainder)) ** 2
    spike = np.nanvar((vare * (n - 1) - squared) / (n - 2), ddof=1)
    coefs = np.dot(quadratic_fit(n), trend)
    return {
        "trend": strength,
        "seasonal_strength": season,
        "spike": spike,
        "linearity": coefs[1],
        "curvature": -coefs[2],
    }


def flat_spots(x: np.ndarray) -> float:
    """``tsfeatures.flat_spots``: the longest run of one decile bin (``pd.cut`` into 10 bins)."""
    codes = np.asarray(pd.cut(x, bins=10, include_lowest=True, labels=False))
    change = np.flatnonzero(np.diff(codes) != 0)
    bounds = np.concatenate(([-1], change, [len(codes) - 1]))
    return float(np.diff(bounds).max())


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
        values.update(tsfeatures.crossing_points(arr, period))
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
