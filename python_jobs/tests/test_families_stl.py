"""tsfeatures family against the tsfeatures functions on the real series, and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from python_jobs import definitions
from python_jobs.features import registry
from python_jobs.features import stl as stl_module
from python_jobs.features._numba import import_cached
from python_jobs.features.stl import STL_KEYS, stl, stl_outputs
from python_jobs.tests.family_data import assert_stats_equal, real_series

# The feature definitions of dbt_project.yml (python_jobs/definitions.py).
DEFS = definitions.load()

tsfeatures = import_cached("tsfeatures")
FUNCTIONS = ("stl_features", "stability", "lumpiness", "entropy", "hurst", "crossing_points", "flat_spots")


def tsfeatures_reference(y: np.ndarray, freq: int) -> dict[str, float]:
    values: dict = {}
    for name in FUNCTIONS:
        values.update(getattr(tsfeatures, name)(y, freq))
    return {out: float(values[key]) for out, key in STL_KEYS.items()}


@pytest.mark.parametrize("key", list(real_series()))
def test_equals_tsfeatures(key):
    y = real_series()[key]
    got = stl(y)
    assert list(got) == stl_outputs()
    assert_stats_equal(got, tsfeatures_reference(y, DEFS.season_length), rtol=1e-9, atol=1e-12)
    assert sum(math.isfinite(v) for v in got.values()) >= 10  # hurst may be NaN, as in tsfeatures


def test_season_length_is_the_family_parameter():
    y = real_series()["bingo5:N5"]
    with registry.override("stl", freq=12) as fam:
        assert_stats_equal(stl(y), tsfeatures_reference(y, 12), rtol=1e-9, atol=1e-12)
        assert_stats_equal(fam.compute(y), tsfeatures_reference(y, 12), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("freq", [1, 4, 7])
def test_fast_stability_lumpiness_hurst_equal_tsfeatures(freq):
    # The three re-implemented functions, on series of awkward lengths and with ties.
    rng = np.random.default_rng(freq)
    for y in (real_series()["loto6:N1"][:999], rng.integers(1, 4, 103).astype(float), rng.normal(size=57)):
        stability = tsfeatures.stability(y, freq)["stability"]
        lumpiness = tsfeatures.lumpiness(y, freq)["lumpiness"]
        assert stl_module.stability(y, freq) == pytest.approx(stability, rel=1e-9)
        assert stl_module.lumpiness(y, freq) == pytest.approx(lumpiness, rel=1e-9)
        want = tsfeatures.hurst(y, freq)["hurst"]
        got = stl_module.hurst(y)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(
    "y",
    [np.array([]), np.arange(13.0), np.full(100, 9.0), np.r_[np.arange(60.0), np.nan]],
    ids=["empty", "shorter-than-two-seasons", "constant", "nan"],
)
def test_undefined_inputs_give_nan(y):
    got = stl(y)
    assert list(got) == stl_outputs()
    assert all(math.isnan(v) for v in got.values())
