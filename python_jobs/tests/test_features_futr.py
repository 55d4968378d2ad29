"""features_futr on the bundled real data, against pandas, ``holidays`` and the real draw dates.

The reference (``naive_futr_stat``) never reads the holiday seed or the dbt models: calendar
parts come from pandas ``DatetimeIndex`` attributes, holidays from ``holidays.JP``, the future
draw dates from walking the schedule day by day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import yaml
from psycopg import sql

from python_jobs import config, db, dbt, definitions
from python_jobs.holidays_seed import write_holiday_seed
from python_jobs.tests import naive_futr_stat as naive

# The feature definitions of dbt_project.yml (python_jobs/definitions.py).
DEFS = definitions.load()

pytestmark = pytest.mark.dbt

KEY = ["loto", "unique_id", "ds"]
HORIZON = DEFS.futr_horizon
FLOAT_TOLERANCE = 1e-9
SEEDS_AND_MODELS = ["--resource-type", "seed", "--resource-type", "model"]


def _read(url: str, schema: str, query: str) -> pd.DataFrame:
    with db.connect(url) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(schema)))
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[col.name for col in cur.description])


def _schedule() -> dict[str, list[tuple[dt.date, dt.date, int]]]:
    frame = pd.read_csv(config.SEEDS_DIR / "loto_schedule.csv", dtype=str)
    out: dict[str, list[tuple[dt.date, dt.date, int]]] = {}
    for row in frame.itertuples():
        out.setdefault(row.loto, []).append(
            (
                dt.date.fromisoformat(row.valid_from_date),
                dt.date.fromisoformat(row.valid_to_date),
                int(row.draw_weekday),
            )
        )
    return out


def _build(url: str, schema: str, args: list[str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SCHEMA", schema)
        dbt.run(args, url=url, quiet=True)


@pytest.fixture(scope="module")
def built(pg_url: str, loaded_schema: str) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """features_futr built with its data tests and unit tests; (schema, mart, draws)."""
    _build(
        pg_url, loaded_schema, ["build", "--select", "+features_futr", "--indirect-selection", "buildable"]
    )
    futr = _read(pg_url, loaded_schema, "select * from features_futr order by loto, unique_id, ds")
    draws = _read(pg_url, loaded_schema, "select loto, unique_id, ds, y from stg_lottery__draws")
    yield loaded_schema, futr, draws


def _assert_calendar_matches(futr: pd.DataFrame) -> None:
    reference = naive.calendar_features(futr["ds"])
    expected = reference.loc[pd.to_datetime(futr["ds"])].reset_index(drop=True)
    assert len(expected) == len(futr)
    for column in reference.columns:
        got = futr[column].to_numpy()
        want = expected[column].to_numpy()
        if want.dtype.kind == "f":
            worst = np.max(np.abs(got.astype("float64") - want))
            assert worst < FLOAT_TOLERANCE, f"{column}: off by {worst}"
        else:
            mismatches = int((got.astype(want.dtype) != want).sum())
            assert mismatches == 0, f"{column}: {mismatches} rows differ from pandas/holidays"


def test_columns_are_the_defined_ones_and_documented(built):
    _, futr, _ = built
    expected = [
        "loto",
        "unique_id",
        "ds",
        "is_future",
        *naive.calendar_features([dt.date(2024, 1, 1)]).columns,
    ]
    assert list(futr.columns) == expected
    models = yaml.safe_load((config.REPO_ROOT / "models/marts/_marts__features_futr_stat.yml").read_text())
    documented = next(model for model in models["models"] if model["name"] == "features_futr")
    assert [column["name"] for column in documented["columns"]] == expected
    project = yaml.safe_load((config.REPO_ROOT / "dbt_project.yml").read_text())
    assert tuple(project["vars"]["fourier_periods"]) == naive.FOURIER_PERIODS
    assert tuple(project["vars"]["fourier_orders"]) == naive.FOURIER_ORDERS


def test_every_calendar_column_matches_pandas_and_holidays(built):
    _, futr, _ = built
    assert len(futr) > 17_000
    assert futr["futr_is_holiday"].sum() > 50  # loto6 draws on Monday holidays since 2011
    _assert_calendar_matches(futr)


def test_history_rows_are_exactly_the_draws(built):
    _, futr, draws = built
    history = futr.loc[~futr["is_future"], KEY]
    assert len(history) == len(draws)
    merged = history.merge(draws[KEY], how="outer", on=KEY, indicator=True)
    assert (merged["_merge"] == "both").all()


def test_future_rows_follow_the_schedule(built):
    _, futr, draws = built
    schedule = _schedule()
    future = futr[futr["is_future"]]
    for loto, unique_id in draws[["loto", "unique_id"]].drop_duplicates().itertuples(index=False):
        last_draw = draws.loc[draws["loto"] == loto, "ds"].max()
        got = sorted(future.loc[(future["loto"] == loto) & (future["unique_id"] == unique_id), "ds"])
        assert got == naive.scheduled_dates(last_draw, schedule[loto], HORIZON), (loto, unique_id)
        assert len(got) == HORIZON
        assert min(got) > last_draw
        assert all((day.month, day.day) not in naive.NEW_YEAR_BREAK for day in got)
        weekdays = {weekday for start, end, weekday in schedule[loto] if start <= got[0].date() <= end}
        assert {day.weekday() for day in got} <= weekdays
    # loto6 draws Monday and Thursday, bingo5 Wednesday.
    assert set(pd.to_datetime(future.loc[future["loto"] == "loto6", "ds"]).dt.day_of_week) == {0, 3}
    assert set(pd.to_datetime(future.loc[future["loto"] == "bingo5", "ds"]).dt.day_of_week) == {2}


def test_schedule_and_new_year_break_fit_every_real_draw(built):
    """The schedule seed and the break rule, walked by the reference, give the real draw dates."""
    _, _, draws = built
    schedule = _schedule()
    for loto, dates in draws.groupby("loto")["ds"]:
        real = sorted(set(dates))
        walked = [real[0]]
        while walked[-1] < real[-1]:
            walked += naive.scheduled_dates(walked[-1], schedule[loto], 1)
        assert set(real) <= set(walked), loto
        # The one scheduled date without a draw in 25 years of data.
        assert sorted(set(walked) - set(real)) == ([pd.Timestamp(2020, 1, 6)] if loto == "loto6" else [])


def test_cut_data_projects_the_real_next_draws(pg_url, built, fresh_schema):
    """Look-ahead: cut the input after a date; earlier rows are unchanged and the projected
    dates are the draws that really followed (across loto6's 2011 schedule change and the
    2019/2020 New Year break of bingo5). A lottery without a schedule steps at its series' own
    cadence (the median of its last futr_step_diffs gaps), and years outside the holiday seed
    get NULL holiday columns."""
    full_schema, full, draws = built
    cuts = {"loto6": pd.Timestamp(2011, 2, 3), "bingo5": pd.Timestamp(2019, 12, 11)}
    schema = fresh_schema("futr_cut")
    with db.connect(pg_url, autocommit=True) as conn:
        raw = sql.Identifier(config.RAW_DRAWS_TABLE)
        conn.execute(
            sql.SQL("create table {}.{} (like {}.{} including all)").format(
                sql.Identifier(schema), raw, sql.Identifier(full_schema), raw
            )
        )
        conn.execute(
            sql.SQL(
                "insert into {}.{} select * from {}.{} "
                "where (loto = 'loto6' and ds <= %s) or (loto = 'bingo5' and ds <= %s)"
            ).format(sql.Identifier(schema), raw, sql.Identifier(full_schema), raw),
            (cuts["loto6"], cuts["bingo5"]),
        )
        # A user's lottery: no schedule row, and draws in 1990, before the holiday seed starts.
        conn.execute(
            sql.SQL(
                "insert into {}.{} (loto, unique_id, ds, y) values "
                "('mylotto', 'N1', '1990-05-03', 4), ('mylotto', 'N1', '1990-05-10', 9), "
                "('mylotto', 'N1', '2000-01-10', 2)"
            ).format(sql.Identifier(schema), raw)
        )
    # Seeds and models in one invocation (one parse); the data tests run on the full data above.
    dbt.run(["build", "--quiet", "--select", "+features_futr", *SEEDS_AND_MODELS], url=pg_url)
    cut = _read(pg_url, schema, "select * from features_futr order by loto, unique_id, ds")

    own = cut[cut["loto"] == "mylotto"]
    history = own[~own["is_future"]]
    assert len(history) == 3
    # Gaps of 7 and 3532 days: the median (their mean) is the step, from the last row on.
    real = pd.to_datetime(history["ds"])
    step = (real.diff().dropna()).median()
    assert step == pd.Timedelta(days=(7 + 3532) / 2)
    assert list(pd.to_datetime(own.loc[own["is_future"], "ds"])) == [
        real.max() + k * step for k in range(1, HORIZON + 1)
    ]
    own = history
    in_1990 = own[pd.to_datetime(own["ds"]).dt.year == 1990]
    assert (
        in_1990[["futr_is_holiday", "futr_days_since_holiday", "futr_days_until_holiday"]].isna().all().all()
    )
    assert own.loc[pd.to_datetime(own["ds"]).dt.year == 2000, "futr_is_holiday"].tolist() == [True]

    cut = cut[cut["loto"] != "mylotto"].reset_index(drop=True)
    for loto, cut_date in cuts.items():
        real_next = sorted(d for d in draws.loc[draws["loto"] == loto, "ds"].unique() if d > cut_date)[
            :HORIZON
        ]
        projected = cut[(cut["loto"] == loto) & cut["is_future"]]
        for unique_id, group in projected.groupby("unique_id"):
            assert sorted(group["ds"]) == real_next, (loto, unique_id)
        # The features of a projected date equal those of the real draw's row later on.
        later = full[(full["loto"] == loto) & full["ds"].isin(real_next)].drop(columns="is_future")
        pd.testing.assert_frame_equal(
            projected.drop(columns="is_future").reset_index(drop=True),
            later.reset_index(drop=True),
            check_dtype=False,
        )
    history = cut[~cut["is_future"]].reset_index(drop=True)
    before = full[~full["is_future"] & (full["ds"] <= full["loto"].map(cuts))].reset_index(drop=True)
    pd.testing.assert_frame_equal(history, before, check_dtype=False)
    _assert_calendar_matches(cut)


def test_holiday_seed_is_what_the_holidays_package_says(tmp_path):
    committed = config.SEEDS_DIR / "jp_holidays.csv"
    regenerated = write_holiday_seed(1995, 2035, tmp_path / "jp_holidays.csv")
    assert regenerated.read_bytes() == committed.read_bytes(), (
        "seeds/jp_holidays.csv is stale: run `python -m python_jobs holidays`"
    )
    seed = pd.read_csv(committed, parse_dates=["holiday_date"])
    assert seed["holiday_date"].is_monotonic_increasing and seed["holiday_date"].is_unique
    # The bundled draws (2000-2025) and their horizon lie inside the covered years.
    assert seed["holiday_date"].dt.year.min() <= 2000 and seed["holiday_date"].dt.year.max() >= 2026
    # Substitute holidays are in: 2024-02-12 (for Sunday 11 February).
    assert pd.Timestamp("2024-02-12") in set(seed["holiday_date"])
