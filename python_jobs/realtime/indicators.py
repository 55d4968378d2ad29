"""Market indicators of the online engine, by TA-Lib's conventions as ``talipp`` computes them.

``sma_5``, ``sma_20``: simple moving averages, first at the ``p``-th value (the mean of the
first ``p``), then updated as ``previous - (value leaving - value entering) / p``.
``ema_12``, ``ema_26``: seeded with the simple mean of the first ``p`` values, then
``a x + (1 - a) previous`` with ``a = 2 / (p + 1)``.
``rsi_14``: Wilder's RSI. At the 15th value the average gain and loss start as the means of the
first 13 changes (``talipp.indicators.RSI``), and every value from then on is smoothed in,
``avg = (avg (p - 1) + change) / p``; ``100 - 100 / (1 + gain / loss)``, 100 when the average
loss is 0.
``macd = ema_12 - ema_26`` (from the 26th value), ``macd_signal``: the EMA(9) of ``macd``
seeded like the others, ``macd_hist = macd - macd_signal``.

Every update is O(1) and reads the series' ring buffer for the values a seed or the SMA needs;
the arithmetic is done in talipp's order, so the values are talipp's to the last bit or nearly.

References
----------
J. W. Wilder, New Concepts in Technical Trading Systems, 1978; G. Appel, The Moving Average
Convergence-Divergence Trading Method, 1979; talipp (https://github.com/nardew/talipp).
"""

from __future__ import annotations

import numpy as np

from python_jobs.features._numba import njit

SMA_PERIODS = (5, 20)
EMA_PERIODS = (12, 26)
RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9

INDICATOR_NAMES = (
    *(f"sma_{p}" for p in SMA_PERIODS),
    *(f"ema_{p}" for p in EMA_PERIODS),
    f"rsi_{RSI_PERIOD}",
    "macd",
    "macd_signal",
    "macd_hist",
)
# Per-series state slots: the two SMAs, the two EMAs, RSI average gain and loss, the signal
# EMA, how many macd values exist, and their running sum (the signal's seed).
STATE_SIZE = 9
_SMA5, _SMA20, _EMA12, _EMA26, _GAIN, _LOSS, _SIGNAL, _MACD_N, _MACD_SUM = range(STATE_SIZE)


@njit(cache=True, nogil=True)
def _back(ring: np.ndarray, head: int, k: int) -> float:  # pragma: no cover
    """The value ``k`` rows before the newest one (0: the newest)."""
    size = ring.shape[0]
    return ring[(head - k) % size]


@njit(cache=True, nogil=True)
def _oldest_first_sum(ring: np.ndarray, head: int, p: int) -> float:  # pragma: no cover
    # Python's sum(values[-p:]) adds from the oldest value on, starting at 0.
    total = 0.0
    for k in range(p - 1, -1, -1):
        total += _back(ring, head, k)
    return total


@njit(cache=True, nogil=True)
def _sma(ring, head, n, y, state, slot, p) -> float:  # pragma: no cover
    if n > p:
        state[slot] = state[slot] - (_back(ring, head, p) - y) / p
    elif n == p:
        state[slot] = _oldest_first_sum(ring, head, p) / p
    else:
        return np.nan
    return state[slot]


@njit(cache=True, nogil=True)
def _ema(ring, head, n, y, state, slot, p) -> float:  # pragma: no cover
    if n > p:
        mult = 2.0 / (p + 1.0)
        state[slot] = mult * y + (1.0 - mult) * state[slot]
    elif n == p:
        state[slot] = _oldest_first_sum(ring, head, p) / p
    else:
        return np.nan
    return state[slot]


@njit(cache=True, nogil=True)
def _rsi(ring, head, n, y, state) -> float:  # pragma: no cover
    p = RSI_PERIOD
    if n < p + 1:
        return np.nan
    if n == p + 1:
        # talipp's seed: the changes between the first p values (p - 1 of them).
        gains = 0.0
        losses = 0.0
        for i in range(1, p):
            change = _back(ring, head, p - i) - _back(ring, head, p - i + 1)
            if change > 0:
                gains += change
            elif change < 0:
                losses += -change
        state[_GAIN] = gains / (p - 1)
        state[_LOSS] = losses / (p - 1)
    change = y - _back(ring, head, 1)
    gain = change if change > 0 else 0.0
    loss = -change if change < 0 else 0.0
    state[_GAIN] = (state[_GAIN] * (p - 1) + gain) / p
    state[_LOSS] = (state[_LOSS] * (p - 1) + loss) / p
    if state[_LOSS] == 0:
        return 100.0
    return 100.0 - 100.0 / (1.0 + state[_GAIN] / state[_LOSS])


@njit(cache=True, nogil=True)
def indicators_step(ring, head, n, y, state, out, base) -> None:  # pragma: no cover
    """Update one series' indicators with its newest value ``y`` (already in ``ring``).

    ``n`` counts the series' values including ``y``; the eight indicators are written to
    ``out[base:base + 8]`` in :data:`INDICATOR_NAMES` order (NaN while warming up).
    """
    out[base] = _sma(ring, head, n, y, state, _SMA5, SMA_PERIODS[0])
    out[base + 1] = _sma(ring, head, n, y, state, _SMA20, SMA_PERIODS[1])
    fast = _ema(ring, head, n, y, state, _EMA12, EMA_PERIODS[0])
    slow = _ema(ring, head, n, y, state, _EMA26, EMA_PERIODS[1])
    out[base + 2] = fast
    out[base + 3] = slow
    out[base + 4] = _rsi(ring, head, n, y, state)
    out[base + 5] = np.nan
    out[base + 6] = np.nan
    out[base + 7] = np.nan
    if n < MACD_SLOW:
        return
    macd = fast - slow
    out[base + 5] = macd
    state[_MACD_N] += 1
    count = state[_MACD_N]
    if count < MACD_SIGNAL:
        state[_MACD_SUM] += macd
        return
    if count == MACD_SIGNAL:
        state[_MACD_SUM] += macd
        state[_SIGNAL] = state[_MACD_SUM] / MACD_SIGNAL
    else:
        mult = 2.0 / (MACD_SIGNAL + 1.0)
        state[_SIGNAL] = mult * macd + (1.0 - mult) * state[_SIGNAL]
    out[base + 6] = state[_SIGNAL]
    out[base + 7] = macd - state[_SIGNAL]
