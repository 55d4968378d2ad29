"""Entropy, Hjorth and fractal-dimension measures from antropy: ``stat_ent_*``, ``stat_hjorth_*``,
``stat_fd_*``, ``stat_dfa``.

No GPU implementation: the job runs this family on the CPU whatever the device.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from python_jobs.features._common import as_series, is_constant, nan_dict, quiet, safe, usable
from python_jobs.features._numba import import_cached
from python_jobs.features.registry import param, register

# antropy compiles its numba kernels at import; import_cached makes that a one-off per machine.
antropy = import_cached("antropy")

# Higuchi's fractal dimension (kmax=10) divides by zero below 20 points, and the other
# measures are noise on so few patterns.
MIN_LENGTH = 20

# Each measure takes the series and the embedding order of the permutation and SVD entropies.
_MEASURES: dict[str, Callable[[np.ndarray, int], float]] = {
    "stat_ent_perm": lambda y, order: antropy.perm_entropy(y, order=order, normalize=True),
    "stat_ent_spectral": lambda y, order: antropy.spectral_entropy(y, sf=1, method="fft", normalize=True),
    "stat_ent_svd": lambda y, order: antropy.svd_entropy(y, order=order, normalize=True),
    "stat_ent_app": lambda y, order: antropy.app_entropy(y),
    "stat_ent_sample": lambda y, order: antropy.sample_entropy(y),
    "stat_hjorth_mobility": lambda y, order: antropy.hjorth_params(y)[0],
    "stat_hjorth_complexity": lambda y, order: antropy.hjorth_params(y)[1],
    "stat_fd_petrosian": lambda y, order: antropy.petrosian_fd(y),
    "stat_fd_katz": lambda y, order: antropy.katz_fd(y),
    "stat_fd_higuchi": lambda y, order: antropy.higuchi_fd(y),
    "stat_dfa": lambda y, order: antropy.detrended_fluctuation(y),
}


def entropy_outputs() -> list[str]:
    return list(_MEASURES)


def entropy(y, order: int | None = None) -> dict[str, float]:
    """Entropy and complexity measures of ``y``.

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.
    order : int, optional
        Embedding order of the permutation and SVD entropies; default the family's (3).

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
    order = param("entropy", "order", order)
    names = entropy_outputs()
    if not usable(arr, MIN_LENGTH) or is_constant(arr):
        return nan_dict(names)
    with quiet():
        return {name: safe(lambda fn=fn: fn(arr, order)) for name, fn in _MEASURES.items()}


@register(
    "entropy",
    kind="stat",
    outputs=entropy_outputs(),
    params={"order": 3},
    libraries=("antropy",),
    cost="medium",
    reference="antropy",
    min_length=MIN_LENGTH,
)
def entropy_family(y: np.ndarray, *, order: int) -> dict[str, float]:
    return entropy(y, order)
