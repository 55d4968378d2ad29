"""Spectral shape of the series from its FFT power spectrum: ``stat_spec_*``.

Definitions, for a series ``y`` of ``n`` rows:

- ``x = y - mean(y)``; ``X = numpy.fft.rfft(x)``; power ``P_k = |X_k|^2`` and frequency
  ``f_k = k / n`` cycles per draw (``numpy.fft.rfftfreq(n, d=1)``), ``k = 1 .. n // 2``. The DC
  bin ``k = 0`` (zero after mean removal) is excluded everywhere; ``S = sum_k P_k``.
- ``centroid = sum_k f_k P_k / S``.
- ``spread = sqrt(sum_k (f_k - centroid)^2 P_k / S)``.
- ``rolloff``: the smallest ``f_k`` at which the cumulative power ``sum_{j <= k} P_j`` reaches
  85 % of ``S``.
- ``flatness = exp(mean_k log P_k) / mean_k P_k`` (geometric over arithmetic mean; 0 when a
  bin has zero power).
- ``dominant_freq = f_k`` of the largest ``P_k`` (the lowest such frequency on ties).
- ``dominant_power_ratio = max_k P_k / S``.

All NaN for a series shorter than 4 rows, holding a non-finite value, or constant (``S = 0``).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from python_jobs.features._common import as_series, is_constant, nan_dict, usable
from python_jobs.features.registry import register

SPECTRAL_STATS = ("centroid", "spread", "rolloff", "flatness", "dominant_freq", "dominant_power_ratio")
ROLLOFF_FRACTION = 0.85
MIN_LENGTH = 4


def spectral_outputs() -> list[str]:
    return [f"stat_spec_{name}" for name in SPECTRAL_STATS]


def spectral_xp(xp: ModuleType, values) -> dict:
    """The spectral statistics of each row of ``values`` (series, rows), with array module ``xp``.

    Rows must be finite, non-constant and at least :data:`MIN_LENGTH` long. Shared by the CPU
    family (NumPy, one row) and the GPU family (CuPy, many rows), so both compute the same
    expressions.
    """
    n = values.shape[1]
    centred = values - values.mean(axis=1, keepdims=True)
    spectrum = xp.fft.rfft(centred, axis=1)[:, 1:]
    power = spectrum.real**2 + spectrum.imag**2
    freqs = xp.arange(1, n // 2 + 1, dtype=xp.float64) / n
    total = power.sum(axis=1)
    centroid = (power * freqs).sum(axis=1) / total
    spread = xp.sqrt((power * (freqs[None, :] - centroid[:, None]) ** 2).sum(axis=1) / total)
    cumulative = xp.cumsum(power, axis=1)
    reached = (cumulative >= ROLLOFF_FRACTION * total[:, None]).astype(xp.int8)
    rolloff_bin = xp.argmax(reached, axis=1)
    with np.errstate(divide="ignore"):
        log_power = xp.log(power)
    flatness = xp.exp(log_power.mean(axis=1)) / power.mean(axis=1)
    peak_bin = xp.argmax(power, axis=1)
    return {
        "stat_spec_centroid": centroid,
        "stat_spec_spread": spread,
        "stat_spec_rolloff": freqs[rolloff_bin],
        "stat_spec_flatness": flatness,
        "stat_spec_dominant_freq": freqs[peak_bin],
        "stat_spec_dominant_power_ratio": power.max(axis=1) / total,
    }


def spectral(y) -> dict[str, float]:
    """Spectral centroid, spread, roll-off, flatness and dominant frequency of ``y``.

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.

    Returns
    -------
    dict of str to float
        ``stat_spec_{centroid, spread, rolloff, flatness, dominant_freq,
        dominant_power_ratio}`` as defined in the module docstring (frequencies in cycles
        per draw, 0 .. 0.5).

    Notes
    -----
    Reference: the audio-descriptor definitions of G. Peeters, "A large set of audio features
    for sound description", IRCAM (2004), applied to ``numpy.fft.rfft`` of the mean-removed
    series; ``python_jobs/tests/naive.py`` recomputes them with an explicit DFT sum.
    """
    arr = as_series(y)
    names = spectral_outputs()
    if not usable(arr, MIN_LENGTH) or is_constant(arr):
        return nan_dict(names)
    values = spectral_xp(np, arr[None, :])
    return {name: float(values[name][0]) for name in names}


@register(
    "spectral",
    kind="stat",
    outputs=spectral_outputs(),
    cost="low",
    gpu="python_jobs.gpu.spectral:spectral_batch",
    reference="numpy.fft.rfft (definitions in the module docstring)",
    min_length=MIN_LENGTH,
)
def spectral_family(y: np.ndarray) -> dict[str, float]:
    return spectral(y)
