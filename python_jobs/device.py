"""Which device the feature job computes on: ``DEVICE=cpu|gpu|auto``.

``auto`` means the GPU when CuPy and a CUDA device are present, else the CPU. Asking for the
GPU where there is none is one clear error, raised before any work starts. On a machine
without CuPy nothing here imports cupy or cudf: the check looks for the package first.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Literal

from python_jobs import settings
from python_jobs.log import get_logger

log = get_logger(__name__)

Device = Literal["cpu", "gpu"]
REQUESTS = ("auto", "cpu", "gpu")


class DeviceError(RuntimeError):
    """The requested device cannot be used; the message says what to do instead."""


def _probe_cuda() -> bool:
    # Only reached when the cupy package is installed, so a CPU-only machine never imports it.
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        cupy = importlib.import_module("cupy")
        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception as exc:  # a driver or runtime problem means no usable device
        log.debug("device.cuda_probe_failed", error=str(exc))
        return False


def gpu_available() -> bool:
    """Whether CuPy and at least one CUDA device are usable here.

    Defers to ``python_jobs.gpu.gpu_available`` (the GPU kernels' own check) where that
    module exists, so the job and the kernels agree on what "available" means.
    """
    if importlib.util.find_spec("python_jobs.gpu") is not None:
        gpu = importlib.import_module("python_jobs.gpu")
        check = getattr(gpu, "gpu_available", None)
        if callable(check):
            return bool(check())
    return _probe_cuda()


def resolve_device(
    requested: str | None = None,
    *,
    available: Callable[[], bool] | None = None,
    where: str = "here",
) -> Device:
    """Turn ``auto``/``cpu``/``gpu`` (default: ``$DEVICE``, else ``auto``) into ``cpu`` or ``gpu``.

    Parameters
    ----------
    requested
        ``auto``, ``cpu`` or ``gpu``; ``None`` reads ``$DEVICE``.
    available
        Whether the GPU is usable where the work runs; default :func:`gpu_available` on this
        machine (a Dask cluster passes a check run on its workers).
    where
        Where that is, for the error message.

    Raises
    ------
    DeviceError
        For an unknown name, or ``gpu`` where there is no CuPy with a CUDA device.
    """
    choice = (requested or settings.get().gpu.device).strip().lower()
    if choice not in REQUESTS:
        raise DeviceError(f"unknown device {choice!r}: use one of {', '.join(REQUESTS)} (DEVICE or --device)")
    if choice == "cpu":
        return "cpu"
    usable = (available or gpu_available)()
    if choice == "gpu" and not usable:
        raise DeviceError(
            f"device 'gpu' was requested but no GPU is usable {where} (CuPy with a CUDA device is needed). "
            "Run with --device cpu (or DEVICE=cpu), or --device auto to use the GPU only where present; "
            "on a GPU machine install the extras with `pip install -e .[gpu]`."
        )
    return "gpu" if usable else "cpu"
