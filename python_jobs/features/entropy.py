"""Entropy, Hjorth and fractal-dimension measures from antropy: ``stat_ent_*``, ``stat_hjorth_*``,
``stat_fd_*``, ``stat_dfa``.

Every value is antropy's, from its own functions, except approximate entropy: antropy counts
the template matches with two scikit-learn ``KDTree`` radius queries (most of the family's
time); :func:`app_entropy` counts the same matches (Chebyshev distance ``<= r``, each
template matching itself) along the diagonals of the distance matrix in a numba kernel, and
then applies antropy's formula to the counts. The tests hold it equal to antropy.

GPU: :mod:`python_jobs.gpu.entropy` computes every output for a batch of series on the device.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from python_jobs.features._common import as_series, is_constant, nan_dict, quiet, safe, usable
from python_jobs.features._numba import import_cached, njit
from python_jobs.features.registry import register

# antropy compiles its numba kernels at import; import_cached makes that a one-off per machine.
antropy = import_cached("antropy")

# Higuchi's fractal dimension (kmax=10) divides by zero below 20 points, and the other
# measures are noise on so few patterns.
MIN_LENGTH = 20

# Embedding dimension and tolerance of antropy's app_entropy defaults.
APP_ORDER = 2
TOLERANCE_STD = 0.2


@njit(cache=True, nogil=True)
def _match_counts(x, order, r, short, long):  # pragma: no cover
    """Per template, how many templates (itself included) lie within Chebyshev distance ``r``.

    ``short`` for the ``order``-long templates, ``long`` for the ``order + 1``-long ones. For
    each offset ``d``, ``run`` is the number of consecutive positions ``k`` with
    ``|x[k] - x[k + d]| <= r`` ending here, so templates ``i`` and ``i + d`` match when the run
    covers their length: O(n^2) comparisons, no tree.
    """
    n = x.shape[0]
    short[:] = 1.0
    long[:] = 1.0
    for d in range(1, n - order + 1):
        run = 0
        for k in range(n - d):
            if abs(x[k] - x[k + d]) <= r:
                run += 1
            else:
                run = 0
            if run >= order:
                start = k - order + 1
                short[start] += 1.0
                short[start + d] += 1.0
            if run >= order + 1:
                start = k - order
                long[start] += 1.0
                long[start + d] += 1.0


def app_entropy(y: np.ndarray) -> float:
    """``antropy.app_entropy(y)`` (order 2, tolerance 0.2 std, Chebyshev) without its KD-trees."""
    r = TOLERANCE_STD * np.std(y, ddof=0)
    n = len(y)
    short = np.empty(n - APP_ORDER + 1)
    long = np.empty(n - APP_ORDER)
    _match_counts(np.ascontiguousarray(y, dtype=np.float64), APP_ORDER, float(r), short, long)
    phi = np.zeros(2)
    phi[0] = np.mean(np.log(short / short.shape[0]))
    phi[1] = np.mean(np.log(long / long.shape[0]))
    return float(np.subtract(phi[0], phi[1]))


_MEASURES: dict[str, Callable[[np.ndarray], float]] = {
    "stat_ent_perm": lambda y: antropy.perm_entropy(y, order=3, normalize=True),
    "stat_ent_spectral": lambda y: antropy.spectral_entropy(y, sf=1, method="fft", normalize=True),
    "stat_ent_svd": lambda y: antropy.svd_entropy(y, order=3, normalize=True),
    "stat_ent_app": app_entropy,
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
    gpu="python_jobs.gpu.entropy:entropy_batch",
    reference="antropy",
    min_length=MIN_LENGTH,
)
def entropy_family(y: np.ndarray) -> dict[str, float]:
    return entropy(y)
