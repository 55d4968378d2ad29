"""Input handling shared by the feature families.

The families agree on three rules for the edge cases, so the job never crashes on them:

- the input is turned into a contiguous 1-D float64 array;
- a ``stat`` family returns NaN for every output when the series is shorter than the family's
  minimum length or holds a non-finite value (``y`` is NOT NULL in staging, so NaN means a
  caller's mistake, and the libraries disagree on how to treat it);
- where a library raises or returns an infinity for an otherwise valid series, that output is
  NaN (the value is undefined there).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np


def as_series(y) -> np.ndarray:
    """``y`` as a contiguous, writable 1-D float64 array.

    Writable matters: numba compiles a separate specialisation for read-only arrays (which
    pandas' copy-on-write hands out), doubling the JIT work.
    """
    arr = np.ascontiguousarray(np.asarray(y, dtype=np.float64))
    if not arr.flags.writeable:
        arr = arr.copy()
    if arr.ndim != 1:
        raise ValueError(f"a series must be one-dimensional, got shape {arr.shape}")
    return arr


def usable(y: np.ndarray, min_length: int) -> bool:
    """Long enough and finite everywhere."""
    return len(y) >= min_length and bool(np.isfinite(y).all())


def is_constant(y: np.ndarray) -> bool:
    return len(y) == 0 or bool(np.ptp(y) == 0)


def nan_dict(names: list[str]) -> dict[str, float]:
    return dict.fromkeys(names, math.nan)


def finite_or_nan(value) -> float:
    """A Python float; NaN for None, infinities and values that are not numbers."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def safe(fn: Callable[[], float]) -> float:
    """``fn()`` as a finite float, NaN where it raises (undefined for this series)."""
    try:
        return finite_or_nan(fn())
    except (ArithmeticError, ValueError, IndexError, np.linalg.LinAlgError):
        return math.nan


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the numeric warnings the reference libraries emit on degenerate input."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield
