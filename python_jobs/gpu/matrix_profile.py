"""Matrix profile and left matrix profile on the GPU.

For a chunk of equal-length series, the z-normalised subsequences are stacked as
``Z (series, count, m)`` and one batched matrix product ``Z Z^T / m`` gives every Pearson
correlation at once; masks apply the exclusion zone, stumpy's constant-subsequence rules and
the left (earlier-only) restriction. O(count^2) memory per series, so chunks are sized from
:func:`python_jobs.gpu.batching.chunk_budget`. One pass gives both profiles, and within a job's
batch (:mod:`python_jobs.features._batch_memo`) the second family reuses the first one's.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from python_jobs.features import _batch_memo
from python_jobs.features.matrix_profile import (
    MP_STATS,
    P_NORM_THRESHOLD,
    exclusion_zone,
    matrix_profile_left,
    profile_stats,
)
from python_jobs.features.registry import param
from python_jobs.gpu import batching, cupy


def _to_distance(xp: ModuleType, rho, m: int):
    squared = xp.abs(2 * m * (1.0 - rho))
    return xp.where(squared < P_NORM_THRESHOLD, 0.0, xp.sqrt(squared))


def _profiles_group(xp: ModuleType, values, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``(profile, left_profile)`` host arrays ``(series, count)`` for one chunk."""
    n = values.shape[1]
    count = n - m + 1
    excl = exclusion_zone(m)
    index = batching.window_index(xp, n, m)
    finite_values = xp.isfinite(values)
    windows = xp.where(finite_values, values, 0.0)[:, index]
    finite = finite_values[:, index].all(axis=2)
    centred = windows - windows.mean(axis=2, keepdims=True)
    std = xp.sqrt((centred**2).mean(axis=2))
    constant = (windows.max(axis=2) == windows.min(axis=2)) & finite
    normalised = centred / xp.where(constant, 1.0, std)[:, :, None]
    rho = xp.minimum(xp.matmul(normalised, normalised.transpose(0, 2, 1)) / m, 1.0)
    # stumpy: two constant subsequences correlate 1, a constant and a varying one 0.5.
    either = constant[:, :, None] | constant[:, None, :]
    rho = xp.where(either, 0.5, rho)
    rho = xp.where(constant[:, :, None] & constant[:, None, :], 1.0, rho)
    del either
    pos = xp.arange(count)
    gap = pos[None, :] - pos[:, None]  # column (candidate) minus row (query)
    allowed = (finite[:, :, None] & finite[:, None, :]) & (xp.abs(gap) > excl)[None, :, :]
    rho = xp.where(allowed, rho, -xp.inf)
    del allowed
    best = rho.max(axis=2)
    best_left = xp.where((gap < -excl)[None, :, :], rho, -xp.inf).max(axis=2)
    profile = _to_distance(xp, best, m)
    left = _to_distance(xp, best_left, m)
    return batching.to_host(xp, profile), batching.to_host(xp, left)


def _profiles(xp: ModuleType, ys: list[np.ndarray], m: int) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """``(profile, left_profile)`` of each series (``None`` where shorter than ``m``).

    Within a job's batch the two families share them: what one family computed for a whole
    series of the batch is taken from the batch's memo, and only the rest go to the device.
    """
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(ys)
    memo = _batch_memo.current()
    tag = ("profiles", xp.__name__, m)
    todo = []
    for pos, y in enumerate(ys):
        if len(y) >= m >= 3:
            out[pos] = memo.get(tag, y) if memo is not None else None
            if out[pos] is None:
                todo.append(pos)
    _compute_profiles(xp, ys, m, todo, out)
    if memo is not None:
        for pos in todo:
            memo.put(tag, ys[pos], out[pos])
    return out


def _compute_profiles(xp: ModuleType, ys: list[np.ndarray], m: int, usable: list[int], out: list) -> None:
    """Fill ``out[pos]`` for each ``pos`` of ``usable``: one device pass per chunk of equal lengths."""
    for n, indices in batching.groups_by_length([ys[pos] for pos in usable]):
        group = [usable[i] for i in indices]
        count = n - m + 1
        # rho plus a few same-sized temporaries (masks, where results) per series.
        for chunk in batching.chunks(group, 40 * count * count, batching.chunk_budget(xp)):
            profile, left = _profiles_group(xp, batching.stack(xp, ys, chunk), m)
            for row, pos in enumerate(chunk):
                out[pos] = (profile[row], left[row])


def matrix_profile_batch_xp(xp: ModuleType, ys: list[np.ndarray], m: int | None = None) -> list[dict]:
    """The ``matrix_profile`` (stat) family for many series, with array module ``xp``."""
    window = param("matrix_profile", "m", m)
    names = [f"stat_mp_m{window}_{name}" for name in MP_STATS]
    results = []
    for y, pair in zip(ys, _profiles(xp, ys, window), strict=True):
        usable = pair is not None and bool(np.isfinite(y).all())
        results.append(profile_stats(pair[0] if usable else np.empty(0), names))
    return results


def matrix_profile_left_batch_xp(xp: ModuleType, ys: list[np.ndarray], m: int | None = None) -> list[dict]:
    """The ``matrix_profile_left`` (hist) family for many series, with array module ``xp``."""
    window = param("matrix_profile_left", "m", m)
    name = f"hist_y_mp_left_m{window}"
    results = []
    for y, pair in zip(ys, _profiles(xp, ys, window), strict=True):
        if pair is None:
            results.append(matrix_profile_left(y, window))
            continue
        out = np.full(len(y), np.nan)
        out[window - 1 :] = np.where(np.isfinite(pair[1]), pair[1], np.nan)
        results.append({name: out})
    return results


def matrix_profile_batch(ys: list[np.ndarray], m: int | None = None) -> list[dict[str, float]]:
    """GPU counterpart of the ``matrix_profile`` family (CuPy)."""
    return matrix_profile_batch_xp(cupy(), ys, m)


def matrix_profile_left_batch(ys: list[np.ndarray], m: int | None = None) -> list[dict[str, np.ndarray]]:
    """GPU counterpart of the ``matrix_profile_left`` family (CuPy)."""
    return matrix_profile_left_batch_xp(cupy(), ys, m)
