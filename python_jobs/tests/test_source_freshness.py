"""``dbt source freshness`` on the raw draws: a lottery behind its weekly schedule warns.

The source's freshness query (macro ``next_draw_due``) returns the earliest draw date that a
lottery's schedule (seed ``loto_schedule``) puts after its newest loaded draw; the source warns
when that date is over two days old. The reference here walks the calendar in Python.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from psycopg import sql

from python_jobs import config, db, dbt

pytestmark = [pytest.mark.slow, pytest.mark.dbt]

#: The current weekly schedules of the seed (Monday = 0), read independently of the SQL.
WEEKDAYS = {"loto6": {0, 3}, "bingo5": {2}}


def _is_new_year_break(day: dt.date) -> bool:
    return (day.month, day.day) in {(12, 31), (1, 1), (1, 2), (1, 3)}


def _scheduled(loto: str, day: dt.date) -> bool:
    return day.weekday() in WEEKDAYS[loto] and not _is_new_year_break(day)


def _next_draw(loto: str, after: dt.date) -> dt.date:
    day = after + dt.timedelta(days=1)
    while not _scheduled(loto, day):
        day += dt.timedelta(days=1)
    return day


def _last_draw_up_to(loto: str, day: dt.date) -> dt.date:
    while not _scheduled(loto, day):
        day -= dt.timedelta(days=1)
    return day


def _load(pg_url: str, newest: dict[str, dt.date]) -> None:
    """A raw draws table whose lotteries' newest draws are ``newest`` (one earlier draw each)."""
    table = db.qualified(config.RAW_DRAWS_TABLE)
    with db.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop table if exists {}").format(table))
        conn.execute(
            sql.SQL("create table {} (loto text, unique_id text, ds timestamp, y numeric)").format(table)
        )
        for loto, day in newest.items():
            for ds in (day - dt.timedelta(days=7), day):
                conn.execute(
                    sql.SQL("insert into {} values (%s, 'N1', %s, 1)").format(table),
                    (loto, dt.datetime.combine(ds, dt.time())),
                )


def _freshness(tmp_path: Path) -> dict:
    out = tmp_path / "sources.json"
    dbt.run(
        ["source", "freshness", "--select", "source:lottery.raw_lottery_draws", "--output", str(out)],
        check=False,
    )
    (result,) = json.loads(out.read_text(encoding="utf-8"))["results"]
    return result


@pytest.fixture
def schedule_schema(fresh_schema, pg_url: str) -> str:
    schema = fresh_schema("freshness")
    dbt.run(["seed", "--quiet", "--select", "loto_schedule"], url=pg_url)
    return schema


def test_a_lottery_behind_its_schedule_warns_with_its_first_missing_draw(schedule_schema, pg_url, tmp_path):
    today = dt.date.today()
    up_to_date = _last_draw_up_to("loto6", today)
    stale = _last_draw_up_to("bingo5", today - dt.timedelta(days=30))
    _load(pg_url, {"loto6": up_to_date, "bingo5": stale})

    result = _freshness(tmp_path)

    assert result["status"] == "warn", result
    assert result["max_loaded_at"].startswith(_next_draw("bingo5", stale).isoformat()), result


def test_lotteries_on_schedule_pass(schedule_schema, pg_url, tmp_path):
    today = dt.date.today()
    _load(pg_url, {loto: _last_draw_up_to(loto, today) for loto in WEEKDAYS})

    result = _freshness(tmp_path)

    assert result["status"] == "pass", result
    # The next due draw lies ahead (or is today's, whose results may not be out yet).
    assert result["max_loaded_at"][:10] >= today.isoformat(), result


def test_a_series_without_a_schedule_is_never_due(schedule_schema, pg_url, tmp_path):
    _load(pg_url, {})
    with db.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("insert into {} values ('mine', 'N1', '2001-01-01', 1)").format(
                db.qualified(config.RAW_DRAWS_TABLE)
            )
        )

    assert _freshness(tmp_path)["status"] == "pass"
