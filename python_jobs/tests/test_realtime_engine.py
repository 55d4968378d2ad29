"""The online engine against independent references on the bundled real data.

- every per-series column against ``naive_hist`` (window-by-window NumPy/pandas), the rolling
  quantiles against pandas, the left matrix profile against ``stumpy.stumpi``, the isolation
  forest against the feature job's own batch function;
- ``update_draw``'s lottery columns against ``naive_hist.lottery_features``;
- the market indicators against ``talipp`` on the EUR/USD bars;
- flat cost per update from 100 to 100,000 points, saved-state round trip, bad points.
"""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import pandas as pd
import pytest

from python_jobs import definitions
from python_jobs.features.anomaly import anomaly
from python_jobs.features.matrix_profile import matrix_profile_left
from python_jobs.realtime.engine import OrderError, RealTimeFeatureEngine, to_epoch
from python_jobs.realtime.state import dump_engine, load_engine
from python_jobs.tests import naive_families, naive_hist
from python_jobs.tests.realtime_reference import assert_columns_close, bundled_draws, eurusd_close

DEFS = definitions.load()


def _feed(engine: RealTimeFeatureEngine, key: str, ds, y) -> pd.DataFrame:
    return pd.DataFrame([engine.update(key, d, v) for d, v in zip(ds, y, strict=True)])


@pytest.fixture(scope="module")
def loto6_n3() -> pd.DataFrame:
    draws = bundled_draws()
    return draws[(draws.loto == "loto6") & (draws.unique_id == "N3")].reset_index(drop=True)


@pytest.fixture(scope="module")
def streamed_n3(loto6_n3) -> pd.DataFrame:
    return _feed(RealTimeFeatureEngine(), "loto6:N3", loto6_n3.ds, loto6_n3.y)


def test_series_columns_equal_the_reference_on_real_data(loto6_n3, streamed_n3):
    y = loto6_n3.y.to_numpy()
    reference = naive_hist.series_features(
        y,
        np.full(len(y), np.nan),
        lags=DEFS.lags,
        windows=DEFS.windows,
        diffs=DEFS.diffs,
        pct_changes=DEFS.pct_changes,
        with_job_statistics=True,
    )
    want = pd.DataFrame({k: v for k, v in reference.items() if "co" not in k.split("_")})
    series = pd.Series(y)
    w = DEFS.stat_window
    q25, q75 = series.rolling(w).quantile(0.25).to_numpy(), series.rolling(w).quantile(0.75).to_numpy()
    iqr = q75 - q25
    spread = DEFS.outlier_iqr_multiplier * iqr
    want[f"hist_y_is_outlier_iqr_w{w}"] = np.where(
        np.isnan(iqr), np.nan, (y < q25 - spread) | (y > q75 + spread)
    )
    # Nothing vacuous: every column has values and both flags say yes somewhere.
    assert want.notna().any().all()
    assert streamed_n3[f"hist_y_is_outlier_iqr_w{w}"].eq(True).any()
    failures = assert_columns_close(streamed_n3, want, rtol=1e-9, atol=1e-12)
    assert not failures, "\n".join(failures)


def test_matrix_profile_and_iforest_equal_the_job_on_real_data(loto6_n3, streamed_n3):
    y = loto6_n3.y.to_numpy()
    m = DEFS.mp_window
    name = f"hist_y_mp_left_m{m}"
    got = streamed_n3[name].astype(float).to_numpy()
    # The job's column (what the mart holds), itself tested against stumpy...
    want = matrix_profile_left(y, m)[name]
    assert np.isfinite(want).sum() > 2000
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)
    # ...and a pair-by-pair reference on the first rows.
    naive = naive_families.left_matrix_profile(y[:150], m)
    np.testing.assert_allclose(got[m - 1 : 150], np.where(np.isinf(naive), np.nan, naive), rtol=1e-9)
    want = anomaly(y)["hist_y_iforest_score"]
    got = streamed_n3["hist_y_iforest_score"].astype(float).to_numpy()
    assert np.isfinite(want).sum() > 1000
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


def test_update_draw_adds_the_lottery_columns(tmp_path):
    draws = bundled_draws()
    engine = RealTimeFeatureEngine(history_features=False)
    rows = []
    for (loto, ds), draw in draws.groupby(["loto", "ds"], sort=True):
        positions = dict(zip(draw.unique_id, draw.y, strict=True))
        for uid, features in engine.update_draw(loto, ds, positions).items():
            rows.append({"loto": loto, "unique_id": uid, "ds": ds, **features})
    got = pd.DataFrame(rows).set_index(["loto", "unique_id", "ds"]).sort_index()
    want = naive_hist.lottery_features(draws, freq_windows=DEFS.freq_windows)
    want = want.set_index(["loto", "unique_id", "ds"]).sort_index()
    assert list(got.index) == list(want.index)
    assert len(want) == 7 * 2037 + 8 * 375
    failures = assert_columns_close(got, want, rtol=0)
    assert not failures, "\n".join(failures)
    assert (got["hist_y_streak"] >= 2).any() and got["hist_y_gap"].isna().any()


def test_indicators_equal_talipp_on_eurusd():
    from talipp.indicators import EMA, MACD, RSI, SMA

    close = eurusd_close()
    values = close.to_list()
    engine = RealTimeFeatureEngine(history_features=False)
    got = pd.DataFrame([engine.update("EURUSD", ts, v) for ts, v in close.items()])
    macd = MACD(12, 26, 9, input_values=values)
    want = pd.DataFrame(
        {
            "sma_5": SMA(5, input_values=values),
            "sma_20": SMA(20, input_values=values),
            "ema_12": EMA(12, input_values=values),
            "ema_26": EMA(26, input_values=values),
            "rsi_14": RSI(14, input_values=values),
            "macd": [None if v is None else v.macd for v in macd],
            "macd_signal": [None if v is None else v.signal for v in macd],
            "macd_hist": [None if v is None else v.histogram for v in macd],
        }
    )
    assert want.notna().sum().min() > 4900
    failures = assert_columns_close(got, want.astype(float), rtol=1e-9, atol=1e-12)
    assert not failures, "\n".join(failures)


def _seconds_per_update(engine: RealTimeFeatureEngine, start: int, count: int) -> float:
    rng = np.random.default_rng(start)
    values = rng.integers(1, 44, count).astype(float)
    stamps = np.arange(start, start + count, dtype=float)
    began = time.perf_counter()
    for stamp, value in zip(stamps, values, strict=True):
        engine.update_many(["s"], [stamp], [value])
    return (time.perf_counter() - began) / count


def test_cost_per_update_is_flat_in_history():
    engine = RealTimeFeatureEngine(history_features=False)
    _seconds_per_update(engine, 0, 100)  # compiled, warmed
    early = min(_seconds_per_update(engine, 100 + 2000 * i, 2000) for i in range(3))
    engine.update_many(["s"] * 100_000, np.arange(10_000, 110_000.0), np.ones(100_000))
    late = min(_seconds_per_update(engine, 200_000 + 2000 * i, 2000) for i in range(3))
    assert engine._count[engine.slot("s")] > 100_000
    # Generous: a re-sort or a growing buffer would be 100x slower at 100,000 points.
    assert late < 3 * early, (early, late)


def test_saved_engine_continues_exactly(loto6_n3, streamed_n3):
    y, ds = loto6_n3.y.to_numpy(), loto6_n3.ds.to_list()
    first = RealTimeFeatureEngine()
    cut = 1700
    for i in range(cut):
        first.update("loto6:N3", ds[i], y[i])
    restored = load_engine(dump_engine(first), version=first.layout.version)
    rest = _feed(restored, "loto6:N3", ds[cut:], y[cut:])
    uninterrupted = streamed_n3.iloc[cut:].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, uninterrupted, check_exact=True, check_dtype=False)


def test_bad_points_are_refused_and_change_nothing():
    engine = RealTimeFeatureEngine(history_features=False, on_same_ts="drop")
    before = engine.update("k", "2024-01-02T00:00:00Z", 5.0)
    with pytest.raises(OrderError) as duplicate:
        engine.update("k", dt.date(2024, 1, 2), 6.0)
    assert duplicate.value.reason == "duplicate"
    with pytest.raises(OrderError) as late:
        engine.update("k", to_epoch("2024-01-01"), 6.0)
    assert late.value.reason == "out_of_order"
    with pytest.raises(ValueError):
        engine.update("k", "2024-01-03", math.nan)
    with pytest.raises(ValueError):
        engine.update("k", "not a date", 1.0)
    after = engine.update("k", dt.datetime(2024, 1, 3), 7.0)
    assert after["hist_y_lag1"] == 5.0 and before["hist_y_lag1"] is None


def test_definitions_come_from_the_dbt_vars():
    engine = RealTimeFeatureEngine({"windows": [4, 30], "lags": [2]}, history_features=False)
    names = set(engine.names)
    assert {"hist_y_roll_mean_w4", "hist_y_lag2", "hist_y_roll_q75_w30"} <= names
    assert "hist_y_roll_mean_w3" not in names and "hist_y_lag1" not in names
    for i, y in enumerate([1.0, 2.0, 4.0, 8.0]):
        features = engine.update("k", i, y)
    assert features["hist_y_roll_mean_w4"] == 3.75 and features["hist_y_lag2"] == 2.0


def test_every_timestamp_form_is_the_same_instant():
    forms = [
        "2024-01-02",
        "2024-01-02T09:00:00+09:00",
        "2024-01-02T00:00:00Z",
        dt.date(2024, 1, 2),
        dt.datetime(2024, 1, 2),
        pd.Timestamp("2024-01-02"),
        np.datetime64("2024-01-02"),
        1704153600,
        np.int64(1704153600),
        1704153600.0,
    ]
    assert {to_epoch(form) for form in forms} == {1704153600.0}
    for bad in (True, "yesterday", math.inf, None):
        with pytest.raises((TypeError, ValueError)):
            to_epoch(bad)
