"""The SQL columns of features_stat on the bundled real data and on edge cases, against pandas."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import yaml
from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.tests import naive_futr_stat as naive

pytestmark = pytest.mark.dbt

RELATIVE_TOLERANCE = 1e-9
SQL_COLUMNS = [
    "loto",
    "unique_id",
    "stat_y_global_mean",
    "stat_y_global_std",
    "stat_y_global_min",
    "stat_y_global_max",
    "stat_y_global_range",
    "stat_y_global_cv",
    "stat_y_global_skewness",
    "stat_y_global_kurtosis",
    "stat_series_length",
    "stat_series_start_date",
    "stat_series_end_date",
    "stat_series_frequency_days",
    "stat_unique_id_category",
    "stat_loto_type",
    "stat_loto_number_range_min",
    "stat_loto_number_range_max",
    "stat_loto_draw_count_total",
]
# Prize statistics, checked against their own reference in test_features_prizes.py.
PRIZE_COLUMNS = [
    "stat_prize1_hit_share",
    "stat_prize1_payout_mean",
    "stat_prize1_payout_median",
    "stat_y_prize1_corr",
]


def _read(url: str, schema: str, query: str) -> pd.DataFrame:
    with db.connect(url) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(schema)))
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[col.name for col in cur.description])


def _assert_matches_pandas(stat: pd.DataFrame, draws: pd.DataFrame) -> None:
    got = stat.set_index(["loto", "unique_id"]).sort_index()
    want = naive.series_stats(draws).sort_index()
    assert list(got.index) == list(want.index)
    for column in want.columns:
        expected = want[column]
        actual = got[column]
        if pd.api.types.is_float_dtype(expected):
            actual = actual.astype("float64")
            assert (actual.isna() == expected.isna()).all(), f"{column}: NULL where pandas is not NaN"
            both = expected.notna()
            error = np.abs(actual[both] - expected[both]) / np.maximum(np.abs(expected[both]), 1e-300)
            assert (error <= RELATIVE_TOLERANCE).all(), f"{column}: relative error {error.max()}"
        else:
            assert actual.tolist() == expected.tolist(), column


def _positions() -> pd.DataFrame:
    return pd.read_csv(config.SEEDS_DIR / "loto_positions.csv").set_index(["loto", "unique_id"])


@pytest.fixture(scope="module")
def built(pg_url: str, loaded_schema: str) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """features_stat built with its data tests and unit tests; (mart, draws)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SCHEMA", loaded_schema)
        dbt.run(
            ["build", "--quiet", "--select", "+features_stat", "--indirect-selection", "buildable"],
            url=pg_url,
        )
    stat = _read(pg_url, loaded_schema, "select * from features_stat")
    draws = _read(pg_url, loaded_schema, "select loto, unique_id, ds, y from stg_lottery__draws")
    yield stat, draws


def test_columns_are_the_defined_ones_and_documented(built):
    stat, _ = built
    leading = SQL_COLUMNS + PRIZE_COLUMNS
    assert list(stat.columns[: len(leading)]) == leading
    python_columns = list(stat.columns[len(leading) :])
    assert python_columns and all(column.startswith("stat_") for column in python_columns)
    models = yaml.safe_load((config.REPO_ROOT / "models/marts/_marts__features_futr_stat.yml").read_text())
    documented = next(model for model in models["models"] if model["name"] == "features_stat")
    assert [column["name"] for column in documented["columns"]] == list(stat.columns)


def test_sql_columns_match_pandas_on_real_data(built):
    stat, draws = built
    assert len(stat) == 15  # loto6 N1..N6, B1 and bingo5 N1..N8
    _assert_matches_pandas(stat, draws)
    ranges = _positions()
    got = stat.set_index(["loto", "unique_id"])
    for key, row in got.iterrows():
        assert row["stat_loto_number_range_min"] == ranges.loc[key, "range_min"], key
        assert row["stat_loto_number_range_max"] == ranges.loc[key, "range_max"], key
    # Real-data facts: loto6 draws every 3-4 days, bingo5 weekly.
    assert set(got.loc["loto6", "stat_series_frequency_days"]) == {4.0}
    assert set(got.loc["bingo5", "stat_series_frequency_days"]) == {7.0}


def test_edge_cases_match_pandas_and_python_columns_join(pg_url, fresh_schema):
    """Short, constant, zero-mean and fractional series of a lottery the seeds do not know;
    a row the Python job wrote for a series' latest snapshot shows up in the mart."""
    schema = fresh_schema("stat_edge")
    series = {
        "N1": [5, 5, 5, 5, 5],  # constant: skew and kurt NaN in pandas
        "N2": [7],  # one draw: std, skew, kurt, frequency NaN
        "N3": [1, 4],  # two: skew and kurt NaN
        "N4": [2, 9, 4],  # three: kurt NaN
        "N5": [-3, 3, -1, 1, 0, 2, -2],  # mean 0: cv NULL (pandas inf)
        "B1": [0.25, 1.5, 0.125, 7.75, 3.0, 0.5],  # fractional values
    }
    # Gaps of 3, 4, 3, 4, 3 and 7 days: the median gap differs between the series.
    days = pd.to_datetime(
        ["2024-01-01", "2024-01-04", "2024-01-08", "2024-01-11", "2024-01-15", "2024-01-18", "2024-01-25"]
    )
    rows = [
        ("edgeloto", unique_id, days[i].date(), value)
        for unique_id, values in series.items()
        for i, value in enumerate(values)
    ]
    with db.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "create table {}.{} (loto text not null, unique_id text not null, ds date not null, "
                "y numeric not null, num integer, co bigint, source_file text, "
                "loaded_at timestamptz not null default now(), primary key (loto, unique_id, ds))"
            ).format(sql.Identifier(schema), sql.Identifier(config.RAW_DRAWS_TABLE))
        )
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("insert into {}.{} (loto, unique_id, ds, y) values (%s, %s, %s, %s)").format(
                    sql.Identifier(schema), sql.Identifier(config.RAW_DRAWS_TABLE)
                ),
                rows,
            )
        # A result of the Python job for the latest snapshot of one series (N5's last draw),
        # written before dbt runs; the columns the table lacks are NULL in the mart.
        conn.execute(
            sql.SQL(
                "create table {}.py_features_stat_history (loto text not null, unique_id text not null, "
                "as_of timestamp not null, n_rows integer not null, checksum text not null, "
                "computed_at timestamptz, stat_acf_lag1 double precision, "
                "primary key (loto, unique_id, as_of))"
            ).format(sql.Identifier(schema))
        )
        conn.execute(
            sql.SQL(
                "insert into {}.py_features_stat_history (loto, unique_id, as_of, n_rows, checksum, "
                "stat_acf_lag1) values (%s, %s, %s, 7, '0', %s)"
            ).format(sql.Identifier(schema)),
            ("edgeloto", "N5", days[6].to_pydatetime(), 0.5),
        )
    seeds_and_models = ["--resource-type", "seed", "--resource-type", "model"]
    dbt.run(["build", "--quiet", "--select", "+features_stat", *seeds_and_models], url=pg_url)
    stat = _read(pg_url, schema, "select * from features_stat")
    draws = pd.DataFrame(rows, columns=["loto", "unique_id", "ds", "y"])
    _assert_matches_pandas(stat[SQL_COLUMNS], draws)
    got = stat.set_index("unique_id")
    assert got["stat_loto_number_range_min"].isna().all() and got["stat_loto_number_range_max"].isna().all()
    assert got.loc["N5", "stat_acf_lag1"] == 0.5
    assert got.drop(index="N5")["stat_acf_lag1"].isna().all()
    assert got.loc["B1", "stat_unique_id_category"] == "bonus"
    # The lottery's draws up to each series' latest row: every series starts on the first day.
    assert got["stat_loto_draw_count_total"].to_dict() == {uid: len(values) for uid, values in series.items()}
