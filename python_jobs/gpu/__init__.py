"""GPU implementations of the feature families (CuPy), batched over many series per launch.

Nothing here imports CuPy at module import: :func:`gpu_available` looks for the package and
asks the CUDA driver for a device count through ``ctypes``, and the batch functions import
CuPy only after :func:`require_gpu` has passed. A CPU-only machine can therefore import
every module of this package (the tests run the array code through NumPy), and asking for
the GPU there gives one clear :class:`GpuUnavailableError`.

Each family module exposes ``<family>_batch(ys)``: a list of 1-D float arrays in, a list of
the CPU function's results out (same keys, values equal within 1e-6). It is
``<family>_batch_xp(cupy, ys)``; the tests call ``<family>_batch_xp(numpy, ys)``. Series are grouped by
length so that one group is one 2-D array on the device; the lotteries' series of one
lottery all have the same length, so a batch is usually a handful of groups.
"""

from __future__ import annotations

import ctypes
import importlib.util
from functools import lru_cache
from types import ModuleType


class GpuUnavailableError(RuntimeError):
    """The GPU was asked for, but CuPy or a CUDA device is missing."""


def _cuda_device_count() -> int:
    # The driver API answers without CuPy (and without creating a context worth keeping).
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


@lru_cache(maxsize=1)
def gpu_available() -> bool:
    """Whether CuPy is installed and the CUDA driver sees at least one device.

    Never imports CuPy, so it is safe (and cheap) on a CPU-only machine.
    """
    return importlib.util.find_spec("cupy") is not None and _cuda_device_count() > 0


def require_gpu() -> None:
    """Raise :class:`GpuUnavailableError` with the reason when the GPU cannot be used."""
    if importlib.util.find_spec("cupy") is None:
        raise GpuUnavailableError(
            "the GPU feature path was requested, but CuPy is not installed "
            "(install the extra: pip install -e '.[gpu]'), or run with DEVICE=cpu"
        )
    if _cuda_device_count() == 0:
        raise GpuUnavailableError(
            "the GPU feature path was requested, but the CUDA driver reports no device; run with DEVICE=cpu"
        )


def cupy() -> ModuleType:
    """The CuPy module, imported on first use after :func:`require_gpu`."""
    require_gpu()
    import cupy as cp

    return cp
