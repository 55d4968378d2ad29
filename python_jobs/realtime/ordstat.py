"""Rolling order statistics over a bounded window: a sorted buffer per series and window.

Each window of ``w`` rows keeps its values sorted in a slice of a preallocated row: a new value
is placed by binary search and the slice shifted one step (O(w) moves of contiguous memory,
``w`` fixed by the definitions), the value leaving the window is found the same way and removed.
The cost per update depends on ``w`` only, never on the length of the history, and the median,
quartiles, minimum and maximum are read from the slice in O(1).

Quantiles are pandas' ``rolling(w).quantile(q)`` with linear interpolation, the rule of
:func:`python_jobs.features.rolling_spec.quantile_bounds` (the Python job's too).
"""

from __future__ import annotations

import numpy as np

from python_jobs.features._numba import njit
from python_jobs.features.rolling_spec import quantile_bounds


@njit(cache=True, nogil=True)
def _lower_bound(buf: np.ndarray, start: int, size: int, value: float) -> int:  # pragma: no cover
    lo = start
    hi = start + size
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def sorted_insert(buf: np.ndarray, start: int, size: int, value: float) -> None:  # pragma: no cover
    """Insert ``value`` into the sorted ``buf[start:start + size]`` (room for one more)."""
    at = _lower_bound(buf, start, size, value)
    for k in range(start + size, at, -1):
        buf[k] = buf[k - 1]
    buf[at] = value


@njit(cache=True, nogil=True)
def sorted_remove(buf: np.ndarray, start: int, size: int, value: float) -> None:  # pragma: no cover
    """Remove one occurrence of ``value`` from the sorted ``buf[start:start + size]``."""
    at = _lower_bound(buf, start, size, value)
    for k in range(at, start + size - 1):
        buf[k] = buf[k + 1]


@njit(cache=True, nogil=True)
def sorted_quantile(buf: np.ndarray, start: int, size: int, q: float) -> float:  # pragma: no cover
    """Linear-interpolation quantile ``q`` of the sorted ``buf[start:start + size]``."""
    lower, upper, weight = quantile_bounds(q, size)
    return buf[start + lower] + (buf[start + upper] - buf[start + lower]) * weight
