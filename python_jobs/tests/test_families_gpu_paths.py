"""The batched GPU code of catch22, entropy, stl and tsfresh_subset against their CPU families.

Each GPU path is ``<family>_batch_xp(xp, ys)``; with ``xp = numpy`` it runs here on the real
series (long loto6 and short bingo5 ones, in one batch so that both length groups are
exercised) and on series that test the edge rules, and must equal the CPU family within 1e-9
(relative). The ``gpu``-marked tests run the same batch through CuPy and skip without a
device.
"""

from __future__ import annotations

import importlib
import math
import os

import numpy as np
import pytest

from python_jobs.features import registry
from python_jobs.gpu import catch22 as gpu_catch22
from python_jobs.gpu import stl as gpu_stl
from python_jobs.tests.family_data import bingo5, loto6, requires_gpu

FAMILIES = ("catch22", "entropy", "stl", "tsfresh_subset")


def _batch() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        loto6()["N2"],
        loto6()["B1"][:1001],
        *list(bingo5().values())[:4],
        rng.normal(size=257) * 3.0,  # not integer-valued
        np.r_[np.arange(40.0), np.arange(40.0)[::-1]],  # a trend up and down
        rng.integers(1, 4, 120).astype(float),  # heavy ties
        np.full(60, 5.0),
        np.array([1.0, 2.0, 4.0]),
        np.array([]),
        np.r_[bingo5()["N2"][:50], np.nan, bingo5()["N2"][50:]],
    ]


BATCH = _batch()


def _family(name: str) -> registry.Family:
    return registry.families(names=[name])[0]


def _batch_xp(name: str):
    return getattr(importlib.import_module(f"python_jobs.gpu.{name}"), f"{name}_batch_xp")


def _assert_close(got: dict, want: dict, rtol: float) -> None:
    assert list(got) == list(want)
    for column, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[column]), f"{column}: {got[column]} but the CPU family gives NaN"
        else:
            assert got[column] == pytest.approx(value, rel=rtol, abs=1e-12), column


@pytest.mark.parametrize("name", FAMILIES)
def test_gpu_array_code_through_numpy_equals_the_cpu_family(name):
    family = _family(name)
    for got, y in zip(_batch_xp(name)(np, BATCH), BATCH, strict=True):
        _assert_close(got, family.compute(y), rtol=1e-9)


def test_catch22_splits_its_features_between_device_and_host():
    assert set(gpu_catch22.DEVICE_FEATURES) | set(gpu_catch22.HOST_FEATURES) == set(
        name for name in gpu_catch22.CATCH22_NAMES
    )
    assert not set(gpu_catch22.DEVICE_FEATURES) & set(gpu_catch22.HOST_FEATURES)


def test_batched_stl_decomposition_equals_the_numba_port():
    from python_jobs.features._stl_numba import decompose

    values = np.stack([bingo5()[key] for key in ("N1", "N3", "N7")])
    values = (values - values.mean(axis=1, keepdims=True)) / values.std(axis=1, ddof=1, keepdims=True)
    trend, season = gpu_stl.decompose_xp(np, values, 7)
    for row, y in enumerate(values):
        want_trend, want_season = decompose(y, 7)
        np.testing.assert_allclose(trend[row], want_trend, rtol=0, atol=1e-12)
        np.testing.assert_allclose(season[row], want_season, rtol=0, atol=1e-12)


@requires_gpu
@pytest.mark.parametrize("name", FAMILIES)
def test_gpu_equals_the_cpu_family(name):
    family = _family(name)
    for got, y in zip(family.gpu_fn()(BATCH, **family.resolved()), BATCH, strict=True):
        _assert_close(got, family.compute(y), rtol=1e-6)


def test_the_gpu_bench_checks_every_column_through_numpy():
    # `make bench DEVICE=gpu` runs bench.families_gpu with CuPy; its comparison, run here with
    # the same array code on NumPy over a small synthetic panel, finds every value equal.
    from bench.families_gpu import compare_devices

    result = compare_devices(4, 300, through_numpy=True, cpu_workers=1)
    assert [row["family"] for row in result["families"]] == [fam.name for fam in registry.families()]
    assert result["parity"], [row for row in result["families"] if row["values_over_tolerance"]]


def test_the_gpu_bench_times_the_job_against_every_core(monkeypatch):
    # `--job` runs the job's entry point on each device: the CPU run on a local cluster of
    # every core of the machine, the GPU run with the GPU asked for by name and the default
    # scheduler (the host stages of GPU families in a pool of the other cores).
    import bench.families_gpu as bench
    from python_jobs.job import run_job

    assert bench.run_job is run_job
    calls: list[dict] = []
    monkeypatch.setattr(bench, "run_job", lambda **options: calls.append(options))
    for name in ("_reset_schema", "load_panel"):
        monkeypatch.setattr(bench, name, lambda *args, **kwargs: None)
    monkeypatch.setattr(bench.dbt, "run", lambda *args, **kwargs: 0)
    monkeypatch.setattr(bench.db, "database_url", lambda: "postgresql://bench@127.0.0.1/bench")
    monkeypatch.setenv("DBT_SCHEMA", "public")
    result = bench.time_job_end_to_end(3, 50)
    cores = os.cpu_count()
    assert [(call["device"], call["scheduler"], call.get("n_workers")) for call in calls] == [
        ("cpu", "local", cores),
        ("gpu", "auto", None),
    ]
    assert all(call["full_refresh"] for call in calls) and result["cpu_workers"] == cores
