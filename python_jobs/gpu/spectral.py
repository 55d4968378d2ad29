"""Spectral statistics on the GPU: one batched ``cupy.fft.rfft`` per series length."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from python_jobs.features.spectral import MIN_LENGTH, spectral_outputs, spectral_xp
from python_jobs.gpu import cupy
from python_jobs.gpu._stat import run_stat_batch


def spectral_batch_xp(xp: ModuleType, ys: list[np.ndarray]) -> list[dict[str, float]]:
    """The ``spectral`` family for many series, with array module ``xp``."""
    return run_stat_batch(
        xp, ys, spectral_outputs(), spectral_xp, min_length=MIN_LENGTH, bytes_per_row=8 * 16
    )


def spectral_batch(ys: list[np.ndarray]) -> list[dict[str, float]]:
    """GPU counterpart of the ``spectral`` family (CuPy)."""
    return spectral_batch_xp(cupy(), ys)
