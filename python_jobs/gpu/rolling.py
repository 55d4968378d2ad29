"""Rolling median and quartiles on the GPU: one batched sort per window size and chunk."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from python_jobs.features.registry import param
from python_jobs.features.rolling import STATISTICS
from python_jobs.features.rolling_spec import quantile_bounds
from python_jobs.gpu import batching, cupy


def _rolling_group(xp: ModuleType, values, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    n_series, n = values.shape
    out: dict[str, np.ndarray] = {}
    is_nan = xp.isnan(values)
    nan_count = xp.concatenate(
        [xp.zeros((n_series, 1)), xp.cumsum(is_nan.astype(xp.float64), axis=1)], axis=1
    )
    # NaN sorts last on both NumPy and CuPy; windows holding one are blanked below.
    for w in windows:
        result = {stat: xp.full((n_series, n), xp.nan) for stat, _ in STATISTICS}
        if n >= w:
            ordered = xp.sort(values[:, batching.window_index(xp, n, w)], axis=2)
            has_nan = (nan_count[:, w:] - nan_count[:, : n - w + 1]) > 0
            for stat, q in STATISTICS:
                lower, upper, weight = quantile_bounds(q, w)
                value = ordered[:, :, lower] + (ordered[:, :, upper] - ordered[:, :, lower]) * weight
                result[stat][:, w - 1 :] = xp.where(has_nan, xp.nan, value)
        for stat, _ in STATISTICS:
            out[f"hist_y_roll_{stat}_w{w}"] = batching.to_host(xp, result[stat])
    return out


def rolling_batch_xp(
    xp: ModuleType, ys: list[np.ndarray], windows: tuple[int, ...] | None = None
) -> list[dict]:
    """:func:`python_jobs.features.rolling.rolling` for many series, with array module ``xp``."""
    wins = tuple(param("rolling", "windows", windows))
    names = [f"hist_y_roll_{stat}_w{w}" for stat, _ in STATISTICS for w in wins]
    results: list[dict] = [{} for _ in ys]
    for n, positions in batching.groups_by_length(ys):
        # The largest temporary is the sorted stack of windows of the longest size.
        per_series = 8 * max(n, 1) * max(wins) * 2
        for chunk in batching.chunks(positions, per_series, batching.chunk_budget(xp)):
            group = _rolling_group(xp, batching.stack(xp, ys, chunk), wins)
            for row, pos in enumerate(chunk):
                results[pos] = {name: group[name][row] for name in names}
    return results


def rolling_batch(
    ys: list[np.ndarray], windows: tuple[int, ...] | None = None
) -> list[dict[str, np.ndarray]]:
    """GPU counterpart of the ``rolling`` family (CuPy)."""
    return rolling_batch_xp(cupy(), ys, windows)
