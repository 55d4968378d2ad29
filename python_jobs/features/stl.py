"""STL decomposition and related shape features of the PyPI ``tsfeatures`` package.

``stat_trend_strength``, ``stat_seasonality_strength``, ``stat_linearity``, ``stat_curvature``,
``stat_spikiness`` come from ``tsfeatures.stl_features`` and ``stat_entropy_tsfeatures``,
``stat_crossing_points``, ``stat_flat_spots`` from the functions of the same name, all
called directly. ``stability``, ``lumpiness`` and ``hurst`` are re-implemented here with the
same arithmetic because tsfeatures loops in Python (``hurst`` is O(n^2) Python: 40 ms for
1,000 rows, 170 ms for 2,000); the tests hold them equal to the tsfeatures functions.

Every value is computed on the mean-std scaled series ``(y - mean(y)) / std(y, ddof=1)``,
as ``tsfeatures.tsfeatures(panel, freq=season_length)`` does with its default
``scale=True`` (following R's ``tsfeatures``). The scale-free features (strengths, entropy,
Hurst, crossing points, flat spots) are unchanged by it; ``linearity`` and ``curvature``
are in units of the series' standard deviation, ``spikiness``, ``stability`` and
``lumpiness`` in its powers, so series of different ranges compare.

No GPU implementation: the job runs this family on the CPU whatever the device.
"""

from __future__ import annotations

import math

import numpy as np

from python_jobs import config
from python_jobs.features._common import as_series, finite_or_nan, is_constant, nan_dict, quiet, usable
from python_jobs.features._numba import import_cached, njit
from python_jobs.features.registry import register

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


def stl_outputs() -> list[str]:
    return list(STL_KEYS)


def min_length() -> int:
    # STL needs two full seasonal periods; tsfeatures returns placeholder zeros below that.
    return 2 * max(config.SEASON_LENGTH, 2)


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
        Seasonal period in rows; default ``config.SEASON_LENGTH`` (dbt var ``season_length``).

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
    period = config.SEASON_LENGTH if freq is None else freq
    names = stl_outputs()
    if not usable(arr, 2 * max(period, 2)) or is_constant(arr):
        return nan_dict(names)
    with quiet():
        arr = scale(arr)
        values = dict(tsfeatures.stl_features(arr, period))
        values["stability"] = stability(arr, period)
        values["lumpiness"] = lumpiness(arr, period)
        values.update(tsfeatures.entropy(arr, period))
        values["hurst"] = hurst(arr)
        values.update(tsfeatures.crossing_points(arr, period))
        values.update(tsfeatures.flat_spots(arr, period))
    return {name: finite_or_nan(values.get(key)) for name, key in STL_KEYS.items()}


@register(
    "stl",
    kind="stat",
    outputs=stl_outputs,
    cost="high",
    reference="tsfeatures stl_features, stability, lumpiness, entropy, hurst, crossing_points, flat_spots",
    min_length=min_length(),
)
def stl_family(y: np.ndarray) -> dict[str, float]:
    return stl(y)
