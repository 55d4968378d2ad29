"""The entropy family on the GPU: antropy's measures as batched array code.

Every measure is antropy's formula over a ``(series, rows)`` array, equal to the CPU family up
to floating-point summation order:

- permutation entropy from antropy's comparison keys (``<=`` between the three columns of the
  embedding), counted per row;
- spectral entropy from one batched ``rfft`` (scipy's periodogram: mean removed, one-sided,
  doubled except DC and Nyquist);
- SVD entropy from a Householder QR of each embedding on the device and the singular values
  of the 3x3 triangular factors on the host (nine numbers per series);
- approximate and sample entropy from the full matrix of pairwise distances of each series
  (``|x_i - x_j| <= r``, resp. ``< r``, ANDed along the diagonals for the template length), so
  they cost O(n^2) memory per series and the chunks are sized for it; ``r`` is computed on
  the host with NumPy exactly as antropy computes it, so no comparison at the tolerance can
  differ;
- Hjorth, Petrosian, Katz, Higuchi (k = 1..10 strided sums) and DFA (closed-form segment
  regressions at antropy's window sizes) as vectorised sums.

cuDF is not used: nothing here is a group-by or a frame operation.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from python_jobs.features.entropy import APP_ORDER, MIN_LENGTH, TOLERANCE_STD, entropy, entropy_outputs
from python_jobs.features.registry import param
from python_jobs.gpu import batching, cupy
from python_jobs.gpu._stat import run_stat_batch

# The embedding order of the device's permutation and SVD entropies.
DEVICE_ORDER = 3

HIGUCHI_KMAX = 10
# antropy.utils.epsilon, added to its regression denominators
REGRESSION_EPSILON = 1e-9


def _xlogx(xp: ModuleType, p):
    safe = xp.where(p > 0, p, 1.0)
    return xp.where(p > 0, p * xp.log(safe) / math.log(2), 0.0)


def _perm_entropy(xp: ModuleType, x):
    a, b, c = x[:, :-2], x[:, 1:-1], x[:, 2:]
    key = (a <= b).astype(xp.int64) * 4 + (a <= c).astype(xp.int64) * 2 + (b <= c).astype(xp.int64)
    counts = xp.stack([(key == k).sum(axis=1) for k in range(8)], axis=1)
    p = counts / a.shape[1]
    value = -_xlogx(xp, p).sum(axis=1) / math.log2(math.factorial(3))
    return xp.clip(value, 0.0, 1.0)


def _spectral_entropy(xp: ModuleType, x):
    n = x.shape[1]
    spectrum = xp.fft.rfft(x - x.mean(axis=1, keepdims=True), axis=1)
    psd = (spectrum.real**2 + spectrum.imag**2) / n
    last = psd.shape[1] - 1 if n % 2 == 0 else psd.shape[1]
    psd[:, 1:last] *= 2
    norm = psd / psd.sum(axis=1, keepdims=True)
    return -_xlogx(xp, norm).sum(axis=1) / math.log2(norm.shape[1])


def _svd_entropy(xp: ModuleType, x):
    # Householder QR of each (n - 2, 3) embedding on the device (backward stable, unlike the
    # Gram matrix, whose eigenvalues lose the small singular values of a near-linear series),
    # then the singular values of the 3x3 R factors on the host.
    m = x.shape[1] - 2
    a = xp.stack([x[:, k : k + m] for k in range(3)], axis=2)
    for j in range(3):
        column = a[:, j:, j]
        norm = xp.sqrt((column * column).sum(axis=1))
        alpha = -xp.where(column[:, 0] >= 0, 1.0, -1.0) * norm
        v = column.copy()
        v[:, 0] -= alpha
        scale = (v * v).sum(axis=1)
        scale = xp.where(scale > 0, 2.0 / xp.where(scale > 0, scale, 1.0), 0.0)
        projection = (v[:, :, None] * a[:, j:, j:]).sum(axis=1)
        a[:, j:, j:] -= scale[:, None, None] * v[:, :, None] * projection[:, None, :]
    upper = np.triu(batching.to_host(xp, a[:, :3, :3]))
    singular = np.linalg.svd(upper, compute_uv=False)
    weights = singular / singular.sum(axis=1, keepdims=True)
    return xp.asarray(-_xlogx(np, weights).sum(axis=1) / math.log2(3))


def _template_matches(xp: ModuleType, x, r, strict: bool):
    """``(series, n, n)`` bool: ``|x_i - x_j| <= r`` (``< r`` when strict) per series."""
    distance = xp.abs(x[:, :, None] - x[:, None, :])
    return distance < r[:, None, None] if strict else distance <= r[:, None, None]


def _app_entropy(xp: ModuleType, x, r):
    near = _template_matches(xp, x, r, strict=False)
    short = near[:, :-1, :-1] & near[:, 1:, 1:]
    long = short[:, :-1, :-1] & near[:, 2:, 2:]
    counts_short = short.sum(axis=2)
    counts_long = long.sum(axis=2)
    phi_short = xp.log(counts_short / counts_short.shape[1]).mean(axis=1)
    phi_long = xp.log(counts_long / counts_long.shape[1]).mean(axis=1)
    return phi_short - phi_long


def _sample_entropy(xp: ModuleType, x, r):
    n = x.shape[1]
    near = _template_matches(xp, x, r, strict=True)
    usable = n - APP_ORDER  # templates whose (order + 1)-long extension fits
    pair = near[:, :usable, :usable] & near[:, 1 : usable + 1, 1 : usable + 1]
    longer = pair & near[:, 2 : usable + 2, 2 : usable + 2]
    upper = xp.triu(xp.ones((usable, usable), dtype=bool), k=1)[None]
    denominator = (pair & upper).sum(axis=(1, 2)).astype(xp.float64)
    numerator = (longer & upper).sum(axis=(1, 2)).astype(xp.float64)
    with np.errstate(all="ignore"):
        value = -xp.log(numerator / denominator)
    # antropy: NaN without matches of length order; infinite (NaN in the family) without longer ones
    return xp.where((denominator == 0) | (numerator == 0), np.nan, value)


def _hjorth(xp: ModuleType, x):
    dx = xp.diff(x, axis=1)
    ddx = xp.diff(dx, axis=1)
    mobility = xp.sqrt(dx.var(axis=1) / x.var(axis=1))
    return mobility, xp.sqrt(ddx.var(axis=1) / dx.var(axis=1)) / mobility


def _petrosian(xp: ModuleType, x):
    n = x.shape[1]
    sign = xp.signbit(xp.diff(x, axis=1))
    crossings = (sign[:, 1:] != sign[:, :-1]).sum(axis=1)
    return math.log10(n) / (math.log10(n) + xp.log10(n / (n + 0.4 * crossings)))


def _katz(xp: ModuleType, x):
    dists = xp.abs(xp.diff(x, axis=1))
    length = dists.sum(axis=1)
    step = dists.mean(axis=1)
    extent = xp.abs(x - x[:, :1]).max(axis=1)
    return xp.log10(length / step) / xp.log10(extent / step)


def _regression_slope(xp: ModuleType, t, y):
    """antropy's ``_linear_regression`` slope of each row of ``y`` on ``t`` (closed form)."""
    count = t.shape[-1]
    sx2 = (t * t).sum(axis=-1)
    sx = t.sum(axis=-1)
    sxy = (t * y).sum(axis=-1)
    sy = y.sum(axis=-1)
    slope = (count * sxy - sx * sy) / ((count * sx2 - sx**2) + REGRESSION_EPSILON)
    return slope, y.mean(axis=-1) - slope * t.mean(axis=-1)


def _higuchi(xp: ModuleType, x):
    n = x.shape[1]
    logs = []
    for k in range(1, HIGUCHI_KMAX + 1):
        total = 0.0
        for m in range(k):
            steps = (n - m - 1) // k
            strided = x[:, m : m + steps * k + 1 : k]
            length = xp.abs(xp.diff(strided, axis=1)).sum(axis=1) / k * ((n - 1) / (k * steps))
            total = total + length
        mean = total / k
        logs.append(xp.where(mean > 0, xp.log(xp.where(mean > 0, mean, 1.0)), -np.inf))
    t = xp.asarray(np.log(1.0 / np.arange(1, HIGUCHI_KMAX + 1)))
    return _regression_slope(xp, t[None, :], xp.stack(logs, axis=1))[0]


def _dfa_sizes(n: int) -> np.ndarray:
    """antropy's ``_log_n(4, 0.1 n, 1.2)``: window sizes growing by 1.2."""
    count = math.floor(math.log(0.1 * n / 4) / math.log(1.2))
    sizes = [4]
    for i in range(count + 1):
        size = math.floor(4 * 1.2**i)
        if size > sizes[-1]:
            sizes.append(size)
    return np.array(sizes, dtype=np.int64)


def _dfa(xp: ModuleType, x):
    n = x.shape[1]
    walk = xp.cumsum(x - x.mean(axis=1, keepdims=True), axis=1)
    sizes = _dfa_sizes(n)
    fluctuations = []
    for size in (int(s) for s in sizes):
        segments = walk[:, : n - n % size].reshape(x.shape[0], n // size, size)
        t = xp.arange(size, dtype=xp.float64)[None, None, :]
        slope, intercept = _regression_slope(xp, t, segments)
        trend = intercept[..., None] + slope[..., None] * t
        residual = ((segments - trend) ** 2).sum(axis=2) / size
        fluctuations.append(xp.sqrt(residual.mean(axis=1)))
    flucs = xp.stack(fluctuations, axis=1)
    log_sizes = xp.asarray(np.log(sizes.astype(np.float64)))
    # antropy drops zero fluctuations before the fit; real series have none (checked on the host)
    slope = _regression_slope(xp, log_sizes[None, :], xp.log(xp.where(flucs > 0, flucs, 1.0)))[0]
    return xp.where((flucs > 0).all(axis=1), slope, np.nan)


def entropy_xp(xp: ModuleType, x) -> dict:
    """Every ``entropy`` output for each row of ``x`` (usable, non-constant series)."""
    host = batching.to_host(xp, x)
    tolerance = xp.asarray(np.array([TOLERANCE_STD * np.std(row, ddof=0) for row in host]))
    with np.errstate(all="ignore"):
        mobility, complexity = _hjorth(xp, x)
        values = {
            "stat_ent_perm": _perm_entropy(xp, x),
            "stat_ent_spectral": _spectral_entropy(xp, x),
            "stat_ent_svd": _svd_entropy(xp, x),
            "stat_ent_app": _app_entropy(xp, x, tolerance),
            "stat_ent_sample": _sample_entropy(xp, x, tolerance),
            "stat_hjorth_mobility": mobility,
            "stat_hjorth_complexity": complexity,
            "stat_fd_petrosian": _petrosian(xp, x),
            "stat_fd_katz": _katz(xp, x),
            "stat_fd_higuchi": _higuchi(xp, x),
            "stat_dfa": _dfa(xp, x),
        }
    return {name: xp.where(xp.isfinite(value), value, np.nan) for name, value in values.items()}


def entropy_batch_xp(
    xp: ModuleType, ys: list[np.ndarray], order: int | None = None
) -> list[dict[str, float]]:
    """The ``entropy`` family for many series, with array module ``xp``.

    The device kernels embed in order 3 (the family's declared ``order``); another order runs
    the CPU family.
    """
    order = param("entropy", "order", order)
    if order != DEVICE_ORDER:
        return [entropy(y, order) for y in ys]
    return run_stat_batch(
        xp,
        ys,
        entropy_outputs(),
        entropy_xp,
        min_length=MIN_LENGTH,
        # the pairwise distance matrix (float64) and a few boolean ones of the same shape
        bytes_per_row=lambda n: 16 * n,
    )


def entropy_batch(ys: list[np.ndarray], order: int | None = None) -> list[dict[str, float]]:
    """GPU counterpart of the ``entropy`` family (CuPy)."""
    return entropy_batch_xp(cupy(), ys, order)
