"""tsfeatures family against ``tsfeatures.tsfeatures()`` and its functions on the real series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from python_jobs import definitions
from python_jobs.features import registry
from python_jobs.features import stl as stl_module
from python_jobs.features._numba import import_cached
from python_jobs.features._stl_numba import decompose
from python_jobs.features.stl import STL_KEYS, stl, stl_outputs
from python_jobs.tests.family_data import assert_stats_equal, real_series

# The feature definitions of dbt_project.yml (python_jobs/definitions.py).
DEFS = definitions.load()

tsfeatures = import_cached("tsfeatures")
FUNCTIONS = ("stl_features", "stability", "lumpiness", "entropy", "hurst", "crossing_points", "flat_spots")


def tsfeatures_reference(y: np.ndarray, freq: int) -> dict[str, float]:
    """The tsfeatures functions on the series scaled as ``tsfeatures()`` scales it."""
    scaled = tsfeatures.utils.scalets(y)
    values: dict = {}
    for name in FUNCTIONS:
        values.update(getattr(tsfeatures, name)(scaled, freq))
    return {out: float(values.get(key, math.nan)) for out, key in STL_KEYS.items()}


@pytest.fixture(scope="module")
def panel_features() -> pd.DataFrame:
    """``tsfeatures.tsfeatures(panel, freq=season_length)`` with every other argument at its default."""
    panel = pd.concat(
        [
            pd.DataFrame({"unique_id": key, "ds": pd.date_range("2000-01-02", periods=len(y)), "y": y})
            for key, y in real_series().items()
        ]
    )
    with np.errstate(all="ignore"):
        return tsfeatures.tsfeatures(panel, freq=DEFS.season_length, threads=1).set_index("unique_id")


@pytest.mark.parametrize("key", list(real_series()))
def test_equals_tsfeatures_panel_call(panel_features, key):
    y = real_series()[key]
    got = stl(y)
    assert list(got) == stl_outputs()
    row = panel_features.loc[key]
    want = {out: float(row[name]) for out, name in STL_KEYS.items()}
    assert_stats_equal(got, want, rtol=1e-9, atol=1e-12)
    assert sum(math.isfinite(v) for v in got.values()) >= 10  # hurst may be NaN, as in tsfeatures


def test_scale_dependent_features_differ_from_the_raw_series():
    # The defect this guards against: the functions called on the raw draws, not the scaled series.
    y = real_series()["loto6:N4"]
    raw = tsfeatures.stl_features(y, DEFS.season_length)
    got = stl(y)
    assert got["stat_linearity"] != pytest.approx(raw["linearity"], rel=1e-3)
    assert got["stat_trend_strength"] == pytest.approx(raw["trend"], rel=1e-9)


@pytest.mark.parametrize("key", ["loto6:N1", "bingo5:N8"])
def test_equals_tsfeatures_functions_on_the_scaled_series(key):
    y = real_series()[key]
    assert_stats_equal(stl(y), tsfeatures_reference(y, DEFS.season_length), rtol=1e-9, atol=1e-12)


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


@pytest.mark.parametrize("period", [2, 7, 12])
def test_numba_stl_equals_statsmodels(period):
    from statsmodels.tsa.seasonal import STL

    for y in (real_series()["loto6:B1"], real_series()["bingo5:N5"][:101]):
        scaled = tsfeatures.utils.scalets(y)
        fit = STL(scaled, period, stl_module.STL_SEASONAL).fit()
        trend, seasonal = decompose(scaled, period, stl_module.STL_SEASONAL)
        np.testing.assert_allclose(trend, fit.trend, rtol=0, atol=1e-12)
        np.testing.assert_allclose(seasonal, fit.seasonal, rtol=0, atol=1e-12)


def test_season_length_one_follows_tsfeatures():
    y = real_series()["bingo5:N8"]
    assert_stats_equal(stl(y, freq=1), tsfeatures_reference(y, 1), rtol=1e-9, atol=1e-12)
