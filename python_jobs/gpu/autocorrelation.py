"""ACF and PACF on the GPU: batched FFT autocovariance, then a vectorised Levinson-Durbin."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from python_jobs.features.autocorrelation import autocorrelation_outputs, autocorrelation_xp, min_length
from python_jobs.features.registry import param
from python_jobs.gpu import cupy
from python_jobs.gpu._stat import run_stat_batch


def autocorrelation_batch_xp(
    xp: ModuleType, ys: list[np.ndarray], acf_nlags: int | None = None, pacf_nlags: int | None = None
) -> list[dict[str, float]]:
    """The ``autocorrelation`` family for many series, with array module ``xp``."""
    acf_nlags = param("autocorrelation", "acf_nlags", acf_nlags)
    pacf_nlags = param("autocorrelation", "pacf_nlags", pacf_nlags)
    return run_stat_batch(
        xp,
        ys,
        autocorrelation_outputs(acf_nlags, pacf_nlags),
        lambda xp, values: autocorrelation_xp(xp, values, acf_nlags, pacf_nlags),
        min_length=min_length(acf_nlags, pacf_nlags),
        bytes_per_row=8 * 16,
    )


def autocorrelation_batch(
    ys: list[np.ndarray], acf_nlags: int | None = None, pacf_nlags: int | None = None
) -> list[dict[str, float]]:
    """GPU counterpart of the ``autocorrelation`` family (CuPy)."""
    return autocorrelation_batch_xp(cupy(), ys, acf_nlags, pacf_nlags)
