"""Prize and gap-regularity columns of features_hist and features_stat against independent
references on the bundled real data (loto6 with its prize table, bingo5 without), and a
cut-and-compare run showing that no value uses a later draw."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.tests import naive_prizes
from python_jobs.tests.conftest import load_bundled

pytestmark = pytest.mark.dbt

KEYS = ["loto", "unique_id", "ds"]
PRIZE_HIST = [
    "hist_draw_prize1_winners",
    "hist_draw_prize1_payout",
    "hist_draw_payout_total",
    f"hist_y_prize1_corr_w{naive_prizes.WINDOW}",
]
GAP_HIST = ["hist_y_gap_mean", "hist_y_gap_std", "hist_y_overdue_ratio", "hist_y_gap_expected"]
PRIZE_STAT = [
    "stat_prize1_hit_share",
    "stat_prize1_payout_mean",
    "stat_prize1_payout_median",
    "stat_y_prize1_corr",
]
MODELS = ["+features_hist", "+features_stat"]


def _read(url: str, schema: str, query: str) -> pd.DataFrame:
    with db.connect(url) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(schema)))
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[col.name for col in cur.description])


def _build(url: str, *extra: str) -> None:
    dbt.run(["run", "--quiet", "--select", *MODELS, *extra], url=url)


def _assert_close(got: pd.Series, want: pd.Series, name: str) -> None:
    got = pd.to_numeric(got.astype(object).where(got.notna()), errors="coerce").astype(float).to_numpy()
    want = want.astype(float).to_numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{name}: NULLs differ"
    both = ~np.isnan(want)
    assert np.allclose(got[both], want[both], rtol=1e-9, atol=1e-12), f"{name}: values differ"


@pytest.fixture(scope="module")
def built(pg_url: str):
    schema = f"t_prizes_{np.random.default_rng().integers(1 << 30):x}"
    with db.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SCHEMA", schema)
        try:
            load_bundled(pg_url, schema)
            _build(pg_url)
            hist = _read(pg_url, schema, "select * from features_hist order by loto, unique_id, ds")
            stat = _read(pg_url, schema, "select * from features_stat order by loto, unique_id")
            draws = _read(pg_url, schema, "select loto, unique_id, ds, y from stg_lottery__draws")
            yield schema, hist, stat, draws
        finally:
            with db.connect(pg_url, autocommit=True) as conn:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def test_prize_table_is_loaded(pg_url, built):
    schema = built[0]
    prizes = _read(pg_url, schema, "select loto, ds, tier, winners, prize from stg_lottery__prizes")
    want = naive_prizes.loto6_prizes(config.RAW_DATA_DIR / "loto6.json")
    assert len(prizes) == 2037 * 5 == len(want)
    assert set(prizes["loto"]) == {"loto6"}


def test_prize_columns_match_reference(built):
    _, hist, _, draws = built
    prizes = naive_prizes.loto6_prizes(config.RAW_DATA_DIR / "loto6.json")
    per_draw = naive_prizes.draw_prizes(prizes)
    hist = hist.set_index(KEYS)
    keys = hist.index.droplevel("unique_id")
    for column in PRIZE_HIST[:3]:
        want = per_draw[column].reindex(keys)
        _assert_close(hist[column], want, column)
    corr = naive_prizes.prize_correlation(draws, per_draw).reindex(hist.index)
    _assert_close(hist[PRIZE_HIST[3]], corr, PRIZE_HIST[3])
    # Filled for Loto6, NULL for Bingo5 (no prize data), and not vacuous.
    assert hist.loc["loto6", "hist_draw_prize1_payout"].notna().all()
    assert hist.loc["bingo5", PRIZE_HIST].isna().all().all()
    assert hist.loc["loto6", PRIZE_HIST[3]].notna().sum() > 13_000


def test_gap_columns_match_reference(built):
    _, hist, _, draws = built
    gaps = naive_prizes.gap_statistics(draws)
    hist = hist.set_index(KEYS)
    y = draws.set_index(KEYS)["y"].reindex(hist.index).astype(float)
    lookup = pd.MultiIndex.from_arrays(
        [hist.index.get_level_values("loto"), hist.index.get_level_values("ds"), y.to_numpy()]
    )
    for column in ("hist_y_gap_mean", "hist_y_gap_std"):
        _assert_close(hist[column], gaps[column].reindex(lookup), column)
    ratio = hist["hist_y_gap"].astype(float) / gaps["hist_y_gap_mean"].reindex(lookup).to_numpy()
    _assert_close(hist["hist_y_overdue_ratio"], ratio, "hist_y_overdue_ratio")
    expected = np.where(hist.index.get_level_values("loto") == "loto6", 43 / 6, 5.0)
    _assert_close(hist["hist_y_gap_expected"], pd.Series(expected), "hist_y_gap_expected")
    assert hist["hist_y_gap_std"].notna().sum() > 16_000


def test_stat_prize_columns_match_reference(built):
    _, _, stat, draws = built
    per_draw = naive_prizes.draw_prizes(naive_prizes.loto6_prizes(config.RAW_DATA_DIR / "loto6.json"))
    want = naive_prizes.stat_prizes(draws, per_draw)
    stat = stat.set_index(["loto", "unique_id"])
    for column in PRIZE_STAT:
        _assert_close(stat[column], want[column].reindex(stat.index), column)
    assert stat.loc["loto6", "stat_y_prize1_corr"].notna().all()
    assert stat.loc["bingo5", PRIZE_STAT].isna().all().all()


def test_no_value_uses_a_later_draw(pg_url, fresh_schema, built):
    """Cut the draws and prizes after a date, build, compare with the full build's earlier rows."""
    schema = fresh_schema("prizes_cut")
    cut = dt.datetime(2015, 6, 30)  # ds is a timestamp (draws at midnight)
    load_bundled(pg_url, schema, build_staging=False)
    with db.connect(pg_url, autocommit=True) as conn:
        for table in (config.RAW_DRAWS_TABLE, "raw_lottery_prizes"):
            conn.execute(sql.SQL("delete from {} where ds > %s").format(db.qualified(table, schema)), (cut,))
    dbt.run(["seed", "--quiet"], url=pg_url)
    _build(pg_url)
    cut_hist = _read(pg_url, schema, "select * from features_hist order by loto, unique_id, ds").set_index(
        KEYS
    )
    full = built[1].set_index(KEYS)
    earlier = full[full.index.get_level_values("ds") <= cut]
    assert len(earlier) == len(cut_hist) > 0
    for column in PRIZE_HIST + GAP_HIST:
        _assert_close(cut_hist[column], earlier[column].astype(object).where(earlier[column].notna()), column)
