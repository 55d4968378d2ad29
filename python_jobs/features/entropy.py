"""Entropy, Hjorth and fractal-dimension measures from antropy: ``stat_ent_*``, ``stat_hjorth_*``,
``stat_fd_*``, ``stat_dfa``.

No GPU implementation: the job runs this family on the CPU whatever the device.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from python_jobs.features._common import as_series, is_constant, nan_dict, quiet, safe, usable
from python_jobs.features._numba import import_cached
from python_jobs.features.registry import register

# antropy compiles its numba kernels at import; import_cached makes that a one-off per machine.
antropy = import_cached("antropy")

# Higuchi's fractal dimension (kmax=10) divides by zero below 20 points, and the other
# measures are noise on so few patterns.
MIN_LENGTH = 20

_MEASURES: dict[str, Callable[[np.ndarray], float]] = {
    "stat_ent_perm": lambda y: antropy.perm_entropy(y, order=3, normalize=True),
    "stat_ent_spectral": lambda y: antropy.spectral_entropy(y, sf=1, method="fft", normalize=True),
    "stat_ent_svd": lambda y: antropy.svd_entropy(y, order=3, normalize=True),
    "stat_ent_app": lambda y: antropy.app_entropy(y),
    "stat_ent_sample": lambda y: antropy.sample_entropy(y),
    "stat_hjorth_mobility": lambda y: antropy.hjorth_params(y)[0],
    "stat_hjorth_complexity": lambda y: antropy.hjorth_params(y)[1],
    "stat_fd_petrosian": lambda y: antropy.petrosian_fd(y),
    "stat_fd_katz": lambda y: antropy.katz_fd(y),
    "stat_fd_higuchi": lambda y: antropy.higuchi_fd(y),
    "stat_dfa": lambda y: antropy.detrended_fluctuation(y),
}


def entropy_outputs() -> list[str]:
    return list(_MEASURES)


def entropy(y) -> dict[str, float]:
    """Entropy and complexity measures of ``y``.

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.

    Returns
    -------
    dict of str to float
        ``stat_ent_perm`` (permutation entropy, order 3, normalised), ``stat_ent_spectral``
        (sf=1, FFT periodogram, normalised), ``stat_ent_svd`` (order 3, normalised),
        ``stat_ent_app``, ``stat_ent_sample`` (antropy defaults: order 2, r = 0.2 std),
        ``stat_hjorth_mobility`` and ``stat_hjorth_complexity``, ``stat_fd_petrosian``,
        ``stat_fd_katz``, ``stat_fd_higuchi`` (kmax 10) and ``stat_dfa`` (DFA exponent).
        All NaN for a series shorter than 20, holding a non-finite value, or constant (every
        measure normalises by the series' variation, so it is 0/0 there). A measure that
        raises or is infinite for a valid series (sample entropy with no template match) is NaN.

    Notes
    -----
    Reference: antropy (R. Vallat, https://github.com/raphaelvallat/antropy), the functions
    named above with the arguments above, values passed through unchanged.
    """
    arr = as_series(y)
    names = entropy_outputs()
    if not usable(arr, MIN_LENGTH) or is_constant(arr):
        return nan_dict(names)
    with quiet():
        return {name: safe(lambda fn=fn: fn(arr)) for name, fn in _MEASURES.items()}


@register(
    "entropy",
    kind="stat",
    outputs=entropy_outputs,
    cost="medium",
    reference="antropy",
    min_length=MIN_LENGTH,
)
def entropy_family(y: np.ndarray) -> dict[str, float]:
    return entropy(y)
