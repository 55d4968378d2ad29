"""Rolling median and quartiles against pandas, a naive reference, and the batched GPU code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from python_jobs import definitions
from python_jobs.features import registry
from python_jobs.features.rolling import rolling
from python_jobs.gpu.rolling import rolling_batch, rolling_batch_xp
from python_jobs.tests import naive_families as naive
from python_jobs.tests.family_data import assert_columns_equal, bingo5, real_series, requires_gpu

# The feature definitions of dbt_project.yml (python_jobs/definitions.py).
DEFS = definitions.load()

PANDAS = {
    "median": lambda r: r.median(),
    "q25": lambda r: r.quantile(0.25),
    "q75": lambda r: r.quantile(0.75),
}


def pandas_rolling(y: np.ndarray) -> dict[str, np.ndarray]:
    s = pd.Series(y)
    return {
        f"hist_y_roll_{stat}_w{w}": fn(s.rolling(w)).to_numpy()
        for stat, fn in PANDAS.items()
        for w in DEFS.windows
    }


@pytest.mark.parametrize("key", list(real_series()))
def test_equals_pandas_on_real_series(key):
    y = real_series()[key]
    got = rolling(y)
    assert list(got) == registry.family("rolling").output_names()
    assert_columns_equal(got, pandas_rolling(y), atol=1e-9)
    # Not trivially NaN: every column has values from row w - 1 on.
    for w in DEFS.windows:
        assert np.isnan(got[f"hist_y_roll_q75_w{w}"][: w - 1]).all()
        assert np.isfinite(got[f"hist_y_roll_q75_w{w}"][w - 1 :]).all()


def test_equals_naive_reference():
    y = bingo5()["N3"]
    got = rolling(y)
    for w in DEFS.windows:
        for stat, q in (("median", 0.5), ("q25", 0.25), ("q75", 0.75)):
            want = naive.rolling_quantile(y, w, q)
            np.testing.assert_allclose(got[f"hist_y_roll_{stat}_w{w}"], want, atol=1e-12, equal_nan=True)


def test_non_integer_values_and_ties():
    rng = np.random.default_rng(7)
    y = np.round(rng.normal(size=400), 1)  # many ties, negative values, fractions
    assert_columns_equal(rolling(y), pandas_rolling(y), atol=1e-9)


def test_nan_blanks_the_windows_holding_it_as_pandas_does():
    y = bingo5()["N2"].copy()
    y[[10, 200]] = np.nan
    got = rolling(y)
    assert_columns_equal(got, pandas_rolling(y), atol=1e-9)
    assert np.isnan(got["hist_y_roll_median_w3"][10:13]).all()
    assert np.isfinite(got["hist_y_roll_median_w3"][13])


def test_point_in_time():
    y = real_series()["loto6:N4"]
    full = rolling(y)
    for k in (1, 5, 89, 90, 91, 500):
        cut = rolling(y[:k])
        for name, values in cut.items():
            np.testing.assert_array_equal(values, full[name][:k], err_msg=f"{name} cut at {k}")


@pytest.mark.parametrize("y", [np.array([]), np.array([3.0]), np.full(120, 4.0), np.arange(10.0)])
def test_short_and_constant_series(y):
    got = rolling(y)
    assert all(len(v) == len(y) for v in got.values())
    assert_columns_equal(got, pandas_rolling(y), atol=1e-12)


def test_batched_array_code_equals_cpu_through_numpy():
    # The GPU module's array code, run with NumPy: mixed lengths, a NaN, a short series.
    series = list(real_series().values())
    with_nan = series[-1].copy()
    with_nan[50] = np.nan
    batch = [*series, with_nan, np.arange(5.0)]
    for got, y in zip(rolling_batch_xp(np, batch), batch, strict=True):
        assert_columns_equal(got, rolling(y), atol=1e-12)


@requires_gpu
def test_gpu_equals_cpu():
    batch = list(real_series().values())
    for got, y in zip(rolling_batch(batch), batch, strict=True):
        assert_columns_equal(got, rolling(y), atol=1e-6)
