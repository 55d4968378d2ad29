"""features_stat_history on the bundled real data: each snapshot sees only the rows up to it.

One schema with the bundled files ingested, the Python job's stat families run and the stat
models built (module fixture). The SQL columns of every snapshot are checked against pandas on
the data cut at its as_of, the Python columns against the families called on the cut series,
features_stat against the latest snapshot (every column, exactly), and the whole table by cut
and compare: bingo5 cut after a date T and rebuilt from scratch gives, for every snapshot at
or before T, the same row.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.features import registry
from python_jobs.job import run_job
from python_jobs.tests import naive_futr_stat as naive
from python_jobs.tests.conftest import _drop_schema, _new_schema_name, load_bundled
from python_jobs.tests.test_features_stat import RELATIVE_TOLERANCE, SQL_COLUMNS

pytestmark = pytest.mark.dbt

CUT = pd.Timestamp("2021-06-30")


def _stat_families() -> list[str]:
    return [fam.name for fam in registry.families("stat")]


def _build(url: str, *, full_refresh: bool = False) -> None:
    """The job's stat families, then features_stat_history, features_stat and what they read."""
    run_job(
        url=url,
        families=_stat_families(),
        scheduler="sync",
        device="cpu",
        progress=False,
        quiet=True,
        full_refresh=full_refresh,
    )
    dbt.run(["build", "--quiet", "--select", "+features_stat", "--indirect-selection", "buildable"], url=url)


def _read(url: str, query: str | sql.Composable, params: tuple = ()) -> pd.DataFrame:
    with db.connect(url) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(config.target_schema())))
        cur = conn.execute(query, params or None)
        return pd.DataFrame(cur.fetchall(), columns=[col.name for col in cur.description])


@pytest.fixture(scope="module")
def history_schema(pg_url: str) -> Iterator[str]:
    schema = _new_schema_name("stat_history")
    load_bundled(pg_url, schema)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SCHEMA", schema)
        _build(pg_url)
        yield schema
    _drop_schema(pg_url, schema)


def _draws(url: str) -> pd.DataFrame:
    draws = _read(url, "select loto, unique_id, ds, y from stg_lottery__draws order by loto, unique_id, ds")
    draws["ds"] = pd.to_datetime(draws["ds"])
    return draws


def _expected_as_of(draws: pd.DataFrame) -> pd.DataFrame:
    """The snapshots from pandas: the last row of each calendar year of each series."""
    year = draws["ds"].dt.year
    last = draws.groupby(["loto", "unique_id", year])["ds"].transform("max") == draws["ds"]
    return draws.loc[last, ["loto", "unique_id", "ds"]].rename(columns={"ds": "as_of"}).reset_index(drop=True)


def test_columns_are_as_of_then_those_of_features_stat(pg_url: str, history_schema: str) -> None:
    history = _read(pg_url, "select * from features_stat_history limit 1")
    stat = _read(pg_url, "select * from features_stat limit 1")
    assert list(history.columns) == ["loto", "unique_id", "as_of", *stat.columns[2:]]


def test_features_stat_is_the_latest_snapshot_every_column(pg_url: str, history_schema: str) -> None:
    stat = _read(pg_url, "select * from features_stat")
    columns = sql.SQL(", ").join(sql.Identifier(col) for col in stat.columns)
    latest = sql.SQL(
        "select {cols} from features_stat_history as h where h.as_of = "
        "(select max(l.as_of) from features_stat_history as l "
        "where l.loto = h.loto and l.unique_id = h.unique_id)"
    ).format(cols=columns)
    differing = _read(
        pg_url,
        sql.SQL(
            "select count(*) as n from ((select * from features_stat except all {latest}) "
            "union all ({latest} except all select * from features_stat)) as differing"
        ).format(latest=latest),
    )
    assert len(stat) == 15 and differing["n"].item() == 0
    # Not vacuous: the Python columns are filled, and an earlier snapshot is another row.
    assert stat["stat_c22_co_firstmin_ac"].notna().all() and stat["stat_acf_lag1"].notna().all()
    earlier = _read(
        pg_url, "select count(distinct stat_acf_lag1) as n from features_stat_history where unique_id = 'N1'"
    )
    assert earlier["n"].item() > 2


def test_sql_columns_of_every_snapshot_match_pandas_on_the_cut_data(pg_url: str, history_schema: str) -> None:
    draws = _draws(pg_url)
    history = _read(pg_url, "select as_of, " + ", ".join(SQL_COLUMNS) + " from features_stat_history")
    history["as_of"] = pd.to_datetime(history["as_of"])
    want_keys = _expected_as_of(draws).sort_values(["loto", "unique_id", "as_of"]).reset_index(drop=True)
    got = history.sort_values(["loto", "unique_id", "as_of"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[["loto", "unique_id", "as_of"]], want_keys)
    parts = []
    for as_of, keys in want_keys.groupby("as_of"):
        # The lottery-wide count too sees only the rows up to as_of.
        cut = naive.series_stats(draws[draws["ds"] <= as_of]).reset_index()
        part = cut.merge(keys, on=["loto", "unique_id"])
        parts.append(part)
    want = pd.concat(parts).sort_values(["loto", "unique_id", "as_of"]).reset_index(drop=True)
    for column in [c for c in want.columns if c not in ("loto", "unique_id", "as_of")]:
        expected, actual = want[column], got[column]
        if pd.api.types.is_float_dtype(expected):
            actual = actual.astype("float64")
            assert (actual.isna() == expected.isna()).all(), column
            both = expected.notna()
            error = np.abs(actual[both] - expected[both]) / np.maximum(np.abs(expected[both]), 1e-300)
            assert (error <= RELATIVE_TOLERANCE).all(), f"{column}: relative error {error.max()}"
        elif column.endswith("_date"):
            assert (pd.to_datetime(actual) == pd.to_datetime(expected)).all(), column
        else:
            assert actual.tolist() == expected.tolist(), column


def test_python_columns_equal_the_families_on_the_cut_series(pg_url: str, history_schema: str) -> None:
    draws = _draws(pg_url)
    history = _read(
        pg_url,
        "select * from features_stat_history where unique_id = 'N3' and loto = 'bingo5' order by as_of",
    )
    series = draws[(draws["loto"] == "bingo5") & (draws["unique_id"] == "N3")]
    assert len(history) == 8
    for _, row in history.iterrows():
        y = series.loc[series["ds"] <= pd.Timestamp(row["as_of"]), "y"].astype("float64").to_numpy()
        for fam in registry.families("stat"):
            params = fam.resolved()
            values = fam.compute(y.copy(), params) if len(y) >= fam.min_rows() else {}
            for name in fam.output_names():
                want = values.get(name)
                want = math.nan if want is None else float(want)
                got = math.nan if row[name] is None else float(row[name])
                assert (math.isnan(want) and math.isnan(got)) or math.isclose(got, want, rel_tol=1e-12), (
                    row["as_of"],
                    name,
                )


def test_point_in_time_cut_and_compare(pg_url: str, history_schema: str) -> None:
    """bingo5 cut after CUT and rebuilt from scratch: every snapshot at or before CUT is the same row.

    Runs last: it cuts the module's schema.
    """
    with db.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(history_schema)))
        conn.execute("create table full_history as select * from features_stat_history")
        conn.execute("create table full_stat as select * from features_stat")
        deleted = conn.execute(
            sql.SQL("delete from {} where loto = 'bingo5' and ds > %s").format(
                sql.Identifier(config.RAW_DRAWS_TABLE)
            ),
            (CUT.to_pydatetime(),),
        ).rowcount
    assert deleted > 0
    dbt.run(["build", "--quiet", "--select", "staging"], url=pg_url)
    _build(pg_url, full_refresh=True)

    def count(query: str) -> int:
        return int(_read(pg_url, query)["n"].item())

    before_cut = "select * from {} where loto = 'bingo5' and as_of <= timestamp '" + CUT.isoformat() + "'"
    missing = count(
        "select count(*) as n from ("
        + before_cut.format("full_history")
        + " except all "
        + before_cut.format("features_stat_history")
        + ") as differing"
    )
    assert missing == 0
    # The cut adds exactly one snapshot per series: its new latest row (mid-year, so not one before).
    added = _read(
        pg_url,
        "select unique_id, as_of from (" + before_cut.format("features_stat_history") + " except all "
        "select * from full_history) as added order by 1",
    )
    last_before_cut = _read(pg_url, "select max(ds) as ds from stg_lottery__draws where loto = 'bingo5'")[
        "ds"
    ].item()
    assert added["unique_id"].tolist() == [f"N{k}" for k in range(1, 9)]
    assert (pd.to_datetime(added["as_of"]) == pd.Timestamp(last_before_cut)).all()
    # Not vacuous: the whole-series features_stat of the full data differs from the cut's.
    assert (
        count(
            "select count(*) as n from (select * from full_stat where loto = 'bingo5' "
            "except all select * from features_stat) as differing"
        )
        == 8
    )
