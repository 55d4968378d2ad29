"""Rolling median and quartiles: ``hist_y_roll_{median,q25,q75}_w{w}``.

PostgreSQL has no windowed percentile, so these three order statistics of features_hist are
computed here. One pass per window size keeps the current window sorted (insert the new
value, delete the one leaving: O(w) moves of contiguous memory per row), and all three
statistics are read from the same sorted window.
"""

from __future__ import annotations

import numpy as np

from python_jobs.features._common import as_series
from python_jobs.features._numba import njit
from python_jobs.features.registry import definition, param, register
from python_jobs.features.rolling_spec import computed_by, quantile_bounds

# (statistic, quantile) in output order: the rolling statistics the spec gives the Python job.
STATISTICS = tuple((stat.stat, stat.quantile) for stat in computed_by("python_job"))


@njit(cache=True, nogil=True)
def _rolling_quantiles(y: np.ndarray, windows: np.ndarray, qs: np.ndarray) -> np.ndarray:  # pragma: no cover
    n = y.shape[0]
    out = np.full((windows.shape[0], qs.shape[0], n), np.nan)
    wmax = 1
    for a in range(windows.shape[0]):
        wmax = max(wmax, windows[a])
    buf = np.empty(wmax + 1)
    for a in range(windows.shape[0]):
        w = windows[a]
        if n < w:
            continue
        size = 0
        n_nan = 0
        for i in range(n):
            value = y[i]
            if value != value:
                # NaN sorts last as +inf; a window holding one yields NaN (pandas min_periods=w).
                n_nan += 1
                value = np.inf
            k = size
            while k > 0 and buf[k - 1] > value:
                buf[k] = buf[k - 1]
                k -= 1
            buf[k] = value
            size += 1
            if i >= w:
                old = y[i - w]
                if old != old:
                    n_nan -= 1
                    old = np.inf
                lo = 0
                hi = size - 1
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if buf[mid] < old:
                        lo = mid + 1
                    else:
                        hi = mid
                for k in range(lo, size - 1):
                    buf[k] = buf[k + 1]
                size -= 1
            if i >= w - 1 and n_nan == 0:
                for b in range(qs.shape[0]):
                    lower, upper, weight = quantile_bounds(qs[b], w)
                    out[a, b, i] = buf[lower] + (buf[upper] - buf[lower]) * weight
    return out


def rolling(y, windows: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Rolling median, 25th and 75th percentile of ``y`` over the last ``w`` rows.

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.
    windows : tuple of int, optional
        Window sizes in rows; default the family's ``windows`` (dbt var ``windows``).

    Returns
    -------
    dict of str to numpy.ndarray
        ``hist_y_roll_{median,q25,q75}_w{w}``, each of ``len(y)``: the statistic of
        ``y[i - w + 1 : i + 1]``; NaN for ``i < w - 1`` and where the window holds a NaN.

    Notes
    -----
    Equal (within 1e-9) to pandas ``Series.rolling(w).median()``, ``.quantile(0.25)`` and
    ``.quantile(0.75)`` (``interpolation='linear'``), the rule of
    :func:`python_jobs.features.rolling_spec.quantile_bounds`.
    Point in time: row ``i`` reads rows ``<= i`` only.
    """
    arr = as_series(y)
    wins = tuple(param("rolling", "windows", windows))
    qs = np.array([q for _, q in STATISTICS])
    values = _rolling_quantiles(arr, np.asarray(wins, dtype=np.int64), qs)
    return {
        f"hist_y_roll_{stat}_w{w}": values[a, b]
        for b, (stat, _) in enumerate(STATISTICS)
        for a, w in enumerate(wins)
    }


@register(
    "rolling",
    kind="hist",
    outputs=[f"hist_y_roll_{stat}_w{{windows}}" for stat, _ in STATISTICS],
    # The windows and the stat window: the IQR outlier flag of features_hist reads the quartiles
    # over stat_window rows.
    params={"windows": definition("quantile_windows")},
    cost="low",
    gpu="python_jobs.gpu.rolling:rolling_batch",
    reference="pandas Series.rolling(w).median() / .quantile(q)",
)
def rolling_family(y: np.ndarray, *, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    return rolling(y, windows)
