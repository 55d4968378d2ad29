"""An intraday series end to end: a half-hourly long-format file ingests and the three marts
and the Python job build for it, every column equal to pandas by rows.

The file is made here, from the real EUR/USD hourly bars (seeds/raw/eurusd_h1.csv), at a
place in the bars drawn for each run: a bar at ``t`` gives the row ``t`` (its open) and the
row ``t + 30 min`` (its close), so the series is half-hourly, with the bars' own weekend gaps.
Prices are written in pips above 1 (``round((price - 1) / 1e-4)``, a few hundred), so the
marts take their whole-number path and the comparison can be tight.
The same rows are written in three forms (``2017-04-19 09:30:00``, ``2017-04-19T09:30Z`` and
the Tokyo time ``2017-04-19T18:30+09:00``) and must be stored alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from psycopg import sql
from statsmodels.tsa.stattools import acf

from python_jobs import config, db, dbt, definitions
from python_jobs.ingest import IngestError, ingest_file
from python_jobs.job import run_job
from python_jobs.tests import naive_futr_stat, naive_hist
from python_jobs.tests.realtime_reference import assert_columns_close

pytestmark = pytest.mark.dbt

DEFS = definitions.load()
BARS = config.RAW_DATA_DIR / "eurusd_h1.csv"
LOTO = "fx"
KEYS = ["loto", "unique_id", "ds"]
HALF_HOUR = pd.Timedelta(minutes=30)
RELATIVE_TOLERANCE = 1e-9
# Values that are exactly 0 in SQL (exact integer sums) come out as 1e-17 from NumPy's floats.
ABSOLUTE_TOLERANCE = 1e-12
# Skewness and kurtosis are compared too: the SQL's centred power sums are exact integers, and
# pandas' float evaluation of a 90-row window of prices in pips stays within 1e-13 of the exact value.
MOMENT_PREFIXES = ("hist_y_roll_skew_", "hist_y_roll_kurt_")
PIP = 1e-4
SERIES_FORMS = {
    "eurusd": lambda stamp: stamp.strftime("%Y-%m-%d %H:%M:%S"),
    "eurusd_utc": lambda stamp: stamp.strftime("%Y-%m-%dT%H:%MZ"),
    "eurusd_tokyo": lambda stamp: (stamp + pd.Timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S+09:00"),
}


def half_hourly_rows(offset: int, length: int) -> pd.DataFrame:
    """Rows (ds, y) of ``length`` bars from bar ``offset``: open at t, close at t + 30 min, in
    pips above 1."""
    bars = pd.read_csv(BARS, index_col=0, parse_dates=True).iloc[offset : offset + length]
    points = ((bars[["Open", "Close"]] - 1) / PIP).round().astype(int)
    opens = pd.DataFrame({"ds": bars.index, "y": points["Open"].to_numpy()})
    closes = pd.DataFrame({"ds": bars.index + HALF_HOUR, "y": points["Close"].to_numpy()})
    return pd.concat([opens, closes]).sort_values("ds").reset_index(drop=True)


def write_file(path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """The long-format file of ``rows`` in each form of SERIES_FORMS; the stored rows expected."""
    lines = ["loto,unique_id,ds,y"]
    expected = []
    for unique_id, form in SERIES_FORMS.items():
        lines += [
            f"{LOTO},{unique_id},{form(stamp)},{y!r}" for stamp, y in zip(rows["ds"], rows["y"], strict=True)
        ]
        expected.append(rows.assign(loto=LOTO, unique_id=unique_id))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return pd.concat(expected, ignore_index=True)[[*KEYS, "y"]]


def _read(url: str, schema: str, query: str) -> pd.DataFrame:
    with db.connect(url) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(schema)))
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[col.name for col in cur.description])


def _execute(url: str, statement: sql.Composable) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="module")
def built(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The file ingested, staged, the Python job run (rolling quantiles, autocorrelation) and
    the marts built with their data and unit tests; what a test reads."""
    rng = np.random.default_rng()
    offset, length = int(rng.integers(0, 4000)), int(rng.integers(150, 400))
    # Whole numbers (pips): a slice short enough for n * max|y|^p < 2^53 takes the double
    # precision prefix sums, a longer one the exact numeric sums; both equal pandas.
    rows = half_hourly_rows(offset, length)
    path = tmp_path_factory.mktemp("intraday") / f"eurusd_m30_{offset}_{length}.csv"
    expected = write_file(path, rows)
    schema = f"t_intraday_{uuid.uuid4().hex[:8]}"
    _execute(pg_url, sql.SQL("create schema {}").format(sql.Identifier(schema)))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DBT_SCHEMA", schema)
            result = ingest_file(LOTO, path, url=pg_url)
            dbt.run(["build", "--quiet", "--select", "+stg_lottery__draws"], url=pg_url)
            ordered = "order by loto, unique_id, ds"
            job = run_job(url=pg_url, families=["rolling", "autocorrelation"], progress=False, quiet=True)
            dbt.run(
                ["build", "--quiet", "--select", "+features_hist", "+features_futr", "+features_stat"],
                url=pg_url,
            )
            yield {
                "where": f"offset {offset}, length {length}",
                "result": result,
                "job": job,
                "expected": expected,
                "draws": _read(pg_url, schema, "select loto, unique_id, ds, y, co from stg_lottery__draws"),
                "hist": _read(pg_url, schema, f"select * from features_hist {ordered}"),
                "futr": _read(pg_url, schema, f"select * from features_futr {ordered}"),
                "stat": _read(pg_url, schema, "select * from features_stat order by loto, unique_id"),
                "py_hist": _read(pg_url, schema, f"select * from py_features_hist {ordered}"),
            }
    finally:
        _execute(pg_url, sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def test_every_timestamp_form_is_stored_as_naive_utc(built):
    expected, draws = built["expected"], built["draws"]
    assert built["result"].rows_inserted == len(expected), built["where"]
    got = draws[[*KEYS, "y"]].assign(y=draws["y"].astype(float)).sort_values(KEYS).reset_index(drop=True)
    want = expected.sort_values(KEYS).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert pd.to_datetime(draws["ds"]).dt.minute.isin([0, 30]).all()
    assert (pd.to_datetime(draws["ds"]).dt.minute == 30).any()


def test_features_hist_equals_pandas_by_rows(built):
    draws, hist, py_hist = built["draws"], built["hist"], built["py_hist"]
    quartiles = py_hist.drop(columns="computed_at")
    want = naive_hist.features_hist(draws, quartiles)
    got = hist.set_index(KEYS)
    assert list(got.index) == list(want.index), built["where"]
    assert want.notna().any().any()
    assert any(column.startswith(MOMENT_PREFIXES) for column in want.columns)
    failures = assert_columns_close(got, want, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE)
    assert not failures, built["where"] + "\n" + "\n".join(failures)
    # Not a lottery: no main numbers, so the draw-level columns are NULL.
    assert hist["hist_draw_sum"].isna().all() and hist["hist_y_gap"].isna().all()


def test_python_job_reads_and_writes_the_timestamps(built):
    draws, py_hist = built["draws"], built["py_hist"]
    assert built["job"].status == "success"
    assert py_hist[KEYS].equals(draws.sort_values(KEYS)[KEYS].reset_index(drop=True))
    w = DEFS.stat_window
    for unique_id, series in draws.sort_values(KEYS).groupby("unique_id"):
        y = series["y"].astype(float).reset_index(drop=True)
        got = py_hist.loc[py_hist["unique_id"] == unique_id, f"hist_y_roll_q75_w{w}"].to_numpy(dtype=float)
        want = y.rolling(w).quantile(0.75).to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True, err_msg=unique_id)


def test_features_futr_hour_terms_and_own_step(built):
    futr, draws = built["futr"], built["draws"]
    stamps = pd.to_datetime(futr["ds"])
    index = pd.DatetimeIndex(stamps)
    for name, value, period in (
        ("hour", index.hour, 24),
        ("minute_of_day", 60 * index.hour + index.minute, 1440),
    ):
        np.testing.assert_allclose(
            futr[f"futr_ds_{name}_sin"], np.sin(2 * np.pi * value / period), atol=1e-12
        )
        np.testing.assert_allclose(
            futr[f"futr_ds_{name}_cos"], np.cos(2 * np.pi * value / period), atol=1e-12
        )
    reference = naive_futr_stat.calendar_features(stamps)
    expected = reference.loc[stamps].reset_index(drop=True)
    failures = assert_columns_close(futr, expected, rtol=1e-9, atol=1e-9)
    assert not failures, "\n".join(failures)
    history = futr[~futr["is_future"]]
    assert len(history) == len(draws)
    for unique_id, series in draws.groupby("unique_id"):
        future = stamps[futr["is_future"] & (futr["unique_id"] == unique_id)].tolist()
        last = pd.Timestamp(series["ds"].max())
        assert future == [last + k * HALF_HOUR for k in range(1, DEFS.futr_horizon + 1)], built["where"]
        assert future == naive_futr_stat.own_steps(series["ds"], DEFS.futr_horizon, DEFS.futr_step_diffs)


def test_features_stat_frequency_and_families(built):
    stat, draws = built["stat"], built["draws"]
    want = naive_futr_stat.series_stats(draws.assign(y=draws["y"].astype(float)))
    got = stat.set_index(["loto", "unique_id"]).loc[want.index]
    # Half-hourly: the median gap is 1/48 of a day; the weekend gaps are outvoted.
    assert (got["stat_series_frequency_days"] == 1 / 48).all(), built["where"]
    numeric = [
        c for c in want.columns if c.startswith("stat_y_") or c.endswith("_days") or c.endswith("_length")
    ]
    failures = assert_columns_close(got, want[numeric], rtol=1e-9, atol=1e-12)
    assert not failures, "\n".join(failures)
    for column in ("stat_series_start_date", "stat_series_end_date"):
        assert list(pd.to_datetime(got[column])) == list(want[column]), column
    for unique_id, series in draws.sort_values("ds").groupby("unique_id"):
        y = series["y"].astype(float).to_numpy()
        row = got.loc[(LOTO, unique_id)]
        np.testing.assert_allclose(
            [row[f"stat_acf_lag{k}"] for k in range(1, 11)],
            acf(y, nlags=10)[1:],
            rtol=1e-9,
            err_msg=unique_id,
        )


def test_two_rows_of_a_series_at_one_instant_are_a_duplicate(pg_url, fresh_schema, tmp_path):
    fresh_schema("intraday_dup")
    path = tmp_path / "dup.csv"
    path.write_text(
        "loto,unique_id,ds,y\n"
        "fx,eurusd,2017-04-19 09:00:00,1.0716\n"
        "fx,eurusd,2017-04-19T09:30:00Z,1.0721\n"
        "fx,eurusd,2017-04-19T18:30+09:00,1.0722\n"
        "fx,eurusd,2017-04-19T10:00:00.000,1.0723\n",
        encoding="utf-8",
    )
    with pytest.raises(IngestError) as caught:
        ingest_file(LOTO, path, url=pg_url)
    problems = caught.value.problems
    assert [problem.line for problem in problems] == [4]
    assert problems[0].draw_date == "2017-04-19 09:30:00"
    assert "duplicate draw" in problems[0].reason and "already on line 3" in problems[0].reason
