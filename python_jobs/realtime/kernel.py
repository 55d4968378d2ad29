"""The engine's compiled update: one pass over a batch of points, every series' state in arrays.

All series share preallocated arrays indexed by a slot number (one row per series), so a batch
of points for many symbols is one call with no Python per feature:

- ``ring[s]``: the last ``history`` values (circular; ``head[s]`` is the newest);
- ``count[s]``, ``run_max[s]``, ``run_min[s]``: rows so far and the expanding extremes;
- ``sorted_buf[s]``: for every state window ``w`` its last ``w`` values, sorted
  (:mod:`python_jobs.realtime.ordstat`);
- ``ind_state[s]``: the indicators' recurrences (:mod:`python_jobs.realtime.indicators`);
- ``undo[s]``: what the newest point overwrote (the ring cell it took, the expanding extremes
  and the indicators' state before it), so that a point with the same timestamp can replace
  it (a live bar updating until it closes) in O(state row): :func:`_pop` restores the series
  to the state before its newest point, whose value is still in the ring, and the new value is
  pushed as if the old one had never been seen.

The per-window statistics are those of :mod:`python_jobs.features.rolling_spec`: the kernel
writes each one into its ``kernel_slot`` (``slots.mean``, ...) of a scratch vector, and
``window_columns`` (from :class:`python_jobs.realtime.layout.FeatureLayout`) places every slot
and window in the output row. The slots arrive as an argument, so numba's on-disk cache never
holds an out-of-date numbering.

The per-window sums are taken afresh over the ring (O(w), w bounded by the definitions), not
kept as running sums, so no rounding drift accumulates over a long stream. They are sums of
``y - c`` with ``c`` the newest value: for integer-valued series (every lottery) they are exact
integers, so the n-scaled centred sums ``n S2 - S1^2`` are the same integers that
``features_hist.sql`` computes from its exact prefix sums (both are invariant under the shift)
and only the final ratios round, in the same operations; for prices the shift keeps the
centred sums free of cancellation.
"""

from __future__ import annotations

import math

import numpy as np

from python_jobs.features._numba import njit
from python_jobs.realtime.indicators import indicators_step
from python_jobs.realtime.ordstat import sorted_insert, sorted_quantile, sorted_remove

N_FIXED = 6
# Slots of a series' ``undo`` row; the indicators' state fills it from ``UNDO_IND`` on.
UNDO_RING, UNDO_RUN_MAX, UNDO_RUN_MIN, UNDO_IND = 0, 1, 2, 3


def undo_size(ind_state_size: int) -> int:
    """Length of a series' ``undo`` row for an indicator state of ``ind_state_size`` values."""
    return UNDO_IND + ind_state_size


@njit(cache=True, nogil=True)
def _back(ring: np.ndarray, head: int, k: int) -> float:  # pragma: no cover
    return ring[(head - k) % ring.shape[0]]


@njit(cache=True, nogil=True)
def _window_sums(ring, head, w, shift):  # pragma: no cover
    """Sum of y, and of x = y - shift, x^2 and j x (j = 0 oldest .. w - 1 newest) over w rows."""
    total = 0.0
    s1 = 0.0
    s2 = 0.0
    sj = 0.0
    for k in range(w):
        value = _back(ring, head, k)
        x = value - shift
        total += value
        s1 += x
        s2 += x * x
        sj += (w - 1 - k) * x
    return total, s1, s2, sj


@njit(cache=True, nogil=True)
def _centred_power_sums(ring, head, w, shift, mean_shifted):  # pragma: no cover
    """Sums of d^3 and d^4 over the last w rows, d = x - mean(x): a second pass, no cancellation."""
    s3 = 0.0
    s4 = 0.0
    for k in range(w):
        d = (_back(ring, head, k) - shift) - mean_shifted
        d2 = d * d
        s3 += d2 * d
        s4 += d2 * d2
    return s3, s4


@njit(cache=True, nogil=True)
def _autocorr1(ring, head, w, shift) -> float:  # pragma: no cover
    """Pearson correlation of the w - 1 pairs (y_t, y_t-1) inside the last w rows."""
    n = w - 1
    lead = 0.0
    lead_sq = 0.0
    lag = 0.0
    lag_sq = 0.0
    cross = 0.0
    for k in range(n):
        a = _back(ring, head, k) - shift
        b = _back(ring, head, k + 1) - shift
        lead += a
        lead_sq += a * a
        lag += b
        lag_sq += b * b
        cross += a * b
    var_lead = n * lead_sq - lead * lead
    var_lag = n * lag_sq - lag * lag
    if var_lead > 0 and var_lag > 0:
        return (n * cross - lead * lag) / math.sqrt(var_lead * var_lag)
    return np.nan


@njit(cache=True, nogil=True)
def _push(
    s, y, ring, head, count, run_max, run_min, sorted_buf, ind_state, undo, windows, starts
) -> int:  # pragma: no cover
    """Append ``y`` to series ``s``: ring, count, expanding extremes, sorted windows.

    What the push overwrites, and the indicators' state it starts from, go to ``undo[s]``.
    """
    size = ring.shape[1]
    n = count[s] + 1
    saved = undo[s]
    head[s] = (head[s] + 1) % size
    saved[UNDO_RING] = ring[s, head[s]]
    saved[UNDO_RUN_MAX] = run_max[s]
    saved[UNDO_RUN_MIN] = run_min[s]
    saved[UNDO_IND:] = ind_state[s]
    ring[s, head[s]] = y
    count[s] = n
    if n == 1 or y > run_max[s]:
        run_max[s] = y
    if n == 1 or y < run_min[s]:
        run_min[s] = y
    row = sorted_buf[s]
    for a in range(windows.shape[0]):
        w = windows[a]
        if n > w:
            sorted_remove(row, starts[a], w, _back(ring[s], head[s], w))
            sorted_insert(row, starts[a], w - 1, y)
        else:
            sorted_insert(row, starts[a], n - 1, y)
    return n


@njit(cache=True, nogil=True)
def _pop(
    s, ring, head, count, run_max, run_min, sorted_buf, ind_state, undo, windows, starts
) -> None:  # pragma: no cover
    """Undo series ``s``' newest push: its state becomes what it was before that point.

    The inverse of :func:`_push` step by step: the newest value leaves each sorted window and
    the value it pushed out (still in the ring, ``w`` rows back) comes back; the ring cell,
    the expanding extremes and the indicators' state come from ``undo[s]``.
    """
    n = count[s]
    h = head[s]
    y = ring[s, h]
    row = sorted_buf[s]
    for a in range(windows.shape[0]):
        w = windows[a]
        if n > w:
            sorted_remove(row, starts[a], w, y)
            sorted_insert(row, starts[a], w - 1, _back(ring[s], h, w))
        else:
            sorted_remove(row, starts[a], n, y)
    saved = undo[s]
    ring[s, h] = saved[UNDO_RING]
    head[s] = (h - 1) % ring.shape[1] if n > 1 else -1
    count[s] = n - 1
    run_max[s] = saved[UNDO_RUN_MAX]
    run_min[s] = saved[UNDO_RUN_MIN]
    ind_state[s] = saved[UNDO_IND:]


@njit(cache=True, nogil=True)
def _window_values(
    values, slots, mean, var_n, cube_sum, quartic_sum, row, start, w, y
) -> None:  # pragma: no cover
    """Every per-window statistic of a full window of ``w`` rows, each into its slot of ``values``.

    ``var_n`` is ``w sum(d^2)``, ``cube_sum`` and ``quartic_sum`` are ``sum(d^3)`` and
    ``sum(d^4)`` (``d = y - mean``); ``values`` holds NaN on entry.
    """
    std = math.sqrt(var_n / (w * (w - 1)))
    q25 = sorted_quantile(row, start, w, 0.25)
    q75 = sorted_quantile(row, start, w, 0.75)
    values[slots.mean] = mean
    values[slots.std] = std
    values[slots.min] = row[start]
    values[slots.max] = row[start + w - 1]
    values[slots.median] = sorted_quantile(row, start, w, 0.5)
    values[slots.q25] = q25
    values[slots.q75] = q75
    values[slots.iqr] = q75 - q25
    values[slots.zscore] = (y - mean) / std if var_n > 0 else np.nan
    values[slots.dev_mean] = y - mean
    # Bias-corrected skewness and excess kurtosis (pandas rolling skew/kurt) from the centred
    # sums: g1 = w^2 sum(d^3) / var_n^1.5 and m4 / m2^2 = w^3 sum(d^4) / var_n^2.
    if var_n > 0 and w >= 3:
        g1 = w * w * cube_sum / var_n**1.5
        values[slots.skew] = math.sqrt(w * (w - 1.0)) / (w - 2.0) * g1
    if var_n > 0 and w >= 4:
        ratio = w * w * w * quartic_sum / (var_n * var_n)
        values[slots.kurt] = (w - 1.0) * ((w + 1.0) * ratio - 3.0 * (w - 1.0)) / ((w - 2.0) * (w - 3.0))


@njit(cache=True, nogil=True)
def update_batch(
    slots, values, replaces, ring, head, count, run_max, run_min, sorted_buf, ind_state, undo,
    lags, diffs, pcts, windows, window_columns, fixed_index, stat_slots, outlier_limits, out,
) -> None:  # pragma: no cover  # fmt: skip
    """Apply ``values[i]`` to series ``slots[i]`` in order and write its features to ``out[i]``.

    Where ``replaces[i]`` is true, ``values[i]`` replaces the series' newest value instead of
    following it: the newest push is undone first (:func:`_pop`).

    Output columns: lags, the per-window statistics where ``window_columns`` puts them, diffs,
    pct changes, the six fixed-window columns, the eight indicators
    (:class:`python_jobs.realtime.layout.FeatureLayout` names them). ``outlier_limits`` holds
    the z-score threshold and the IQR multiplier of the outlier flags.
    """
    n_window_columns = 0
    for k in range(window_columns.shape[0]):
        for a in range(windows.shape[0]):
            if window_columns[k, a] >= 0:
                n_window_columns += 1
    window_values = np.empty(window_columns.shape[0])
    starts = np.zeros(windows.shape[0], dtype=np.int64)
    for a in range(1, windows.shape[0]):
        starts[a] = starts[a - 1] + windows[a - 1]
    n_lags = lags.shape[0]
    base_diffs = n_lags + n_window_columns
    base_pcts = base_diffs + diffs.shape[0]
    base_fixed = base_pcts + pcts.shape[0]
    base_ind = base_fixed + N_FIXED
    for i in range(slots.shape[0]):
        s = slots[i]
        y = values[i]
        if replaces[i]:
            _pop(s, ring, head, count, run_max, run_min, sorted_buf, ind_state, undo, windows, starts)
        n = _push(s, y, ring, head, count, run_max, run_min, sorted_buf, ind_state, undo, windows, starts)
        series = ring[s]
        h = head[s]
        row = sorted_buf[s]
        out_row = out[i]
        for j in range(n_lags):
            out_row[j] = _back(series, h, lags[j]) if lags[j] < n else np.nan
        fixed_mean = np.nan
        fixed_var = 0.0
        fixed_sj = 0.0
        fixed_s1 = 0.0
        for a in range(windows.shape[0]):
            w = windows[a]
            window_values[:] = np.nan
            if n >= w:
                total, s1, s2, sj = _window_sums(series, h, w, y)
                mean = total / w
                var_n = w * s2 - s1 * s1
                if a == fixed_index:
                    fixed_mean = mean
                    fixed_var = var_n
                    fixed_sj = sj
                    fixed_s1 = s1
                cube_sum, quartic_sum = _centred_power_sums(series, h, w, y, s1 / w)
                _window_values(
                    window_values, stat_slots, mean, var_n, cube_sum, quartic_sum, row, starts[a], w, y
                )
            for k in range(window_columns.shape[0]):
                if window_columns[k, a] >= 0:
                    out_row[window_columns[k, a]] = window_values[k]
        for j in range(diffs.shape[0]):
            out_row[base_diffs + j] = y - _back(series, h, diffs[j]) if diffs[j] < n else np.nan
        for j in range(pcts.shape[0]):
            previous = _back(series, h, pcts[j]) if pcts[j] < n else np.nan
            out_row[base_pcts + j] = (y - previous) / previous if previous != 0 else np.nan
        w = windows[fixed_index]
        for j in range(N_FIXED):
            out_row[base_fixed + j] = np.nan
        if n >= w:
            if fixed_var > 0:
                std = math.sqrt(fixed_var / (w * (w - 1)))
                out_row[base_fixed] = 1.0 if abs((y - fixed_mean) / std) > outlier_limits[0] else 0.0
            start = starts[fixed_index]
            q25 = sorted_quantile(row, start, w, 0.25)
            q75 = sorted_quantile(row, start, w, 0.75)
            spread = outlier_limits[1] * (q75 - q25)
            out_row[base_fixed + 1] = 1.0 if (y < q25 - spread or y > q75 + spread) else 0.0
            # Least squares on the row index: w sum(j x) - sum(j) sum(x) over w^2 (w^2 - 1) / 12.
            numerator = w * fixed_sj - (w * (w - 1) // 2) * fixed_s1
            out_row[base_fixed + 4] = numerator / (w * w * (w * w - 1) // 12)
            out_row[base_fixed + 5] = _autocorr1(series, h, w, y)
        out_row[base_fixed + 2] = y / run_max[s] - 1 if run_max[s] != 0 else np.nan
        out_row[base_fixed + 3] = y / run_min[s] - 1 if run_min[s] != 0 else np.nan
        indicators_step(series, h, n, y, ind_state[s], out_row, base_ind)
