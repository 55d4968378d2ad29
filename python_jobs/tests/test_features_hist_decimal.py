"""features_hist on series of decimals: every SQL column against the pandas/NumPy reference.

The bundled EUR/USD bars (``seeds/raw/eurusd_h1.csv``) stand for a user's long-format file:
prices near 1.07 whose windows vary in the fourth decimal, where moments taken from prefix
sums in double precision lose most of their digits. The mart takes them from exact numeric
window sums instead, so every rolling column equals pandas to 1e-9 relative. Whole numbers
too large for exact double precision prefix sums (n * max|y|^4 past 2^53: demand in MW, prices
in cents) take the same exact sums, and a series that grows past that bound in an incremental
run equals a full refresh bit for bit.
"""

from __future__ import annotations

import pandas as pd
import pytest
from psycopg import sql

from python_jobs import config, db
from python_jobs.tests import naive_hist
from python_jobs.tests.test_features_hist import (
    ABSOLUTE_TOLERANCE,
    RELATIVE_TOLERANCE,
    _assert_close,
    _assert_identical,
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


# The moments of a window of decimals are exact in the mart: a symmetric window's skewness is
# 0.0 there, where pandas' floats leave up to 2e-11. Scale-free, so an absolute tolerance.
MOMENT_ATOL = 1e-10
# Columns whose exact value does not change when a constant is added to y.
SCALE_FREE = ("hist_y_zscore_", "hist_y_roll_skew_", "hist_y_roll_kurt_", "hist_y_roll_autocorr1_")
SHIFT_INVARIANT = (*SCALE_FREE, "hist_y_roll_std_", "hist_y_dev_mean_", "hist_y_trend_slope_")


def test_decimal_series_match_reference(pg_url, fresh_schema):
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


def _whole_draws(unique_id: str, values: list[int]) -> pd.DataFrame:
    days = pd.date_range("2020-01-01", periods=len(values), freq="D")
    rows = [("big_user", unique_id, ds.date(), str(v), None) for ds, v in zip(days, values, strict=True)]
    return pd.DataFrame(rows, columns=["loto", "unique_id", "ds", "y", "co"])


def _past_double_sums(values: list[int]) -> bool:
    """Whether n * max|y|^4 passes 2^53: prefix sums of y^4 in double precision could round."""
    return len(values) * max(abs(v) for v in values) ** 4 >= 2**53


def _assert_shift_invariant(level: pd.DataFrame, small: pd.DataFrame) -> None:
    """The columns whose value does not change when a constant is added to y: bit for bit."""
    for column in (column for column in level.columns if column.startswith(SHIFT_INVARIANT)):
        pd.testing.assert_series_equal(level[column], small[column], check_exact=True, obj=column)


def test_whole_numbers_too_large_for_double_sums_take_exact_sums(pg_url, fresh_schema):
    schema = fresh_schema("hist_whole_big")
    # Near 10^5 (demand in MW, a price in cents): the fourth powers of 130 rows pass 2^53.
    small = [7 * i % 13 + (i % 5) ** 2 for i in range(130)]
    level = [100_000 + v for v in small]
    assert _past_double_sums(level) and not _past_double_sums(small)
    _load(pg_url, schema, pd.concat([_whole_draws("level", level), _whole_draws("small", small)]))
    _run_staging(pg_url)
    _build(pg_url)
    mart = _mart(pg_url, schema)
    draws = _draws(pg_url, schema)
    want = naive_hist.features_hist(draws[draws["unique_id"] == "small"])
    _assert_close(mart.loc[want.index, want.columns], want, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE)
    # Exact sums centre the level series exactly: its moments are those of the small one to
    # the last bit (pandas' floats on values near 10^5 keep about 9 digits of them).
    level, small_mart = mart.loc[("big_user", "level")], mart.loc[("big_user", "small")]
    _assert_shift_invariant(level, small_mart)
    means = [
        column for column in mart.columns if column.startswith(("hist_y_roll_mean_", "hist_y_roll_max_"))
    ]
    _assert_close(level[means] - 100_000, small_mart[means], rtol=0, atol=1e-9)
    assert mart["hist_y_roll_kurt_w90"].notna().sum() == 2 * (130 - 89)


def test_a_series_growing_past_the_double_sums_bound_equals_a_full_refresh(pg_url, fresh_schema):
    """The first build takes the prefix sums in double precision; rows that arrive later take the
    series past 2^53 and onto the exact sums, for every row. An incremental run leaves the
    earlier rows as they were, and they equal what the exact sums give."""
    schema = fresh_schema("hist_whole_grows")
    values = [3000 - 7 * i % 13 for i in range(140)]
    first = 100
    assert not _past_double_sums(values[:first]) and _past_double_sums(values)
    _load(pg_url, schema, _whole_draws("grows", values).head(first))
    _run_staging(pg_url)
    _build(pg_url)
    _load(pg_url, schema, _whole_draws("grows", values).iloc[first:])
    _run_staging(pg_url)
    _build(pg_url)
    incremental = _mart(pg_url, schema)
    _build(pg_url, "--full-refresh")
    full = _mart(pg_url, schema)
    assert len(full) == len(values)
    _assert_identical(incremental, full)
    shifted = _mart_of(pg_url, fresh_schema("hist_whole_shifted"), [v - 2990 for v in values])
    _assert_shift_invariant(full.loc[("big_user", "grows")], shifted.loc[("big_user", "grows")])


def _mart_of(url: str, schema: str, values: list[int]) -> pd.DataFrame:
    _load(url, schema, _whole_draws("grows", values))
    _run_staging(url)
    _build(url)
    return _mart(url, schema)
