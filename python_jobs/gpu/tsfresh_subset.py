"""The tsfresh subset on the GPU: every calculator as array code over a batch of series.

Each function below is the tsfresh calculator of the same name (for the parameters in
:data:`python_jobs.features.tsfresh_subset.SETTINGS`) rewritten for a 2-D ``(series, rows)``
array, with the same formula; results differ from tsfresh by floating-point summation order
only. Value counts (the ``reoccurring`` features) come from one sort per row; run lengths
from a binary search over all-true windows of a cumulative sum; the histogram of
``binned_entropy`` follows ``numpy.histogram``'s edge rules (edges built on the host by
``numpy.linspace``, as NumPy builds them).

Falls back to the CPU for one feature only: ``benford_correlation`` of a series that is not
integer-valued (first digits of arbitrary floats come from string formatting in tsfresh).
cuDF is not used: the batch is one dense array per length, and no calculator here is a
group-by or a window over a frame.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from python_jobs.features.registry import param
from python_jobs.features.tsfresh_subset import (
    SETTINGS,
    TSFRESH_NAMES,
    benford_correlation,
    column_name,
    tsfresh_outputs,
    tsfresh_subset,
)
from python_jobs.gpu import batching, cupy
from python_jobs.gpu._stat import run_stat_batch

# pandas treats sums below this as floating-point noise (nanops._zero_out_fperr).
PANDAS_FPERR = 1e-14
_EXACT_INTEGER = 2.0**53


def _zero_fperr(xp: ModuleType, a):
    return xp.where(xp.abs(a) < PANDAS_FPERR, 0.0, a)


def _moments(xp: ModuleType, x) -> dict:
    # pandas' skew and kurt (bias-corrected), with its zeroing of sums below 1e-14; the
    # coefficients are Python floats so that nothing mixes NumPy scalars into CuPy arithmetic.
    n = x.shape[1]
    mean = x.sum(axis=1) / n
    adjusted = x - mean[:, None]
    squared = adjusted**2
    m2 = _zero_fperr(xp, squared.sum(axis=1))
    m3 = _zero_fperr(xp, (squared * adjusted).sum(axis=1))
    m4 = _zero_fperr(xp, (squared**2).sum(axis=1))
    nan = xp.full(x.shape[0], np.nan)
    with np.errstate(all="ignore"):
        skew = nan
        if n >= 3:
            skew = (n * (n - 1) ** 0.5 / (n - 2)) * (m3 / m2**1.5)
            skew = xp.where(m2 == 0, np.nan, skew)  # pandas: NaN for a constant series
        kurt = nan
        if n >= 4:
            numerator = _zero_fperr(xp, n * (n + 1) * (n - 1) * m4)
            denominator = _zero_fperr(xp, (n - 2) * (n - 3) * m2**2)
            kurt = numerator / denominator - 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))
            kurt = xp.where(denominator == 0, np.nan, kurt)
    return {"skewness": skew, "kurtosis": kurt}


def _longest_run(xp: ModuleType, mask):
    """Longest run of True per row: the largest w with an all-true window of width w."""
    count, n = mask.shape
    cumulative = xp.concatenate([xp.zeros((count, 1)), xp.cumsum(mask, axis=1)], axis=1)
    lo = xp.zeros(count, dtype=xp.int64)  # a run of lo exists
    hi = xp.full(count, n, dtype=xp.int64)  # no run longer than hi
    positions = xp.arange(n + 1)[None, :]
    for _ in range(int(np.ceil(np.log2(n + 1))) + 1):
        width = (lo + hi + 1) // 2
        ends = xp.broadcast_to(xp.minimum(positions, n), (count, n + 1))
        starts = ends - width[:, None]
        valid = starts >= 0
        window = xp.take_along_axis(cumulative, ends, axis=1) - xp.take_along_axis(
            cumulative, xp.maximum(starts, 0), axis=1
        )
        found = (valid & (window == width[:, None])).any(axis=1)
        lo = xp.where(found, width, lo)
        hi = xp.where(found, hi, width - 1)
    return lo.astype(xp.float64)


def _value_counts(xp: ModuleType, x) -> dict:
    ordered = xp.sort(x, axis=1)
    count, n = x.shape
    starts = xp.concatenate([xp.ones((count, 1), dtype=bool), ordered[:, 1:] != ordered[:, :-1]], axis=1)
    # multiplicity of each row's value: distance between its run's first and last index
    index = xp.broadcast_to(xp.arange(n), (count, n))
    first = xp.where(starts, index, 0)
    first = _running_max(xp, first)
    ends = xp.concatenate([starts[:, 1:], xp.ones((count, 1), dtype=bool)], axis=1)
    last = xp.where(ends, index, n)
    last = n - 1 - _running_max(xp, (n - 1 - last)[:, ::-1])[:, ::-1]
    multiplicity = last - first + 1
    unique = starts.sum(axis=1)
    repeated = multiplicity > 1
    return {
        "percentage_of_reoccurring_values_to_all_values": (starts & repeated).sum(axis=1) / unique,
        "ratio_value_number_to_time_series_length": unique / n,
        "sum_of_reoccurring_data_points": xp.where(repeated, ordered, 0.0).sum(axis=1),
        "sum_of_reoccurring_values": xp.where(starts & repeated, ordered, 0.0).sum(axis=1),
    }


def _running_max(xp: ModuleType, a):
    """Cumulative maximum along rows of a non-negative int array, by doubling (log n steps)."""
    out = a.copy()
    shift = 1
    while shift < a.shape[1]:
        out[:, shift:] = xp.maximum(out[:, shift:], out[:, :-shift].copy())
        shift *= 2
    return out


def _benford(xp: ModuleType, x):
    values = xp.abs(x)
    integer = ((values == xp.floor(values)) & (values < _EXACT_INTEGER)).all(axis=1)
    digits = xp.where(integer[:, None], values, 0.0).astype(xp.int64)
    while bool((digits >= 10).any()):
        digits = xp.where(digits >= 10, digits // 10, digits)
    data = xp.stack([(digits == d).mean(axis=1) for d in range(1, 10)], axis=1)
    benford = xp.asarray(np.array([np.log10(1 + 1 / d) for d in range(1, 10)]))
    return _pearson(xp, xp.broadcast_to(benford, data.shape), data), integer


def _pearson(xp: ModuleType, a, b):
    """np.corrcoef(a_row, b_row)[0, 1] per row (covariances with ddof 1, clipped to [-1, 1])."""
    da = a - a.mean(axis=1, keepdims=True)
    db = b - b.mean(axis=1, keepdims=True)
    k = a.shape[1] - 1
    cov = (da * db).sum(axis=1) / k
    with np.errstate(all="ignore"):
        r = cov / xp.sqrt((da * da).sum(axis=1) / k) / xp.sqrt((db * db).sum(axis=1) / k)
    return xp.clip(r, -1.0, 1.0)


def _quantile(ordered, q: float):
    n = ordered.shape[1]
    virtual = q * (n - 1)
    lo = int(np.floor(virtual))
    hi = min(lo + 1, n - 1)
    t = virtual - lo
    a, b = ordered[:, lo], ordered[:, hi]
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def _binned_entropy(xp: ModuleType, x, bins: int):
    low = batching.to_host(xp, x.min(axis=1))
    high = batching.to_host(xp, x.max(axis=1))
    same = low == high
    low, high = np.where(same, low - 0.5, low), np.where(same, high + 0.5, high)
    edges = xp.asarray(np.linspace(low, high, bins + 1, axis=1))
    norm = bins / (edges[:, -1] - edges[:, 0])
    index = ((x - edges[:, :1]) * norm[:, None]).astype(xp.int64)
    index = xp.where(index == bins, bins - 1, index)
    index = index - (x < xp.take_along_axis(edges, index, axis=1))
    up = (x >= xp.take_along_axis(edges, index + 1, axis=1)) & (index != bins - 1)
    index = index + up
    hist = xp.stack([(index == b).sum(axis=1) for b in range(bins)], axis=1)
    probs = hist / x.shape[1]
    probs = xp.where(probs == 0, 1.0, probs)
    return -(probs * xp.log(probs)).sum(axis=1)


def _acf_mean(xp: ModuleType, x, maxlag: int):
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    var = x.var(axis=1)
    lags = min(maxlag, n - 1)
    cov0 = (centred * centred).sum(axis=1) / n
    acfs = [(centred[:, : n - k] * centred[:, k:]).sum(axis=1) / (n - k) / cov0 for k in range(1, lags + 1)]
    mean = xp.stack(acfs, axis=1).mean(axis=1) if acfs else xp.full(x.shape[0], np.nan)
    return xp.where(xp.abs(var) < 1e-10, 0.0, mean)


def _linear_trend(xp: ModuleType, x) -> tuple:
    n = x.shape[1]
    t = xp.arange(n, dtype=xp.float64)
    dt = t - t.mean()
    dx = x - x.mean(axis=1, keepdims=True)
    ssxm = (dt * dt).sum() / n
    ssxym = (dx * dt[None, :]).sum(axis=1) / n
    ssym = (dx * dx).sum(axis=1) / n
    with np.errstate(all="ignore"):
        r = ssxym / xp.sqrt(ssxm * ssym)  # NaN for a constant series, as scipy's linregress
        return ssxym / ssxm, xp.clip(r, -1.0, 1.0)


def _lagged(x, lag: int, shift: int):
    """``_roll(x, -shift)[: n - 2 lag]``: the values ``shift`` rows later, for the first n - 2 lag rows."""
    n = x.shape[1]
    return x[:, shift : shift + n - 2 * lag]


def tsfresh_xp(xp: ModuleType, x) -> dict:
    """Every :data:`SETTINGS` feature of each row of ``x`` (tsfresh names, ``y__`` prefix)."""
    n = x.shape[1]
    with np.errstate(all="ignore"):
        mean = x.mean(axis=1)
        std = x.std(axis=1)
        diff = xp.diff(x, axis=1)
        absolute = xp.abs(x)
        ordered = xp.sort(x, axis=1)
        maximum, minimum = x.max(axis=1), x.min(axis=1)
        out = {
            "abs_energy": (x * x).sum(axis=1),
            "absolute_maximum": absolute.max(axis=1),
            "absolute_sum_of_changes": xp.abs(diff).sum(axis=1),
            "count_above_mean": (x > mean[:, None]).sum(axis=1),
            "count_below_mean": (x < mean[:, None]).sum(axis=1),
            "first_location_of_maximum": xp.argmax(x, axis=1) / n,
            "first_location_of_minimum": xp.argmin(x, axis=1) / n,
            "last_location_of_maximum": 1.0 - xp.argmax(x[:, ::-1], axis=1) / n,
            "last_location_of_minimum": 1.0 - xp.argmin(x[:, ::-1], axis=1) / n,
            "has_duplicate_max": (x == maximum[:, None]).sum(axis=1) >= 2,
            "has_duplicate_min": (x == minimum[:, None]).sum(axis=1) >= 2,
            "longest_strike_above_mean": _longest_run(xp, x > mean[:, None]),
            "longest_strike_below_mean": _longest_run(xp, x < mean[:, None]),
            "mean_abs_change": xp.abs(diff).mean(axis=1) if n > 1 else xp.full(len(x), np.nan),
            "mean_change": (x[:, -1] - x[:, 0]) / (n - 1) if n > 1 else xp.full(len(x), np.nan),
            "mean_second_derivative_central": (x[:, -1] - x[:, -2] - x[:, 1] + x[:, 0]) / (2 * (n - 2))
            if n > 2
            else xp.full(len(x), np.nan),
            "variation_coefficient": xp.where(mean == 0, np.nan, std / mean),
            "root_mean_square": xp.sqrt((x * x).mean(axis=1)),
        }
        out.update(_moments(xp, x))
        out.update(_value_counts(xp, x))
        normalised = (x - mean[:, None]) / xp.where(std == 0, 1.0, std)[:, None]
        steps = xp.diff(normalised, axis=1)
        out["cid_ce__normalize_True"] = xp.where(std == 0, 0.0, xp.sqrt((steps * steps).sum(axis=1)))
        for lag in (1, 2):
            if 2 * lag >= n:  # tsfresh: 0 when the series is too short for the lag
                out[f"c3__lag_{lag}"] = out[f"time_reversal_asymmetry_statistic__lag_{lag}"] = xp.zeros(
                    len(x)
                )
                continue
            head = _lagged(x, lag, 0)
            one, two = _lagged(x, lag, lag), _lagged(x, lag, 2 * lag)
            out[f"c3__lag_{lag}"] = (two * one * head).mean(axis=1)
            out[f"time_reversal_asymmetry_statistic__lag_{lag}"] = (two * two * one - one * head * head).mean(
                axis=1
            )
        out["number_peaks__n_3"] = _number_peaks(xp, x, 3)
        out["binned_entropy__max_bins_10"] = _binned_entropy(xp, x, 10)
        out["quantile__q_0.1"] = _quantile(ordered, 0.1)
        out["quantile__q_0.9"] = _quantile(ordered, 0.9)
        largest = xp.sort(absolute, axis=1)[:, -7:]
        out["mean_n_absolute_max__number_of_maxima_7"] = (
            largest.mean(axis=1) if n > 7 else xp.full(len(x), np.nan)
        )
        centred = x - mean[:, None]
        var = x.var(axis=1)
        product = (centred[:, :-1] * centred[:, 1:]).sum(axis=1)
        out["autocorrelation__lag_1"] = xp.where(xp.abs(var) <= 1e-8, np.nan, product / ((n - 1) * var))
        out['agg_autocorrelation__f_agg_"mean"__maxlag_40'] = _acf_mean(xp, x, 40)
        slope, rvalue = _linear_trend(xp, x)
        out['linear_trend__attr_"slope"'] = slope
        out['linear_trend__attr_"rvalue"'] = rvalue
        beyond = xp.abs(x - mean[:, None]) > 2 * std[:, None]
        out["ratio_beyond_r_sigma__r_2"] = beyond.sum(axis=1) / n
        out["benford_correlation"], integer = _benford(xp, x)
        out["benford_correlation"] = xp.where(integer, out["benford_correlation"], np.nan)
    return {f"y__{key}": value.astype(xp.float64) for key, value in out.items()}


def _number_peaks(xp: ModuleType, x, support: int):
    n = x.shape[1]
    if n <= 2 * support:
        return xp.zeros(x.shape[0])
    centre = x[:, support : n - support]
    peak = xp.ones(centre.shape, dtype=bool)
    for i in range(1, support + 1):
        peak &= centre > x[:, support - i : n - support - i]
        peak &= centre > x[:, support + i : n - support + i]
    return peak.sum(axis=1)


def _compute(xp: ModuleType, values) -> dict:
    raw = tsfresh_xp(xp, values)
    # as the CPU family: an infinite value is undefined (NaN)
    return {column_name(name): xp.where(xp.isfinite(raw[name]), raw[name], np.nan) for name in TSFRESH_NAMES}


def tsfresh_subset_batch_xp(
    xp: ModuleType, ys: list[np.ndarray], settings: dict | None = None
) -> list[dict[str, float]]:
    """The ``tsfresh_subset`` family for many series, with array module ``xp``.

    The device computes the family's declared :data:`SETTINGS`; other settings run the CPU family.
    """
    settings = param("tsfresh_subset", "settings", settings)
    if settings != SETTINGS:
        return [tsfresh_subset(y, settings) for y in ys]
    results = run_stat_batch(
        xp, ys, tsfresh_outputs(), _compute, min_length=1, bytes_per_row=8 * 64, skip_constant=False
    )
    benford = column_name("y__benford_correlation")
    for y, result in zip(ys, results, strict=True):
        # non-integer series: tsfresh's first digits come from string formatting (CPU)
        if np.isnan(result[benford]) and len(y) and np.isfinite(y).all():
            result[benford] = float(benford_correlation(np.asarray(y, dtype=np.float64)))
    return results


def tsfresh_subset_batch(ys: list[np.ndarray], settings: dict | None = None) -> list[dict[str, float]]:
    """GPU counterpart of the ``tsfresh_subset`` family (CuPy)."""
    return tsfresh_subset_batch_xp(cupy(), ys, settings)
