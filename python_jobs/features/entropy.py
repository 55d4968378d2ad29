"""Entropy, Hjorth and fractal-dimension measures from antropy: ``stat_ent_*``, ``stat_hjorth_*``,
``stat_fd_*``, ``stat_dfa``.

Every value is antropy's, from its own functions, except spectral entropy (antropy's
formulas on one NumPy FFT, :func:`spectral_entropy`) and approximate and sample entropy:
antropy counts approximate entropy's template matches with two scikit-learn ``KDTree``
radius queries and sample entropy's in a second O(n^2) pass (together most of the family's
time); :func:`template_entropies` counts both sets of matches (``<= r`` with each template
matching itself, and ``< r`` over antropy's pairs) along the diagonals of the distance matrix
in one numba pass, then applies antropy's formulas to the counts. The tests hold all three
equal to antropy.

GPU: :mod:`python_jobs.gpu.entropy` computes every output for a batch of series on the device.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import numpy as np

from python_jobs.features._common import as_series, is_constant, nan_dict, quiet, safe, usable
from python_jobs.features._numba import import_cached, njit
from python_jobs.features.registry import param, register

# antropy compiles its numba kernels at import; import_cached makes that a one-off per machine.
antropy = import_cached("antropy")

# Higuchi's fractal dimension (kmax=10) divides by zero below 20 points, and the other
# measures are noise on so few patterns.
MIN_LENGTH = 20

# Embedding dimension and tolerance of antropy's app_entropy defaults.
APP_ORDER = 2
TOLERANCE_STD = 0.2


@njit(cache=True, nogil=True)
def _match_counts(x, order, r, short, long, strict):  # pragma: no cover
    """Template matches of approximate and sample entropy, in one pass over the diagonals.

    ``short[i]`` / ``long[i]``: how many ``order``- / ``order + 1``-long templates (itself
    included) lie within Chebyshev distance ``<= r`` of template ``i`` (approximate entropy).
    ``strict``: the pairs ``i < j <= n - order - 1`` matching within ``< r`` over ``order``
    values, then over ``order + 1`` values (sample entropy's denominator and numerator, as
    antropy counts them). For each offset ``d``, ``run`` is the number of consecutive positions
    ``k`` with ``|x[k] - x[k + d]| <= r`` ending here (``run_strict`` likewise with ``< r``), so
    templates ``i`` and ``i + d`` match when the run covers their length: O(n^2) comparisons.
    """
    n = x.shape[0]
    short[:] = 1.0
    long[:] = 1.0
    strict[:] = 0
    for d in range(1, n - order + 1):
        run = 0
        run_strict = 0
        last_pair = n - order - 1 - d  # sample entropy: the later template must end by n - 2
        for k in range(n - d):
            distance = abs(x[k] - x[k + d])
            run = run + 1 if distance <= r else 0
            run_strict = run_strict + 1 if distance < r else 0
            if run >= order:
                start = k - order + 1
                short[start] += 1.0
                short[start + d] += 1.0
                if run_strict >= order and start <= last_pair:
                    strict[0] += 1
            if run >= order + 1:
                start = k - order
                long[start] += 1.0
                long[start + d] += 1.0
                if run_strict >= order + 1 and start <= last_pair:
                    strict[1] += 1


def template_entropies(y: np.ndarray) -> tuple[float, float]:
    """``(antropy.app_entropy(y), antropy.sample_entropy(y))`` from one count of template matches.

    antropy's defaults: order 2, tolerance 0.2 std (ddof 0), Chebyshev distance. Sample
    entropy is NaN without matches of length 2 and infinite without matches of length 3, as
    antropy returns them.
    """
    arr = np.ascontiguousarray(y, dtype=np.float64)
    r = TOLERANCE_STD * np.std(arr, ddof=0)
    n = len(arr)
    short = np.empty(n - APP_ORDER + 1)
    long = np.empty(n - APP_ORDER)
    strict = np.zeros(2, dtype=np.int64)
    _match_counts(arr, APP_ORDER, float(r), short, long, strict)
    phi = np.zeros(2)
    phi[0] = np.mean(np.log(short / short.shape[0]))
    phi[1] = np.mean(np.log(long / long.shape[0]))
    denominator, numerator = int(strict[0]), int(strict[1])
    if denominator == 0:
        sample = math.nan
    elif numerator == 0:
        sample = math.inf
    else:
        sample = -math.log(numerator / denominator)
    return float(np.subtract(phi[0], phi[1])), sample


def spectral_entropy(y: np.ndarray) -> float:
    """``antropy.spectral_entropy(y, sf=1, method="fft", normalize=True)`` without scipy's overhead.

    antropy takes scipy's ``periodogram`` (mean removed, boxcar window, density scaling, one
    sided: every bin but DC and, for even n, Nyquist doubled), normalises it to sum 1 and
    returns its Shannon entropy in bits over ``log2`` of the bin count. The same formulas on
    one ``numpy.fft.rfft``; scipy's short-time-FFT machinery costs several times the FFT.
    """
    n = len(y)
    spectrum = np.fft.rfft(y - y.mean())
    psd = (spectrum.real**2 + spectrum.imag**2) / n
    if n % 2:
        psd[1:] *= 2
    else:
        psd[1:-1] *= 2
    norm = psd / psd.sum()
    positive = norm[norm > 0]
    return float(-(positive * np.log(positive) / np.log(2)).sum() / np.log2(len(norm)))


def app_entropy(y: np.ndarray) -> float:
    """``antropy.app_entropy(y)`` without its KD-trees (see :func:`template_entropies`)."""
    return template_entropies(y)[0]


def sample_entropy(y: np.ndarray) -> float:
    """``antropy.sample_entropy(y)`` (see :func:`template_entropies`)."""
    return template_entropies(y)[1]


# The outputs of antropy.hjorth_params, in its order.
HJORTH = ("stat_hjorth_mobility", "stat_hjorth_complexity")

# Each measure takes the series and the embedding order of the permutation and SVD entropies.
_MEASURES: dict[str, Callable[[np.ndarray, int], float]] = {
    "stat_ent_perm": lambda y, order: antropy.perm_entropy(y, order=order, normalize=True),
    "stat_ent_spectral": lambda y, order: spectral_entropy(y),
    "stat_ent_svd": lambda y, order: antropy.svd_entropy(y, order=order, normalize=True),
    "stat_ent_app": lambda y, order: app_entropy(y),
    "stat_ent_sample": lambda y, order: sample_entropy(y),
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
        app, sample = template_entropies(arr)  # both from one pass over the template pairs
        shared = {"stat_ent_app": app, "stat_ent_sample": sample}
        # Both Hjorth parameters from one call (where it raises, each measure's own call
        # raises again and gives NaN).
        with contextlib.suppress(ArithmeticError, ValueError, IndexError, np.linalg.LinAlgError):
            shared.update(zip(HJORTH, antropy.hjorth_params(arr), strict=True))
        return {
            name: safe(lambda fn=fn, name=name: shared[name] if name in shared else fn(arr, order))
            for name, fn in _MEASURES.items()
        }


@register(
    "entropy",
    kind="stat",
    outputs=entropy_outputs(),
    params={"order": 3},
    libraries=("antropy",),
    cost="medium",
    gpu="python_jobs.gpu.entropy:entropy_batch",
    reference="antropy",
    min_length=MIN_LENGTH,
)
def entropy_family(y: np.ndarray, *, order: int) -> dict[str, float]:
    return entropy(y, order)
