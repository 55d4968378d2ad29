"""The marts against the staging table: an empty mart or one lacking staged keys is refused by
``train``'s data read, with one message naming the mart and the command that rebuilds it."""

from __future__ import annotations

import datetime as dt

import pytest
from psycopg import sql

from python_jobs import db, marts
from python_jobs.realtime.predict import features_from_marts

DATES = [dt.date(2024, 1, 4), dt.date(2024, 1, 8), dt.date(2024, 1, 11)]


def _execute(url: str, statement: sql.Composable, params: tuple = ()) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)


@pytest.fixture
def schema(pg_url: str, fresh_schema) -> str:
    """Three staged draws of one series and empty marts of their grain."""
    name = fresh_schema("martsready")
    _execute(
        pg_url,
        sql.SQL("create table {} (loto text, unique_id text, ds date, y numeric)").format(
            sql.Identifier(name, "stg_lottery__draws")
        ),
    )
    for ds in DATES:
        _execute(
            pg_url,
            sql.SQL("insert into {} values ('loto6', 'N1', %s, 7)").format(
                sql.Identifier(name, "stg_lottery__draws")
            ),
            (ds,),
        )
    _execute(
        pg_url,
        sql.SQL("create table {} (loto text, unique_id text, ds date, hist_y_lag1 double precision)").format(
            sql.Identifier(name, "features_hist")
        ),
    )
    _execute(
        pg_url,
        sql.SQL("create table {} (loto text, unique_id text, ds date, is_future boolean)").format(
            sql.Identifier(name, "features_futr")
        ),
    )
    return name


def _insert(url: str, schema: str, table: str, dates: list[dt.date], *extra) -> None:
    for ds in dates:
        placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in extra)
        _execute(
            url,
            sql.SQL("insert into {} values ('loto6', 'N1', %s, {})").format(
                sql.Identifier(schema, table), placeholders
            ),
            (ds, *extra),
        )


def test_train_refuses_an_empty_then_a_partial_features_hist(pg_url, schema):
    with pytest.raises(marts.MartNotReadyError) as refused:
        features_from_marts(pg_url)
    message = str(refused.value)
    assert message == (
        f"{schema}.features_hist is empty while stg_lottery__draws has 3 rows: "
        "rebuild it with `dbt run --select features_hist` (or `make demo`)"
    )

    _insert(pg_url, schema, "features_hist", DATES[:2], 1.0)
    with pytest.raises(marts.MartNotReadyError, match=r"features_hist is behind stg_lottery__draws: 1 of 3 "):
        features_from_marts(pg_url)

    _insert(pg_url, schema, "features_hist", DATES[2:], 1.0)
    frame = features_from_marts(pg_url)
    assert len(frame) == 3 and frame["y"].tolist() == [7.0, 7.0, 7.0]


def test_future_rows_do_not_stand_for_staged_draws(pg_url, schema):
    """features_futr's future dates are not history: a mart of future rows only lacks every draw."""
    _insert(pg_url, schema, "features_futr", [dt.date(2030, 1, 3), *DATES[:1]], True)
    with db.connect(pg_url) as conn:
        state = marts.mart_state(conn, "features_futr")
        assert (state.ok, state.rows, state.staged, state.missing) == (False, 0, 3, 3)
        _insert(pg_url, schema, "features_futr", DATES, False)
        assert marts.mart_state(conn, "features_futr").ok
        assert marts.mart_state(conn, "features_stat") == marts.MartState("features_stat", exists=False)
