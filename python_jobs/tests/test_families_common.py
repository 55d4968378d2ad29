"""Every registered family on the edge cases, and the GPU package on a machine without one."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from python_jobs import config, gpu
from python_jobs.features import registry
from python_jobs.tests.family_data import bingo5, requires_gpu

EDGE_CASES = {
    "empty": np.array([]),
    "one": np.array([7.0]),
    "five": np.array([3.0, 1.0, 4.0, 1.0, 5.0]),
    "constant": np.full(200, 12.0),
    "with-nan": np.r_[bingo5()["N3"][:150], np.nan, bingo5()["N3"][150:]],
    "read-only": np.frombuffer(bingo5()["N4"].tobytes()),
}


@pytest.mark.parametrize("family", registry.families(), ids=lambda fam: fam.name)
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_edge_cases_never_raise(family, case):
    y = EDGE_CASES[case]
    result = family.compute(y)
    assert list(result) == family.output_names()
    if family.kind == "stat":
        assert all(isinstance(v, float) for v in result.values())
        undefined = ("empty", "with-nan") if family.name == "tsfresh_subset" else ("empty", "one", "with-nan")
        if case in undefined:
            assert all(math.isnan(v) for v in result.values())
    else:
        assert all(isinstance(v, np.ndarray) and v.shape == y.shape for v in result.values())


def test_stat_families_are_defined_on_real_data():
    y = bingo5()["N6"]
    for family in registry.families("stat"):
        values = family.compute(y)
        assert sum(math.isfinite(v) for v in values.values()) >= len(values) - 1, family.name


FRESH_PROCESS = """
import sys
import numpy as np
from python_jobs.features import registry
import python_jobs.gpu as gpu
y = np.random.default_rng(0).integers(1, 44, 300).astype(float)
for fam in registry.families():
    fam.compute(y)
    fam.gpu_fn()
gpu.gpu_available()
print("cupy imported:", "cupy" in sys.modules)
"""


def test_a_fresh_process_loads_every_kernel_from_the_numba_cache_and_never_imports_cupy():
    env = {**os.environ, "NUMBA_CACHE_DIR": str(config.numba_cache_dir()), "NUMBA_DEBUG_CACHE": "1"}
    runs = [
        subprocess.run(
            [sys.executable, "-c", FRESH_PROCESS], env=env, check=True, capture_output=True, text=True
        )
        for _ in range(2)
    ]
    second = runs[1].stdout
    # The first run may compile (a cold cache); the second must load everything it runs.
    assert "data saved" not in second
    loaded = second.count("data loaded")
    for kernel in ("_rolling_quantiles", "_self_join", "_rescaled_ranges", "_higuchi_fd", "_numba_sampen"):
        assert kernel in second, f"{kernel} was not loaded from the cache"
    assert loaded >= 5
    if not gpu.gpu_available():
        assert "cupy imported: False" in second


def test_every_gpu_path_resolves():
    for family in registry.families():
        if family.gpu is not None:
            assert callable(family.gpu_fn()), family.name


@pytest.mark.skipif(gpu.gpu_available(), reason="a GPU is present here")
def test_asking_for_the_gpu_without_one_is_one_clear_error():
    family = registry.families(names=["spectral"])[0]
    with pytest.raises(gpu.GpuUnavailableError, match="DEVICE=cpu"):
        family.gpu_fn()([bingo5()["N1"]])


@pytest.mark.parametrize("family", [f for f in registry.families() if f.gpu], ids=lambda fam: fam.name)
def test_gpu_array_code_through_numpy_equals_cpu_on_real_and_edge_cases(family):
    # Each GPU path is `<name>_batch(ys)` = `<name>_batch_xp(cupy, ys)`; run the latter with NumPy.
    module, _, attr = family.gpu.partition(":")
    batch_xp = getattr(importlib.import_module(module), f"{attr}_xp")
    batch = [*bingo5().values(), *EDGE_CASES.values()]
    for got, y in zip(batch_xp(np, batch, **family.resolved()), batch, strict=True):
        want = family.compute(y)
        assert list(got) == list(want)
        for name, value in want.items():
            np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-9, equal_nan=True, err_msg=name)


@requires_gpu
@pytest.mark.parametrize("family", [f for f in registry.families() if f.gpu], ids=lambda fam: fam.name)
def test_gpu_batches_equal_cpu_on_real_and_edge_cases(family):
    batch = [*bingo5().values(), *EDGE_CASES.values()]
    for got, y in zip(family.gpu_fn()(batch, **family.resolved()), batch, strict=True):
        want = family.compute(y)
        assert list(got) == list(want)
        for name, value in want.items():
            np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-6, equal_nan=True, err_msg=name)
