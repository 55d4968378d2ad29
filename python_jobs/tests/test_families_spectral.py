"""Spectral family against an explicit-DFT reference, edge cases, and the batched GPU code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from python_jobs.features.spectral import spectral, spectral_outputs
from python_jobs.gpu.spectral import spectral_batch, spectral_batch_xp
from python_jobs.tests import naive_families as naive
from python_jobs.tests.family_data import assert_stats_equal, bingo5, loto6, real_series, requires_gpu


@pytest.mark.parametrize(
    "y",
    [bingo5()["N1"], bingo5()["N6"], loto6()["B1"][:501]],
    ids=["bingo5:N1", "bingo5:N6", "loto6:B1[:501]"],
)
def test_equals_explicit_dft(y):
    got = spectral(y)
    assert list(got) == spectral_outputs()
    assert_stats_equal(got, naive.spectral(y), rtol=1e-9)


def test_known_sinusoid():
    n = 240
    t = np.arange(n)
    y = 3 * np.sin(2 * np.pi * 0.1 * t) + 0.5 * np.sin(2 * np.pi * 0.25 * t)
    got = spectral(y)
    assert got["stat_spec_dominant_freq"] == pytest.approx(0.1)
    assert got["stat_spec_dominant_power_ratio"] == pytest.approx(9 / 9.25)
    assert got["stat_spec_centroid"] == pytest.approx((0.1 * 9 + 0.25 * 0.25) / 9.25)
    assert got["stat_spec_rolloff"] == pytest.approx(0.1)
    assert got["stat_spec_flatness"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "y",
    [np.array([]), np.arange(3.0), np.full(64, 5.0), np.r_[np.arange(40.0), np.nan]],
    ids=["empty", "shorter-than-4", "constant", "nan"],
)
def test_undefined_inputs_give_nan(y):
    assert all(math.isnan(v) for v in spectral(y).values())


def test_batched_array_code_equals_cpu_through_numpy():
    batch = [*real_series().values(), np.full(30, 1.0), np.arange(3.0)]
    for got, y in zip(spectral_batch_xp(np, batch), batch, strict=True):
        assert_stats_equal(got, spectral(y), rtol=1e-12)


@requires_gpu
def test_gpu_equals_cpu():
    batch = list(real_series().values())
    for got, y in zip(spectral_batch(batch), batch, strict=True):
        assert_stats_equal(got, spectral(y), rtol=0, atol=1e-6)
