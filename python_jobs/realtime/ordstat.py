"""Rolling order statistics over a bounded window: a sorted buffer per series and window.

Each window of ``w`` rows keeps its values sorted in a slice of a preallocated row: a new value
is placed by binary search and the slice shifted one step (O(w) moves of contiguous memory,
``w`` fixed by the definitions), the value leaving the window is found the same way and removed.
The cost per update depends on ``w`` only, never on the length of the history, and the median,
quartiles, minimum and maximum are read from the slice in O(1).

Quantiles are pandas' ``rolling(w).quantile(q)`` with linear interpolation: for the sorted
window ``s`` and ``h = q (w - 1)``, ``s[floor(h)] + (s[floor(h) + 1] - s[floor(h)]) frac(h)``
(the same rule as ``python_jobs/features/rolling.py``).
"""

from __future__ import annotations

import numpy as np

from python_jobs.features._numba import njit


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
    pos = q * (size - 1)
    lo = int(pos)
    hi = lo + 1 if lo + 1 < size else size - 1
    return buf[start + lo] + (buf[start + hi] - buf[start + lo]) * (pos - lo)
