"""Which device the feature job computes on: ``DEVICE=cpu|gpu|auto``.

``auto`` means the GPU when a CuPy kernel runs on a CUDA device, else the CPU. Asking for the
GPU where there is none is one clear error, raised before any work starts. On a machine
without CuPy nothing here imports cupy or cudf: the check looks for the package first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from python_jobs import gpu, settings

Device = Literal["cpu", "gpu"]
REQUESTS = ("auto", "cpu", "gpu")


class DeviceError(RuntimeError):
    """The requested device cannot be used; the message says what to do instead."""


def gpu_available() -> bool:
    """Whether a CuPy kernel runs on a CUDA device here (see :func:`python_jobs.gpu.gpu_available`).

    One definition for the job and the kernels: a device is usable once a smoke kernel has
    run on it and returned the right values, not when the driver merely lists it.
    """
    return gpu.gpu_available()


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
