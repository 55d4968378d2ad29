"""features_hist on series of decimals: every SQL column against the pandas/NumPy reference.

The bundled EUR/USD bars (``seeds/raw/eurusd_h1.csv``) stand for a user's long-format file:
prices near 1.07 whose windows vary in the fourth decimal, where moments taken from prefix
sums in double precision lose most of their digits. The mart takes them from exact numeric
window sums instead, so every rolling column equals pandas to 1e-9 relative. The singular test
``hist_y_sums_exact`` passes on such series and still fails on a series of whole numbers too
large for the double precision sums.
"""

from __future__ import annotations

import pandas as pd
import pytest
from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.tests import naive_hist
from python_jobs.tests.test_features_hist import (
    ABSOLUTE_TOLERANCE,
    RELATIVE_TOLERANCE,
    _assert_close,
    _build,
    _draws,
    _mart,
    _run_staging,
)

pytestmark = pytest.mark.dbt

BARS = 400


def _decimal_draws() -> pd.DataFrame:
    """Two series of prices (one day per bar) and one far from zero: the same closes + 5000."""
    bars = pd.read_csv(config.RAW_DATA_DIR / "eurusd_h1.csv", index_col=0).head(BARS)
    days = pd.date_range("2017-04-19", periods=BARS, freq="D")
    rows = []
    for unique_id, values in (
        ("close", bars["Close"].astype(str)),
        ("open", bars["Open"].astype(str)),
        ("close_level", (bars["Close"] + 5000).round(5).astype(str)),
    ):
        rows += [
            ("fx_user", unique_id, ds.date(), value, None) for ds, value in zip(days, values, strict=True)
        ]
    return pd.DataFrame(rows, columns=["loto", "unique_id", "ds", "y", "co"])


def _load(url: str, schema: str, draws: pd.DataFrame) -> None:
    """Write ``draws`` to the raw table of ``schema`` (created where missing), y as its decimal text."""
    raw = db.qualified(config.RAW_DRAWS_TABLE, schema)
    with db.connect(url) as conn:
        conn.execute(
            sql.SQL(
                "create table if not exists {} (loto text not null, unique_id text not null, "
                "ds date not null, y numeric not null, num integer, co bigint, source_file text, "
                "loaded_at timestamptz not null default now(), primary key (loto, unique_id, ds))"
            ).format(raw)
        )
        with conn.cursor().copy(
            sql.SQL("copy {} (loto, unique_id, ds, y, co) from stdin").format(raw)
        ) as copy:
            for row in draws.itertuples(index=False):
                copy.write_row(tuple(row))
        conn.commit()


def _sums_exact_test(url: str) -> int:
    return dbt.run(["test", "--quiet", "--select", "hist_y_sums_exact"], url=url, check=False)


# The moments of a window of decimals are exact in the mart: a symmetric window's skewness is
# 0.0 there, where pandas' floats leave up to 2e-11. Scale-free, so an absolute tolerance.
MOMENT_ATOL = 1e-10
# Columns whose exact value does not change when a constant is added to y.
SCALE_FREE = ("hist_y_zscore_", "hist_y_roll_skew_", "hist_y_roll_kurt_", "hist_y_roll_autocorr1_")
SHIFT_INVARIANT = (*SCALE_FREE, "hist_y_roll_std_", "hist_y_dev_mean_", "hist_y_trend_slope_")


def test_decimal_series_match_reference_and_pass_the_exact_sums_test(pg_url, fresh_schema):
    schema = fresh_schema("hist_decimal")
    _load(pg_url, schema, _decimal_draws())
    _run_staging(pg_url)
    _build(pg_url)
    mart = _mart(pg_url, schema)
    draws = _draws(pg_url, schema)
    assert draws["y"].map(lambda y: y != int(y)).all()
    # pandas on y + 5000 keeps only 9 digits of a window's spread: the reference for the
    # prices themselves, and exact shift invariance for the series far from zero.
    prices = draws[draws["unique_id"] != "close_level"]
    want = naive_hist.features_hist(prices)
    got = mart.loc[want.index, want.columns]
    scale_free = [column for column in want.columns if column.startswith(SCALE_FREE)]
    scaled = [column for column in want.columns if column not in scale_free]
    _assert_close(got[scaled], want[scaled], rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE)
    _assert_close(got[scale_free], want[scale_free], rtol=RELATIVE_TOLERANCE, atol=MOMENT_ATOL)
    invariant = [column for column in mart.columns if column.startswith(SHIFT_INVARIANT)]
    close, level = mart.loc[("fx_user", "close")], mart.loc[("fx_user", "close_level")]
    for column in invariant:
        pd.testing.assert_series_equal(level[column], close[column], check_exact=True, obj=column)
    # Moments that prefix sums in double precision get wrong on prices: they are all there.
    for column in ("hist_y_roll_kurt_w7", "hist_y_roll_skew_w3", "hist_y_trend_slope_w30"):
        assert mart[column].notna().sum() > BARS
    # A user's series has no draw of numbers: no lottery-level column.
    assert mart[["hist_y_streak", "hist_y_gap", "hist_draw_sum"]].isna().all().all()
    assert _sums_exact_test(pg_url) == 0


def test_the_exact_sums_test_fails_on_whole_numbers_too_large_for_double_sums(pg_url, fresh_schema):
    schema = fresh_schema("hist_decimal_big")
    # Values near 10^5: their fourth powers sum past 2^53. As decimals the mart sums them in
    # numeric (the test passes); as whole numbers in double precision (it fails).
    days = pd.date_range("2020-01-01", periods=120, freq="D")
    values = [100_000 + 7 * i % 13 for i in range(len(days))]
    as_decimals = [
        ("big_user", "decimals", ds.date(), f"{v}.25", None) for ds, v in zip(days, values, strict=True)
    ]
    as_integers = [
        ("big_user", "integers", ds.date(), str(v), None) for ds, v in zip(days, values, strict=True)
    ]
    columns = ["loto", "unique_id", "ds", "y", "co"]
    _load(pg_url, schema, pd.DataFrame(as_decimals, columns=columns))
    _run_staging(pg_url)
    assert _sums_exact_test(pg_url) == 0
    _load(pg_url, schema, pd.DataFrame(as_integers, columns=columns))
    # `dbt run`: a build would stop at the failing test already.
    dbt.run(["run", "--quiet", "--select", "stg_lottery__draws"], url=pg_url)
    assert _sums_exact_test(pg_url) != 0
