"""Array-module-agnostic helpers shared by the GPU families.

``xp`` is CuPy on the device, or NumPy when the tests run the same array code on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import numpy as np

# Bytes of temporaries per chunk of series when the array module is NumPy (the CPU tests);
# on a GPU the budget is a quarter of the free device memory, at most MAX_DEVICE_CHUNK_BYTES.
CHUNK_BYTES = 256 * 1024 * 1024
MAX_DEVICE_CHUNK_BYTES = 4 * 1024 * 1024 * 1024


def chunk_budget(xp: ModuleType) -> int:
    """Bytes of temporaries one chunk may use with array module ``xp``."""
    cuda = getattr(xp, "cuda", None)
    if cuda is None:
        return CHUNK_BYTES
    free, _ = cuda.runtime.memGetInfo()
    return max(CHUNK_BYTES, min(free // 4, MAX_DEVICE_CHUNK_BYTES))


def to_host(xp: ModuleType, a) -> np.ndarray:
    """A NumPy copy of ``a`` (a no-op for NumPy arrays)."""
    if hasattr(xp, "asnumpy"):
        return xp.asnumpy(a)
    return np.asarray(a)


def groups_by_length(ys: list[np.ndarray]) -> Iterator[tuple[int, list[int]]]:
    """``(length, positions)`` for each distinct series length, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for pos, y in enumerate(ys):
        groups.setdefault(len(y), []).append(pos)
    yield from groups.items()


def chunks(positions: list[int], bytes_per_series: int, budget: int = CHUNK_BYTES) -> Iterator[list[int]]:
    """Split ``positions`` so that each chunk needs at most ``budget`` bytes (one series at least)."""
    size = max(1, budget // max(1, bytes_per_series))
    for start in range(0, len(positions), size):
        yield positions[start : start + size]


def stack(xp: ModuleType, ys: list[np.ndarray], positions: list[int]):
    """The series at ``positions`` (all of one length) as one float64 (series, rows) array."""
    host = np.stack([np.asarray(ys[pos], dtype=np.float64) for pos in positions])
    return xp.asarray(host)


def window_index(xp: ModuleType, n: int, w: int):
    """Index array ``(n - w + 1, w)``: row ``j`` holds ``j .. j + w - 1``."""
    return xp.arange(n - w + 1)[:, None] + xp.arange(w)[None, :]
