"""ACF/PACF family against statsmodels and direct sums, edge cases, and the batched GPU code."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from statsmodels.tsa.stattools import acf, pacf

from python_jobs.features.autocorrelation import autocorrelation, autocorrelation_outputs
from python_jobs.gpu.autocorrelation import autocorrelation_batch, autocorrelation_batch_xp
from python_jobs.tests import naive_families as naive
from python_jobs.tests.family_data import assert_stats_equal, bingo5, real_series, requires_gpu


def statsmodels_reference(y: np.ndarray) -> dict[str, float]:
    values = list(acf(y, nlags=10)[1:]) + list(pacf(y, nlags=5)[1:])
    return dict(zip(autocorrelation_outputs(), map(float, values), strict=True))


def test_statsmodels_defaults_are_the_documented_ones():
    assert inspect.signature(pacf).parameters["method"].default == "ywadjusted"
    assert inspect.signature(acf).parameters["adjusted"].default is False


@pytest.mark.parametrize("key", list(real_series()))
def test_equals_statsmodels(key):
    y = real_series()[key]
    got = autocorrelation(y)
    assert list(got) == autocorrelation_outputs()
    assert_stats_equal(got, statsmodels_reference(y), rtol=1e-12, atol=1e-15)


def test_equals_direct_sums():
    y = bingo5()["N4"]
    got = autocorrelation(y)
    want_acf = naive.acf(y, 10)
    want_pacf = naive.pacf_yule_walker_adjusted(y, 5)
    for k in range(1, 11):
        assert got[f"stat_acf_lag{k}"] == pytest.approx(want_acf[k], abs=1e-12)
    for k in range(1, 6):
        assert got[f"stat_pacf_lag{k}"] == pytest.approx(want_pacf[k], abs=1e-12)


@pytest.mark.parametrize(
    "y",
    [np.array([]), np.arange(10.0), np.full(100, 3.0), np.r_[np.arange(40.0), np.nan]],
    ids=["empty", "shorter-than-11", "constant", "nan"],
)
def test_undefined_inputs_give_nan(y):
    assert all(math.isnan(v) for v in autocorrelation(y).values())


def test_shortest_valid_series_equals_statsmodels():
    y = bingo5()["N7"][:11]
    assert_stats_equal(autocorrelation(y), statsmodels_reference(y), rtol=1e-9, atol=1e-12)


def test_batched_array_code_equals_statsmodels_through_numpy():
    # FFT autocovariance and vectorised Levinson-Durbin (the GPU path) against statsmodels.
    batch = [*real_series().values(), bingo5()["N7"][:11], np.full(30, 1.0)]
    for got, y in zip(autocorrelation_batch_xp(np, batch), batch, strict=True):
        assert_stats_equal(got, autocorrelation(y), rtol=1e-9, atol=1e-12)


@requires_gpu
def test_gpu_equals_cpu():
    batch = list(real_series().values())
    for got, y in zip(autocorrelation_batch(batch), batch, strict=True):
        assert_stats_equal(got, autocorrelation(y), rtol=0, atol=1e-6)
