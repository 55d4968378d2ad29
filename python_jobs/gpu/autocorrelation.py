"""ACF and PACF on the GPU: batched FFT autocovariance, then a vectorised Levinson-Durbin."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from python_jobs.features.autocorrelation import MIN_LENGTH, autocorrelation_outputs, autocorrelation_xp
from python_jobs.gpu import cupy
from python_jobs.gpu._stat import run_stat_batch


def autocorrelation_batch_xp(xp: ModuleType, ys: list[np.ndarray]) -> list[dict[str, float]]:
    """The ``autocorrelation`` family for many series, with array module ``xp``."""
    return run_stat_batch(
        xp,
        ys,
        autocorrelation_outputs(),
        autocorrelation_xp,
        min_length=MIN_LENGTH,
        bytes_per_row=8 * 16,
    )


def autocorrelation_batch(ys: list[np.ndarray]) -> list[dict[str, float]]:
    """GPU counterpart of the ``autocorrelation`` family (CuPy)."""
    return autocorrelation_batch_xp(cupy(), ys)
