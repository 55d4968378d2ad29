"""Entropy family against antropy on the real series, its edge cases, and numba caching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from python_jobs.features._numba import import_cached
from python_jobs.features.entropy import entropy, entropy_outputs
from python_jobs.tests.family_data import assert_stats_equal, real_series

antropy = import_cached("antropy")


def antropy_reference(y: np.ndarray) -> dict[str, float]:
    mobility, complexity = antropy.hjorth_params(y)
    return {
        "stat_ent_perm": antropy.perm_entropy(y, order=3, normalize=True),
        "stat_ent_spectral": antropy.spectral_entropy(y, sf=1, method="fft", normalize=True),
        "stat_ent_svd": antropy.svd_entropy(y, order=3, normalize=True),
        "stat_ent_app": antropy.app_entropy(y),
        "stat_ent_sample": antropy.sample_entropy(y),
        "stat_hjorth_mobility": mobility,
        "stat_hjorth_complexity": complexity,
        "stat_fd_petrosian": antropy.petrosian_fd(y),
        "stat_fd_katz": antropy.katz_fd(y),
        "stat_fd_higuchi": antropy.higuchi_fd(y),
        "stat_dfa": antropy.detrended_fluctuation(y),
    }


@pytest.mark.parametrize("key", list(real_series()))
def test_equals_antropy(key):
    y = real_series()[key]
    got = entropy(y)
    assert list(got) == entropy_outputs()
    assert_stats_equal(got, {k: float(v) for k, v in antropy_reference(y).items()}, rtol=1e-12)
    assert all(math.isfinite(v) for v in got.values())


@pytest.mark.parametrize(
    "y",
    [np.array([]), np.arange(19.0), np.full(300, 2.0), np.r_[np.arange(100.0), np.inf]],
    ids=["empty", "shorter-than-20", "constant", "infinite"],
)
def test_undefined_inputs_give_nan(y):
    got = entropy(y)
    assert list(got) == entropy_outputs()
    assert all(math.isnan(v) for v in got.values())


def test_a_measure_undefined_for_a_valid_series_is_nan_not_an_error():
    # 20 draws in which no two length-3 templates match within 0.2 std: sample entropy is inf.
    y = np.array([21, 23, 33, 41, 2, 7, 36, 41, 11, 14, 38, 19, 12, 36, 12, 18, 28, 24, 4, 2], dtype=float)
    assert np.isinf(antropy.sample_entropy(y))
    got = entropy(y)
    assert math.isnan(got["stat_ent_sample"])
    assert math.isfinite(got["stat_ent_perm"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_template_match_counts_equal_antropys(seed):
    # Real draws, fractional noise and heavy ties (values 1..3), where matches at the
    # tolerance boundary are most common.
    from python_jobs.features.entropy import app_entropy

    rng = np.random.default_rng(seed)
    for y in (
        real_series()["loto6:N4"][: 400 + 97 * seed],
        rng.normal(size=300),
        rng.integers(1, 4, 257) * 1.0,
    ):
        assert app_entropy(y) == pytest.approx(antropy.app_entropy(y), rel=1e-12, abs=1e-15)


def test_spectral_entropy_equals_antropy_for_odd_and_even_lengths():
    from python_jobs.features.entropy import spectral_entropy

    rng = np.random.default_rng(5)
    for y in (real_series()["loto6:B1"], real_series()["bingo5:N5"][:374], rng.normal(size=101)):
        want = antropy.spectral_entropy(y, sf=1, method="fft", normalize=True)
        assert spectral_entropy(y) == pytest.approx(want, rel=1e-12)
