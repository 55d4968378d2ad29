"""Matrix profile of the series: ``stat_mp_m{m}_*`` (per series) and ``hist_y_mp_left_m{m}`` (per row).

Both come from one self-join with stumpy's semantics, written here as a numba kernel so that
the left profile's *distances* are available (``stumpy.stump`` returns left indices only) and
so that many short series do not pay stumpy's per-call thread start-up:

- subsequence ``j`` is ``y[j : j + m]``; distances are z-normalised Euclidean,
  ``sqrt(|2 m (1 - rho)|)`` from the Pearson correlation ``rho`` (values below stumpy's
  ``1e-14`` squared-distance threshold are 0);
- exclusion zone ``ceil(m / 4)``: pairs with ``|j - k| <= ceil(m / 4)`` are trivial matches;
- a constant subsequence is at distance 0 from another constant one and ``sqrt(m)`` from a
  non-constant one (stumpy's convention); a subsequence holding a non-finite value matches
  nothing (distance inf);
- the correlation along each diagonal is updated with Welford's centred sums exactly as in
  ``stumpy.stump``, so the two agree to rounding.
"""

from __future__ import annotations

import math

import numpy as np

from python_jobs.features import _batch_memo
from python_jobs.features._common import as_series, nan_dict, usable
from python_jobs.features._numba import njit
from python_jobs.features.registry import definition, param, register

MP_STATS = ("min", "max", "mean", "std", "motif_idx", "discord_idx")
# stumpy.config.STUMPY_EXCL_ZONE_DENOM and STUMPY_P_NORM_THRESHOLD.
EXCL_ZONE_DENOM = 4
P_NORM_THRESHOLD = 1e-14
# Profile values this close (relative to max(1, largest value)) count as a tie for the motif and
# discord index, so rounding differences between implementations never move the index.
TIE_TOLERANCE = 1e-9


def exclusion_zone(m: int) -> int:
    return math.ceil(m / EXCL_ZONE_DENOM)


@njit(cache=True, nogil=True)
def _window_mean_std(values: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    count = values.shape[0] - w + 1
    means = np.empty(count)
    stds = np.empty(count)
    for j in range(count):
        total = 0.0
        for t in range(w):
            total += values[j + t]
        mean = total / w
        squares = 0.0
        for t in range(w):
            squares += (values[j + t] - mean) ** 2
        means[j] = mean
        stds[j] = math.sqrt(squares / w)
    return means, stds


@njit(cache=True, nogil=True)
def _self_join(y: np.ndarray, m: int, excl_zone: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Matrix profile and left matrix profile (distances) of ``y``; inf where there is no match."""
    n = y.shape[0]
    count = n - m + 1
    values = y.copy()
    is_finite = np.ones(count, dtype=np.bool_)
    is_constant = np.zeros(count, dtype=np.bool_)
    for t in range(n):
        if not np.isfinite(values[t]):
            values[t] = 0.0
            for j in range(max(0, t - m + 1), min(t + 1, count)):
                is_finite[j] = False
    for j in range(count):
        if is_finite[j]:
            lo = values[j]
            hi = values[j]
            for t in range(1, m):
                lo = min(lo, values[j + t])
                hi = max(hi, values[j + t])
            is_constant[j] = lo == hi
    means, stds = _window_mean_std(values, m)
    means_m1, _ = _window_mean_std(values, m - 1)
    inv_std = np.empty(count)
    for j in range(count):
        inv_std[j] = 1.0 if is_constant[j] else 1.0 / stds[j]
    # stumpy's covariance update terms (cov_a .. cov_d of stumpy.stump._stump).
    cov_a = values[m - 1 :] - means_m1[:-1]
    cov_c = np.empty(means_m1.shape[0])
    cov_c[1:] = values[: means_m1.shape[0] - 1]
    cov_c[0] = values[-1]
    cov_c -= means_m1
    constant = (m - 1) / (m * m)
    # Every pair (i, j = i + g) has i < j: it is a left candidate of j and a right one of i.
    rho_left = np.full(count, -np.inf)
    rho_right = np.full(count, -np.inf)
    # Subsequences neither constant nor holding NaN take the plain Pearson branch.
    plain = is_finite & ~is_constant
    if plain.all():
        _plain_diagonals(values, means, inv_std, cov_a, cov_c, m, excl_zone + 1, rho_left, rho_right)
        return _distances(rho_left, rho_right, m)
    all_plain = False
    for g in range(excl_zone + 1, count):
        cov = 0.0
        for t in range(m):
            cov += (values[g + t] - means[g]) * (values[t] - means[0])
        cov /= m
        for i in range(count - g):
            j = i + g
            if i > 0:
                cov = cov + constant * (cov_a[j] * cov_a[i] - cov_c[j] * cov_c[i])
            if all_plain or (plain[i] and plain[j]):
                pearson = min(1.0, cov * inv_std[j] * inv_std[i])
            elif not (is_finite[i] and is_finite[j]):
                continue
            elif is_constant[i] and is_constant[j]:
                pearson = 1.0
            else:
                pearson = 0.5
            if pearson > rho_right[i]:
                rho_right[i] = pearson
            if pearson > rho_left[j]:
                rho_left[j] = pearson
    return _distances(rho_left, rho_right, m)


@njit(cache=True, nogil=True)
def _distances(
    rho_left: np.ndarray, rho_right: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Profile and left profile from the best correlations (stumpy's ``sqrt(|2 m (1 - rho)|)``)."""
    count = rho_left.shape[0]
    rho = np.maximum(rho_left, rho_right)
    profile = np.empty(count)
    left = np.empty(count)
    for j in range(count):
        squared = abs(2 * m * (1.0 - rho[j]))
        profile[j] = 0.0 if squared < P_NORM_THRESHOLD else math.sqrt(squared)
        squared = abs(2 * m * (1.0 - rho_left[j]))
        left[j] = 0.0 if squared < P_NORM_THRESHOLD else math.sqrt(squared)
    return profile, left


@njit(cache=True, nogil=True)
def _diagonal_start(values, means, m, g):  # pragma: no cover
    # Centred covariance of subsequences 0 and g, as stumpy starts each diagonal.
    cov = 0.0
    for t in range(m):
        cov += (values[g + t] - means[g]) * (values[t] - means[0])
    return cov / m


@njit(cache=True, nogil=True)
def _plain_diagonals(values, means, inv_std, cov_a, cov_c, m, first, rho_left, rho_right):  # pragma: no cover
    """The diagonal sweep when every subsequence is finite and non-constant, four diagonals at a time.

    Each diagonal's covariance is a running sum (one long chain of dependent additions);
    sweeping diagonals ``g .. g + 3`` side by side runs four independent chains, each updated
    by the same operations in the same order as alone, so every correlation is bit-identical to
    the one-diagonal loop. The best correlation of a subsequence is a maximum, whatever the
    order its candidates arrive in.
    """
    count = means.shape[0]
    constant = (m - 1) / (m * m)
    g = first
    while g + 3 < count:
        c0 = _diagonal_start(values, means, m, g)
        c1 = _diagonal_start(values, means, m, g + 1)
        c2 = _diagonal_start(values, means, m, g + 2)
        c3 = _diagonal_start(values, means, m, g + 3)
        shared = count - g - 3  # rows i every one of the four diagonals has
        # rho_left[j .. j + 2] live in registers: row i + 1 reads what row i wrote there.
        left0, left1, left2 = rho_left[g], rho_left[g + 1], rho_left[g + 2]
        for i in range(shared):
            j = i + g
            if i > 0:
                a = cov_a[i]
                c = cov_c[i]
                c0 = c0 + constant * (cov_a[j] * a - cov_c[j] * c)
                c1 = c1 + constant * (cov_a[j + 1] * a - cov_c[j + 1] * c)
                c2 = c2 + constant * (cov_a[j + 2] * a - cov_c[j + 2] * c)
                c3 = c3 + constant * (cov_a[j + 3] * a - cov_c[j + 3] * c)
            s = inv_std[i]
            p0 = min(1.0, c0 * inv_std[j] * s)
            p1 = min(1.0, c1 * inv_std[j + 1] * s)
            p2 = min(1.0, c2 * inv_std[j + 2] * s)
            p3 = min(1.0, c3 * inv_std[j + 3] * s)
            best = rho_right[i]
            best = p0 if p0 > best else best
            best = p1 if p1 > best else best
            best = p2 if p2 > best else best
            best = p3 if p3 > best else best
            rho_right[i] = best
            left3 = rho_left[j + 3]
            left3 = p3 if p3 > left3 else left3
            left2 = p2 if p2 > left2 else left2
            left1 = p1 if p1 > left1 else left1
            rho_left[j] = p0 if p0 > left0 else left0
            left0, left1, left2 = left1, left2, left3
        rho_left[g + shared] = left0
        rho_left[g + shared + 1] = left1
        rho_left[g + shared + 2] = left2
        # The three longer diagonals' last rows, one diagonal at a time.
        for lane, cov in ((0, c0), (1, c1), (2, c2)):
            for i in range(shared, count - g - lane):
                j = i + g + lane
                cov = cov + constant * (cov_a[j] * cov_a[i] - cov_c[j] * cov_c[i])
                _offer(min(1.0, cov * inv_std[j] * inv_std[i]), i, j, rho_left, rho_right)
        g += 4
    for rest in range(g, count):
        cov = _diagonal_start(values, means, m, rest)
        for i in range(count - rest):
            j = i + rest
            if i > 0:
                cov = cov + constant * (cov_a[j] * cov_a[i] - cov_c[j] * cov_c[i])
            _offer(min(1.0, cov * inv_std[j] * inv_std[i]), i, j, rho_left, rho_right)


@njit(cache=True, nogil=True)
def _offer(pearson, i, j, rho_left, rho_right):  # pragma: no cover
    if pearson > rho_right[i]:
        rho_right[i] = pearson
    if pearson > rho_left[j]:
        rho_left[j] = pearson


def self_join(y, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(profile, left_profile)`` of ``y``, one value per subsequence start; inf for no match.

    ``profile`` equals ``stumpy.stump(y, m)[:, 0]``; ``left_profile[j]`` is the distance of
    subsequence ``j`` to its nearest subsequence ``k < j - ceil(m / 4)`` (stumpy's left
    matrix profile, as ``stumpy.stumpi(..., egress=False).left_P_``).
    """
    arr = as_series(y)
    window = param("matrix_profile", "m", m)
    if len(arr) < window or window < 3:
        empty = np.full(max(len(arr) - window + 1, 0), np.inf)
        return empty, empty.copy()
    # Within a job's batch, the stat and the hist family share the join of each whole series.
    memo = _batch_memo.current()
    tag = ("self_join", window)
    result = memo.get(tag, arr) if memo is not None else None
    if result is None:
        result = _self_join(arr, window, exclusion_zone(window))
        if memo is not None:
            memo.put(tag, arr, result)
    return result[0].copy(), result[1].copy()


def profile_stats(profile: np.ndarray, names: list[str]) -> dict[str, float]:
    """Summary of a matrix profile over its finite entries (see :func:`matrix_profile`)."""
    finite = np.isfinite(profile)
    if not finite.any():
        return nan_dict(names)
    values = profile[finite]
    positions = np.flatnonzero(finite)
    low, high = values.min(), values.max()
    tolerance = TIE_TOLERANCE * max(1.0, high)
    stats = (
        low,
        high,
        values.mean(),
        values.std(),
        positions[np.argmax(values <= low + tolerance)],
        positions[np.argmax(values >= high - tolerance)],
    )
    return {name: float(value) for name, value in zip(names, stats, strict=True)}


def matrix_profile(y, m: int | None = None) -> dict[str, float]:
    """Summary statistics of the matrix profile of ``y`` with window ``m``.

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.
    m : int, optional
        Subsequence length; default the family's ``m`` (dbt var ``mp_window``, 8).

    Returns
    -------
    dict of str to float
        ``stat_mp_m{m}_min``, ``_max``, ``_mean``, ``_std`` (population, ddof 0) of the
        profile's finite entries; ``_motif_idx`` and ``_discord_idx``: the 0-based start row of
        the subsequence with the smallest / largest finite profile value, the first one on
        ties (values within ``1e-9 * max(1, max value)`` of the extreme count as tied, so
        that rounding differences between implementations do not move the index).
        Infinite entries (no non-trivial match, in a series barely longer than ``m``) are
        left out; all NaN when none is finite, when ``len(y) < m`` or when ``y`` holds a
        non-finite value (as every ``stat`` family does).

    Notes
    -----
    Reference: ``stumpy.stump(y, m)[:, 0]`` (S. Law, "STUMPY: A Powerful and Scalable Python
    Library for Time Series Data Mining", JOSS 4(39) 1504, 2019; C.-C. M. Yeh et al., Matrix
    Profile I, ICDM 2016).
    """
    arr = as_series(y)
    window = param("matrix_profile", "m", m)
    names = [f"stat_mp_m{window}_{name}" for name in MP_STATS]
    if not usable(arr, window):
        return nan_dict(names)
    profile, _ = self_join(arr, window)
    return profile_stats(profile, names)


def matrix_profile_left(y, m: int | None = None) -> dict[str, np.ndarray]:
    """The left matrix profile of ``y`` per row (point in time).

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.
    m : int, optional
        Subsequence length; default the family's ``m`` (dbt var ``mp_window``).

    Returns
    -------
    dict of str to numpy.ndarray
        ``hist_y_mp_left_m{m}``: at row ``i``, the z-normalised distance from
        ``y[i - m + 1 : i + 1]`` to its nearest earlier subsequence outside the exclusion zone
        (start ``k <= i - m + 1 - ceil(m / 4) - 1``). NaN for ``i < m - 1`` and where no such
        subsequence exists or the subsequence holds NaN. Row ``i`` reads ``y[: i + 1]`` only.

    Notes
    -----
    Reference: the left matrix profile of ``stumpy.stumpi(y, m, egress=False)`` (``left_P_``),
    equivalently the distance from each subsequence to ``stumpy.stump(y, m)[:, 2]`` (left
    indices). C.-C. M. Yeh et al., Matrix Profile I, ICDM 2016 (left/right profiles, Sec. 3).
    """
    arr = as_series(y)
    window = param("matrix_profile_left", "m", m)
    out = np.full(len(arr), np.nan)
    _, left = self_join(arr, window)
    if len(left):
        out[window - 1 :] = np.where(np.isfinite(left), left, np.nan)
    return {f"hist_y_mp_left_m{window}": out}


@register(
    "matrix_profile",
    kind="stat",
    outputs=[f"stat_mp_m{{m}}_{name}" for name in MP_STATS],
    params={"m": definition("mp_window")},
    cost="medium",
    gpu="python_jobs.gpu.matrix_profile:matrix_profile_batch",
    reference="stumpy.stump(y, m)[:, 0]",
)
def matrix_profile_family(y: np.ndarray, *, m: int) -> dict[str, float]:
    return matrix_profile(y, m)


@register(
    "matrix_profile_left",
    kind="hist",
    outputs=["hist_y_mp_left_m{m}"],
    params={"m": definition("mp_window")},
    cost="medium",
    gpu="python_jobs.gpu.matrix_profile:matrix_profile_left_batch",
    reference="stumpy.stumpi(y, m, egress=False).left_P_",
)
def matrix_profile_left_family(y: np.ndarray, *, m: int) -> dict[str, np.ndarray]:
    return matrix_profile_left(y, m)
