"""Running a ``stat`` family's array code over a batch of series, grouped by length."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType

import numpy as np

from python_jobs.gpu import batching


def run_stat_batch(
    xp: ModuleType,
    ys: list[np.ndarray],
    names: list[str],
    compute: Callable[[ModuleType, object], dict],
    *,
    min_length: int,
    bytes_per_row: int | Callable[[int], int],
    skip_constant: bool = True,
) -> list[dict[str, float]]:
    """``compute(xp, values)`` on each group of equal-length usable series.

    A series shorter than ``min_length``, with a non-finite value, or (with
    ``skip_constant``) constant gets NaN for every name, as the CPU families do.
    ``bytes_per_row`` is the device memory one row of one series needs at peak, or a function
    of the series length giving it (for quadratic-memory families).
    """
    results: list[dict[str, float]] = [dict.fromkeys(names, math.nan) for _ in ys]
    usable = [pos for pos, y in enumerate(ys) if usable_series(y, min_length, skip_constant)]
    for n, indices in batching.groups_by_length([ys[pos] for pos in usable]):
        group = [usable[i] for i in indices]
        per_row = bytes_per_row(n) if callable(bytes_per_row) else bytes_per_row
        for chunk in batching.chunks(group, per_row * n, batching.chunk_budget(xp)):
            values = compute(xp, batching.stack(xp, ys, chunk))
            host = {name: batching.to_host(xp, values[name]) for name in names}
            for row, pos in enumerate(chunk):
                results[pos] = {name: float(host[name][row]) for name in names}
    return results


def usable_series(y: np.ndarray, min_length: int, skip_constant: bool = True) -> bool:
    """Whether :func:`run_stat_batch` computes ``y`` (else it gets NaN for every name)."""
    arr = np.asarray(y, dtype=np.float64)
    if len(arr) < min_length or not np.isfinite(arr).all():
        return False
    return not (skip_constant and np.ptp(arr) == 0)
