"""The GPU path before any device: when the GPU counts as usable, what a GPU failure does.

No GPU is needed: CuPy is replaced by small stand-ins (a module whose import fails, a kernel
that raises or returns wrong values, a working kernel computed by NumPy), and a family's GPU
batch by one that raises.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from python_jobs import device, gpu, settings
from python_jobs.features.registry import Family
from python_jobs.job import SeriesBatch, compute_family
from python_jobs.job.errors import GpuFailure
from python_jobs.job.reading import SeriesData


def _stat(y: np.ndarray) -> dict[str, float]:
    return {"gr_mean": float(np.mean(y)), "gr_last": float(y[-1])}


def gr_broken_batch(ys: list[np.ndarray]) -> list[dict[str, float]]:
    raise RuntimeError("cudaErrorIllegalAddress: an illegal memory access was encountered")


BROKEN = Family("gr_stat", "stat", _stat, outputs=("gr_mean", "gr_last"), gpu=f"{__name__}:gr_broken_batch")


class _FakeArray:
    def __init__(self, values: np.ndarray):
        self.values = np.asarray(values, dtype=np.float64)


class _FakePool:
    def __init__(self) -> None:
        self.limits: list[int] = []

    def set_limit(self, size: int) -> None:
        self.limits.append(size)


def _fake_cupy(kernel: Callable[[np.ndarray], np.ndarray]) -> types.ModuleType:
    """A stand-in for the ``cupy`` module: ``ElementwiseKernel`` runs ``kernel`` with NumPy."""
    module = types.ModuleType("cupy")
    module.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    module.launches = []
    module.pool = _FakePool()

    def elementwise_kernel(in_params: str, out_params: str, body: str, name: str):
        def launch(x: _FakeArray) -> _FakeArray:
            module.launches.append(name)
            return _FakeArray(kernel(x.values))

        return launch

    module.ElementwiseKernel = elementwise_kernel
    module.asarray = _FakeArray
    module.asnumpy = lambda array: array.values
    module.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(synchronize=lambda: None))
    module.get_default_memory_pool = lambda: module.pool
    return module


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[types.ModuleType | None], None]]:
    """``machine(cupy)``: a machine whose driver lists one device and whose ``cupy`` is given
    (``None``: installed, but its import fails). The cached answers are cleared around."""
    real_find_spec = importlib.util.find_spec

    def install(module: types.ModuleType | None) -> None:
        def find_spec(name: str, *args, **kwargs):
            if name == "cupy":
                return importlib.machinery.ModuleSpec("cupy", None)
            return real_find_spec(name, *args, **kwargs)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
        monkeypatch.setattr(gpu, "cuda_device_count", lambda: 1)
        # A None entry makes `import cupy` raise ImportError, as a broken install does.
        monkeypatch.setitem(sys.modules, "cupy", module)

    gpu.unavailable_reason.cache_clear()
    gpu._memory_limit_applied.cache_clear()
    yield install
    gpu.unavailable_reason.cache_clear()
    gpu._memory_limit_applied.cache_clear()
    settings.patch(None)


def test_a_listed_device_whose_cupy_import_fails_is_not_available(machine):
    machine(None)
    assert gpu.gpu_available() is False
    assert "CuPy does not import" in gpu.unavailable_reason()
    assert device.resolve_device("auto") == "cpu"
    with pytest.raises(device.DeviceError, match="no GPU is usable"):
        device.resolve_device("gpu")


def test_a_smoke_kernel_that_raises_means_no_gpu(machine, capsys):
    def kernel(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("nvrtc: error: failed to load builtins")

    machine(_fake_cupy(kernel))
    assert gpu.gpu_available() is False
    assert "failed to load builtins" in gpu.unavailable_reason()
    with pytest.raises(gpu.GpuUnavailableError, match=r"failed to load builtins.*DEVICE=cpu"):
        gpu.require_gpu()
    assert "gpu.smoke_kernel_failed" in capsys.readouterr().err


def test_a_smoke_kernel_with_a_wrong_result_means_no_gpu(machine):
    machine(_fake_cupy(lambda x: x * x))  # the "+ 1" lost: a device computing garbage
    assert gpu.gpu_available() is False
    assert "returned" in gpu.unavailable_reason()


def test_a_working_kernel_is_checked_once_and_then_the_gpu_is_used(machine):
    cupy = _fake_cupy(lambda x: x * x + 1.0)
    machine(cupy)
    assert gpu.gpu_available() and gpu.gpu_available() and device.gpu_available()
    assert cupy.launches == ["loto_features_smoke"]  # one launch, the answer cached
    assert device.resolve_device("auto") == "gpu"


def test_the_memory_limit_is_applied_when_the_gpu_is_first_used(machine):
    cupy = _fake_cupy(lambda x: x * x + 1.0)
    machine(cupy)
    settings.patch(settings.load(overrides={"gpu": {"memory_limit_gb": 1.5}}))
    device.resolve_device("cpu")
    assert cupy.pool.limits == []  # a CPU run leaves the device alone
    assert gpu.cupy() is cupy and gpu.cupy() is cupy
    assert cupy.pool.limits == [int(1.5 * 2**30)]


def _batch() -> SeriesBatch:
    rng = np.random.default_rng(3)
    ds = np.arange(40).astype("datetime64[D]").astype("datetime64[us]")
    return SeriesBatch([SeriesData("loto6", f"N{k}", ds, rng.integers(1, 44, 40) * 1.0) for k in range(1, 4)])


def test_a_gpu_failure_is_logged_as_an_error_counted_and_computed_on_the_cpu(capsys):
    batch = _batch()
    result = compute_family(BROKEN, batch, "gpu", "warn")
    assert result.device == "cpu" and result.gpu_failures == 1 and not result.errors
    want = np.array([list(_stat(s.y).values()) for s in batch.series])
    np.testing.assert_array_equal(result.values, want)
    line = next(line for line in capsys.readouterr().err.splitlines() if "job.gpu_batch_failed" in line)
    assert "error" in line and "gr_stat" in line and "cudaErrorIllegalAddress" in line


def test_a_gpu_failure_stops_the_work_where_the_gpu_was_asked_for():
    with pytest.raises(GpuFailure, match=r"gr_stat.*cudaErrorIllegalAddress.*the job stops"):
        compute_family(BROKEN, _batch(), "gpu", "warn", gpu_required=True)
