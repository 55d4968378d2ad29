"""GPU implementations of the feature families (CuPy), batched over many series per launch.

Nothing here imports CuPy at module import: :func:`gpu_available` looks for the package and
asks the CUDA driver for a device count through ``ctypes`` first, and only where both are
there imports CuPy and runs a tiny kernel whose result is checked (once per process). A
driver that lists a device is not enough: a missing NVRTC, a CUDA version the wheel does not
support or a device in a bad state all pass the count and fail at the first launch. The
batch functions import CuPy only after :func:`require_gpu` has passed. A CPU-only machine can
therefore import every module of this package (the tests run the array code through NumPy),
and asking for the GPU there gives one clear :class:`GpuUnavailableError`.

Each family module exposes ``<family>_batch(ys)``: a list of 1-D float arrays in, a list of
the CPU function's results out (same keys, values equal within 1e-6). It is
``<family>_batch_xp(cupy, ys)``; the tests call ``<family>_batch_xp(numpy, ys)``. Series are grouped by
length so that one group is one 2-D array on the device; the lotteries' series of one
lottery all have the same length, so a batch is usually a handful of groups.

Where part of a family's GPU batch runs on the host whatever the device (catch22's pycatch22
features, anomaly's forest growing), the batch function declares that part with
:func:`with_host_stage`, so that the job can run it in another process while the device
computes other families (:class:`python_jobs.job.executors.HostPoolExecutor`).
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
from collections.abc import Callable
from functools import lru_cache
from types import ModuleType

import numpy as np

from python_jobs import settings
from python_jobs.log import get_logger

log = get_logger(__name__)

# The smoke kernel: y = x * x + 1 over a few exactly representable values.
SMOKE_VALUES = np.arange(16, dtype=np.float64)
SMOKE_EXPECTED = SMOKE_VALUES * SMOKE_VALUES + 1.0


class GpuUnavailableError(RuntimeError):
    """The GPU was asked for, but CuPy or a CUDA device is missing, or a kernel cannot run."""


def with_host_stage(stage: Callable[..., list]) -> Callable[[Callable], Callable]:
    """Declare ``stage(ys, **params)`` the host-only part of the decorated GPU batch function.

    ``stage`` needs no device and returns one item per series. The batch function takes
    ``host=``, a callable returning what ``stage`` gives for the same ``ys`` and params
    (computed elsewhere, perhaps in another process); without it, it runs ``stage`` itself.
    An exception ``host()`` raises is the batch function's, as if ``stage`` ran inline.
    """

    def declare(batch_fn: Callable) -> Callable:
        batch_fn.host_stage = stage  # type: ignore[attr-defined]
        return batch_fn

    return declare


def host_stage(batch_fn: Callable | None) -> Callable[..., list] | None:
    """The host stage :func:`with_host_stage` declared on ``batch_fn``, if any."""
    return getattr(batch_fn, "host_stage", None)


def cuda_device_count() -> int:
    """CUDA devices the driver lists (0 without a driver); never imports CuPy."""
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


def smoke_kernel(cp: ModuleType) -> None:
    """Compile and launch a tiny elementwise kernel with ``cp`` and check what it returns.

    Raises
    ------
    RuntimeError
        The kernel ran but returned other values than ``x * x + 1``.
    Exception
        Whatever CuPy raises when it cannot compile or launch the kernel.
    """
    kernel = cp.ElementwiseKernel("float64 x", "float64 y", "y = x * x + 1.0", "loto_features_smoke")
    got = np.asarray(cp.asnumpy(kernel(cp.asarray(SMOKE_VALUES))))
    cp.cuda.Device().synchronize()
    if not np.array_equal(got, SMOKE_EXPECTED):
        raise RuntimeError(f"the smoke kernel returned {got[:4]}..., expected {SMOKE_EXPECTED[:4]}...")


@lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """Why the GPU path cannot run here, or ``None`` when the smoke kernel ran and was right.

    Answered once per process: the first call may compile the smoke kernel (CuPy caches it
    under ``CUPY_CACHE_DIR``), later calls return the cached answer.
    """
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (install the extra: pip install -e '.[gpu]')"
    if cuda_device_count() == 0:
        return "the CUDA driver reports no device"
    try:
        cp = importlib.import_module("cupy")
    except Exception as exc:  # a broken install (a CUDA library missing) is no GPU either
        return f"CuPy does not import ({type(exc).__name__}: {exc})"
    try:
        smoke_kernel(cp)
    except Exception as exc:  # any failure to run a kernel means no usable device
        error = f"{type(exc).__name__}: {exc}"
        log.error("gpu.smoke_kernel_failed", error=error)
        return f"a test kernel did not run on the device ({error})"
    return None


def gpu_available() -> bool:
    """Whether a CuPy kernel runs on a CUDA device here (checked once per process).

    Never imports CuPy where the package or a device is missing, so it is safe (and cheap)
    on a CPU-only machine.
    """
    return unavailable_reason() is None


def require_gpu() -> None:
    """Raise :class:`GpuUnavailableError` with the reason when the GPU cannot be used."""
    reason = unavailable_reason()
    if reason is not None:
        raise GpuUnavailableError(f"the GPU feature path was requested, but {reason}; run with DEVICE=cpu")


@lru_cache(maxsize=1)
def _memory_limit_applied() -> float | None:
    return settings.apply_gpu_memory_limit()


def cupy() -> ModuleType:
    """The CuPy module, imported on first use after :func:`require_gpu`.

    The first call in a process (the job's, or a Dask worker's) also caps CuPy's memory pool
    at ``gpu.memory_limit_gb``: only once the GPU is the device in use, so that a CPU run
    never imports CuPy or touches a device.
    """
    require_gpu()
    _memory_limit_applied()
    return importlib.import_module("cupy")
