"""tsfresh subset against tsfresh.extract_features on the real series, and its column names."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from tsfresh import extract_features
from tsfresh.feature_extraction.settings import ComprehensiveFCParameters

from python_jobs.features.tsfresh_subset import SETTINGS, column_name, tsfresh_outputs, tsfresh_subset
from python_jobs.tests.family_data import real_series


@pytest.fixture(scope="module")
def extracted() -> pd.DataFrame:
    frame = pd.concat(
        [pd.DataFrame({"id": key, "t": np.arange(len(y)), "y": y}) for key, y in real_series().items()]
    )
    return extract_features(
        frame,
        default_fc_parameters=SETTINGS,
        column_id="id",
        column_sort="t",
        disable_progressbar=True,
        n_jobs=0,
    )


def test_settings_are_a_comprehensive_subset():
    comprehensive = ComprehensiveFCParameters()
    for calculator, params in SETTINGS.items():
        assert calculator in comprehensive
        assert params is None or all(p in comprehensive[calculator] for p in params), calculator
    assert 30 <= len(tsfresh_outputs()) <= 40


def test_column_names(extracted):
    assert [column_name(c) for c in extracted.columns] == tsfresh_outputs()
    for col in tsfresh_outputs():
        assert re.fullmatch(r"stat_tsfresh_[a-z0-9_]+", col) and len(col) <= 63
    assert column_name('y__linear_trend__attr_"slope"') == "stat_tsfresh_linear_trend__attr_slope"
    assert column_name("y__quantile__q_0.1") == "stat_tsfresh_quantile__q_0_1"
    assert column_name("y__range_count__max_1__min_-1") == "stat_tsfresh_range_count__max_1__min_m1"
    assert column_name("y__autocorrelation__lag_1") == "stat_tsfresh_autocorrelation__lag_1"


@pytest.mark.parametrize("key", list(real_series()))
def test_equals_extract_features(extracted, key):
    got = tsfresh_subset(real_series()[key])
    assert list(got) == tsfresh_outputs()
    row = extracted.loc[key]
    for name, value in row.items():
        want, have = float(value), got[column_name(name)]
        if math.isnan(want):
            assert math.isnan(have), name
        else:
            assert have == pytest.approx(want, rel=1e-12, abs=1e-15), name
    assert sum(math.isfinite(v) for v in got.values()) == len(got)


@pytest.mark.parametrize(
    "y", [np.array([5.0]), np.arange(3.0), np.full(40, 2.0)], ids=["single", "three", "constant"]
)
def test_short_and_constant_series_do_not_raise(y):
    got = tsfresh_subset(y)
    assert list(got) == tsfresh_outputs()
    assert got["stat_tsfresh_count_above_mean"] == pytest.approx(float(np.sum(y > y.mean())))


def test_nan_input_gives_nan():
    assert all(math.isnan(v) for v in tsfresh_subset(np.r_[np.arange(20.0), np.nan]).values())


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_calculators_equal_tsfresh(seed):
    from tsfresh.feature_extraction import feature_calculators

    from python_jobs.features import tsfresh_subset as module

    rng = np.random.default_rng(seed)
    cases = [
        real_series()["loto6:N1"],
        rng.integers(0, 10**6, 500).astype(float) * (-1) ** seed,
        rng.normal(size=300) * 100,  # not integers: tsfresh's own benford path
        np.array([0.0, 0.0, 10.0, 100.0, 7.0]),
        np.full(20, 3.0),
    ]
    for y in cases:
        for name, fast in module._FAST.items():
            want = getattr(feature_calculators, name)(y)
            got = fast(y)
            assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-12), name
        for name, fast in module._FAST_COMBINERS.items():
            params = SETTINGS[name]
            with np.errstate(all="ignore"):
                want_pairs = list(getattr(feature_calculators, name)(y, param=params))
            for (key, got), (want_key, want) in zip(fast(y, params), want_pairs, strict=True):
                assert key == want_key
                assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-12), key
