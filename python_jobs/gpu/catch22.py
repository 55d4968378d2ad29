"""catch22 on the GPU: five features as batched array code, the rest by pycatch22 on the host.

On the device, for a batch of equal-length series z-scored on the host as catch22 does
(sequential mean, then ``sqrt(sum((y - mean)^2) / (n - 1))``):
``CO_FirstCrossing_acf_1e_pointOfCrossing`` and ``CO_FirstMin_ac`` (autocorrelations by one
batched FFT at catch22's padded length, twice the next power of two; the crossing linearly
interpolated), ``FC_LocalSimple_mean3_stde`` (standard deviation of the residuals of the
3-point local mean forecast), ``MD_pNN_pnn40`` and ``CO_trev_1_num``.

On the host, by pycatch22's own single-feature functions (the same C code as
``catch22_all``, which the tests confirm), the other seventeen. Most have control flow that
depends on the data at every step (the outlier threshold scans, motif and transition-matrix
coarse-graining, the spline fit and peak search of PD_PeriodicityWang, the breakpoint searches
of SC_FluctAnal, the histogram fits of CO_Embed2 and CO_HistogramAMI); the histogram modes,
binary-stretch lengths, AMI minimum and mean1 tau ratio are simple, but pycatch22 1.0's C
code for them is not the published catch22 code they were checked against, and a re-derived
version did not match it on the bundled series, so they stay with pycatch22 until its
source can be followed exactly. They are the batch function's host stage
(:func:`python_jobs.gpu.with_host_stage`), which the job may run in another process while
the device computes other families.

cuDF is not used: the batch is a dense array per length and nothing here is a group-by.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pycatch22

from python_jobs.features._common import finite_or_nan
from python_jobs.features._numba import njit
from python_jobs.features.catch22 import CATCH22_NAMES, MIN_LENGTH, catch22_outputs
from python_jobs.gpu import batching, cupy, with_host_stage
from python_jobs.gpu._stat import run_stat_batch, usable_series

DEVICE_FEATURES = (
    "CO_FirstCrossing_acf_1e_pointOfCrossing",
    "CO_FirstMin_ac",
    "FC_LocalSimple_mean3_stde",
    "MD_pNN_pnn40",
    "CO_trev_1_num",
)
HOST_FEATURES = tuple(name for name in CATCH22_NAMES if name not in DEVICE_FEATURES)


@njit(cache=True, nogil=True)
def _zscore_rows(values, out):  # pragma: no cover
    # catch22's zscore_norm2: sequential mean, then sqrt(sum((a - m)^2) / (n - 1)).
    rows, n = values.shape
    for row in range(rows):
        total = 0.0
        for i in range(n):
            total += values[row, i]
        mean = total / n
        squares = 0.0
        for i in range(n):
            squares += (values[row, i] - mean) ** 2
        sd = math.sqrt(squares / (n - 1))
        for i in range(n):
            out[row, i] = (values[row, i] - mean) / sd


def _autocorrelations(xp: ModuleType, z):
    """catch22's ``co_autocorrs``: linear autocorrelation by FFT at twice the next power of two."""
    n = z.shape[1]
    size = 1 << max(0, (n - 1).bit_length())
    centred = z - z.mean(axis=1, keepdims=True)
    spectrum = xp.fft.rfft(centred, n=2 * size, axis=1)
    acov = xp.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=2 * size, axis=1)
    return acov / acov[:, :1]


def _first_index(xp: ModuleType, mask, default: int):
    found = mask.any(axis=1)
    # argmax over int8, not bool: the first True, on NumPy and CuPy alike
    return xp.where(found, xp.argmax(mask.astype(xp.int8), axis=1), default)


def _first_crossing_1e(xp: ModuleType, acf, n: int):
    threshold = 1.0 / math.exp(1)
    below = acf[:, 1 : n - 1] < threshold  # i + 1 for i in 0 .. n - 3
    i = _first_index(xp, below, -1)
    safe = xp.maximum(i, 0)
    before = xp.take_along_axis(acf, safe[:, None], axis=1)[:, 0]
    after = xp.take_along_axis(acf, safe[:, None] + 1, axis=1)[:, 0]
    crossing = safe + (threshold - before) / (after - before)
    return xp.where(i >= 0, crossing, float(n))


def _first_minimum(xp: ModuleType, acf, n: int):
    middle = acf[:, 1 : n - 1]
    local = (middle < acf[:, : n - 2]) & (middle < acf[:, 2:n])
    # the first local minimum at lags 1 .. n - 2, else n
    return xp.where(local.any(axis=1), xp.argmax(local.astype(xp.int8), axis=1) + 1, n)


def _local_mean_residuals(z, train: int):
    n = z.shape[1]
    estimate = z[:, 0 : n - train]
    for j in range(1, train):
        estimate = estimate + z[:, j : n - train + j]
    return z[:, train:] - estimate / train


def catch22_device_xp(xp: ModuleType, values) -> dict:
    """The :data:`DEVICE_FEATURES` of each row of ``values`` (usable, non-constant series)."""
    host = np.ascontiguousarray(batching.to_host(xp, values), dtype=np.float64)
    zscored = np.empty_like(host)
    _zscore_rows(host, zscored)
    z = xp.asarray(zscored)
    n = z.shape[1]
    acf = _autocorrelations(xp, z)
    diff = z[:, 1:] - z[:, :-1]
    with np.errstate(all="ignore"):
        out = {
            "CO_FirstCrossing_acf_1e_pointOfCrossing": _first_crossing_1e(xp, acf, n),
            "CO_FirstMin_ac": _first_minimum(xp, acf, n),
            "FC_LocalSimple_mean3_stde": _local_mean_residuals(z, 3).std(axis=1, ddof=1),
            "MD_pNN_pnn40": (xp.abs(diff) * 1000 > 40).sum(axis=1) / (n - 1),
            "CO_trev_1_num": (diff * diff * diff).mean(axis=1),
        }
    return {f"stat_c22_{name.lower()}": value.astype(xp.float64) for name, value in out.items()}


def _host_features(y: np.ndarray) -> dict[str, float]:
    data = np.asarray(y, dtype=np.float64).tolist()
    return {
        f"stat_c22_{name.lower()}": finite_or_nan(getattr(pycatch22, name)(data)) for name in HOST_FEATURES
    }


def catch22_host(ys: list[np.ndarray]) -> list[dict[str, float] | None]:
    """The :data:`HOST_FEATURES` of each series the device computes (``None`` for the others)."""
    return [_host_features(y) if usable_series(y, MIN_LENGTH) else None for y in ys]


def catch22_batch_xp(
    xp: ModuleType, ys: list[np.ndarray], host: Callable[[], list] | None = None
) -> list[dict[str, float]]:
    """The ``catch22`` family for many series, with array module ``xp`` (module docstring).

    ``host`` returns :func:`catch22_host` of ``ys``, computed elsewhere; without it, here.
    """
    device_names = [f"stat_c22_{name.lower()}" for name in DEVICE_FEATURES]
    device = run_stat_batch(
        xp, ys, device_names, catch22_device_xp, min_length=MIN_LENGTH, bytes_per_row=8 * 48
    )
    host_rows = host() if host is not None else catch22_host(ys)
    results = []
    for y, values, host_row in zip(ys, device, host_rows, strict=True):
        row = dict.fromkeys(catch22_outputs(), math.nan)
        if math.isfinite(values[device_names[0]]):  # usable: the host features too
            row.update({name: finite_or_nan(value) for name, value in values.items()})
            row.update(host_row if host_row is not None else _host_features(y))
        results.append(row)
    return results


@with_host_stage(catch22_host)
def catch22_batch(ys: list[np.ndarray], host: Callable[[], list] | None = None) -> list[dict[str, float]]:
    """GPU counterpart of the ``catch22`` family (CuPy)."""
    return catch22_batch_xp(cupy(), ys, host)
