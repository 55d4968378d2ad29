"""Slow, obviously correct references for the families whose backend is the project's own code.

Plain Python loops straight from the definitions: no vectorisation, no incremental updates.
"""

from __future__ import annotations

import cmath
import math

import numpy as np


def rolling_quantile(y: np.ndarray, w: int, q: float) -> np.ndarray:
    """Linear-interpolated quantile of each full window, NaN before it or with a NaN in it."""
    out = np.full(len(y), np.nan)
    for i in range(w - 1, len(y)):
        window = [float(v) for v in y[i - w + 1 : i + 1]]
        if any(math.isnan(v) for v in window):
            continue
        ordered = sorted(window)
        pos = q * (w - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, w - 1)
        out[i] = ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
    return out


def spectral(y: np.ndarray) -> dict[str, float]:
    """The spectral statistics with an explicit DFT sum per frequency."""
    n = len(y)
    mean = sum(y) / n
    x = [float(v) - mean for v in y]
    freqs, power = [], []
    for k in range(1, n // 2 + 1):
        coefficient = sum(x[t] * cmath.exp(-2j * math.pi * k * t / n) for t in range(n))
        freqs.append(k / n)
        power.append(abs(coefficient) ** 2)
    total = sum(power)
    centroid = sum(f * p for f, p in zip(freqs, power, strict=True)) / total
    spread = math.sqrt(sum((f - centroid) ** 2 * p for f, p in zip(freqs, power, strict=True)) / total)
    cumulative = 0.0
    rolloff = freqs[-1]
    for f, p in zip(freqs, power, strict=True):
        cumulative += p
        if cumulative >= 0.85 * total:
            rolloff = f
            break
    geometric = math.exp(sum(math.log(p) for p in power) / len(power)) if min(power) > 0 else 0.0
    peak = max(range(len(power)), key=lambda k: (power[k], -k))
    return {
        "stat_spec_centroid": centroid,
        "stat_spec_spread": spread,
        "stat_spec_rolloff": rolloff,
        "stat_spec_flatness": geometric / (total / len(power)),
        "stat_spec_dominant_freq": freqs[peak],
        "stat_spec_dominant_power_ratio": power[peak] / total,
    }


def znorm_distance(a: np.ndarray, b: np.ndarray) -> float:
    """z-normalised Euclidean distance, with stumpy's rules for constant subsequences."""
    m = len(a)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf  # a subsequence holding NaN matches nothing
    sa, sb = float(np.std(a)), float(np.std(b))
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 0.0
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.sqrt(m)
    za = (a - a.mean()) / sa
    zb = (b - b.mean()) / sb
    return float(math.sqrt(sum((za[t] - zb[t]) ** 2 for t in range(m))))


def left_matrix_profile(y: np.ndarray, m: int) -> np.ndarray:
    """Distance from each subsequence to its nearest one starting more than ceil(m/4) earlier."""
    excl = math.ceil(m / 4)
    count = len(y) - m + 1
    out = np.full(count, np.inf)
    for j in range(count):
        for k in range(0, j - excl):
            out[j] = min(out[j], znorm_distance(y[j : j + m], y[k : k + m]))
    return out


def matrix_profile(y: np.ndarray, m: int) -> np.ndarray:
    """Distance from each subsequence to its nearest non-trivial one (either side)."""
    excl = math.ceil(m / 4)
    count = len(y) - m + 1
    out = np.full(count, np.inf)
    for j in range(count):
        for k in range(count):
            if abs(j - k) > excl:
                out[j] = min(out[j], znorm_distance(y[j : j + m], y[k : k + m]))
    return out


def acf(y: np.ndarray, nlags: int) -> list[float]:
    """Biased sample autocorrelation by direct sums."""
    n = len(y)
    mean = sum(y) / n
    x = [float(v) - mean for v in y]
    c0 = sum(v * v for v in x) / n
    return [sum(x[t] * x[t + k] for t in range(n - k)) / n / c0 for k in range(nlags + 1)]


def pacf_yule_walker_adjusted(y: np.ndarray, nlags: int) -> list[float]:
    """PACF: last coefficient of each order-k Yule-Walker system, autocovariance divisor n - k."""
    n = len(y)
    mean = sum(y) / n
    x = [float(v) - mean for v in y]
    r = [sum(x[t] * x[t + k] for t in range(n - k)) / (n - k) for k in range(nlags + 1)]
    out = [1.0]
    for order in range(1, nlags + 1):
        matrix = np.array([[r[abs(i - j)] for j in range(order)] for i in range(order)])
        coefficients = np.linalg.solve(matrix, np.array(r[1 : order + 1]))
        out.append(float(coefficients[-1]))
    return out
