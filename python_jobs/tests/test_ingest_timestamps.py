"""ds as a timestamp: the forms a long file may give, the sanity window, a known lottery kept at
midnight, and tables made while ds was a date converted in place."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from psycopg import sql

from python_jobs import config, db
from python_jobs.ingest import IngestError, ingest_file
from python_jobs.ingest.load import ensure_tables, migrate_draws_ds
from python_jobs.ingest.values import FUTURE_DAYS_ALLOWED, parse_timestamp, shown_timestamp
from python_jobs.job import tables


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2000-06-05", dt.datetime(2000, 6, 5)),
        ("2000/6/5", dt.datetime(2000, 6, 5)),
        ("2017年4月5日", dt.datetime(2017, 4, 5)),
        ("20170405", dt.datetime(2017, 4, 5)),
        ("2000-06-05 00:30:00", dt.datetime(2000, 6, 5, 0, 30)),
        ("2000-06-05 00:30", dt.datetime(2000, 6, 5, 0, 30)),
        ("2000-06-05T00:30:00", dt.datetime(2000, 6, 5, 0, 30)),
        ("2000-06-05T00:30", dt.datetime(2000, 6, 5, 0, 30)),
        ("2000-06-05T00:30:00.25", dt.datetime(2000, 6, 5, 0, 30, 0, 250000)),
        ("2000-06-05T00:30:00Z", dt.datetime(2000, 6, 5, 0, 30)),
        ("2000-06-05t00:30z", dt.datetime(2000, 6, 5, 0, 30)),
        ("2000-06-05T09:30:00+09:00", dt.datetime(2000, 6, 5, 0, 30)),
        ("2000-06-05T09:30+0900", dt.datetime(2000, 6, 5, 0, 30)),
        ("2000-06-04T19:30:00-05", dt.datetime(2000, 6, 5, 0, 30)),
        ("2000-06-05T08:00:00+09:00", dt.datetime(2000, 6, 4, 23, 0)),
        ("２０００-０６-０５ ００:３０", dt.datetime(2000, 6, 5, 0, 30)),
    ],
)
def test_timestamp_forms(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2000-06-05 24:00", "2000-06-05 12:60", "2000-02-30 00:00", "2000-06-05T00:30+19:00", "noon", ""],
)
def test_impossible_timestamps_are_refused(text):
    assert parse_timestamp(text) is None


def test_midnight_is_shown_as_the_date_alone():
    assert shown_timestamp(dt.datetime(2000, 6, 5)) == "2000-06-05"
    assert shown_timestamp(dt.datetime(2000, 6, 5, 0, 30)) == "2000-06-05 00:30:00"


def _raw(url: str, loto: str) -> list[tuple]:
    with db.connect(url) as conn:
        return conn.execute(
            sql.SQL("select unique_id, ds from {} where loto = %s order by unique_id, ds").format(
                db.qualified(config.RAW_DRAWS_TABLE)
            ),
            (loto,),
        ).fetchall()


def test_a_users_series_keeps_its_times_and_the_sanity_window_stays(pg_url, fresh_schema, tmp_path):
    fresh_schema("ts_window")
    late = dt.datetime.now() + dt.timedelta(days=FUTURE_DAYS_ALLOWED + 2)
    path = tmp_path / "demand.csv"
    path.write_text(
        "loto,unique_id,ds,y\n"
        "grid,demand,2000-06-05 00:00,10\n"
        "grid,demand,2000-06-05 00:30,11\n"
        "grid,demand,1899-12-31T23:30:00Z,9\n"
        f"grid,demand,{late:%Y-%m-%dT%H:%M},12\n",
        encoding="utf-8",
    )
    with pytest.raises(IngestError) as caught:
        ingest_file("grid", path, url=pg_url)
    reasons = {problem.line: problem.reason for problem in caught.value.problems}
    assert sorted(reasons) == [4, 5]
    assert "before 1900-01-01" in reasons[4]
    assert f"more than {FUTURE_DAYS_ALLOWED} days after today" in reasons[5]
    ingest_file("grid", path, url=pg_url, skip_bad_rows=True)
    assert _raw(pg_url, "grid") == [
        ("demand", dt.datetime(2000, 6, 5, 0, 0)),
        ("demand", dt.datetime(2000, 6, 5, 0, 30)),
    ]


def test_a_lottery_is_dated_by_day(pg_url, fresh_schema, tmp_path):
    """A known lottery's long file with a time of day: stored at midnight, as the Japanese
    files' dates are; the same draw given twice at two times is one draw twice."""
    fresh_schema("ts_lottery")
    numbers = [("N1", 1), ("N2", 2), ("N3", 3), ("N4", 4), ("N5", 5), ("N6", 6), ("B1", 7)]
    lines = ["loto,unique_id,ds,y"] + [f"loto6,{uid},2020-01-06T18:45:00,{y}" for uid, y in numbers]
    path = tmp_path / "loto6_long.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest_file("loto6", path, url=pg_url)
    stored = _raw(pg_url, "loto6")
    assert {ds for _, ds in stored} == {dt.datetime(2020, 1, 6)} and len(stored) == 7
    path.write_text("\n".join([*lines, "loto6,N1,2020-01-06 20:00,1"]) + "\n", encoding="utf-8")
    with pytest.raises(IngestError) as caught:
        ingest_file("loto6", path, url=pg_url)
    assert "duplicate draw: loto6 N1 on 2020-01-06 is already on line 2" in str(caught.value)


def _column_type(url: str, table: str, column: str) -> str:
    with db.connect(url) as conn:
        row = conn.execute(
            "select data_type from information_schema.columns "
            "where table_schema = %s and table_name = %s and column_name = %s",
            (config.target_schema(), table, column),
        ).fetchone()
    return row[0]


def test_a_date_draws_table_is_migrated_in_place_once(pg_url, fresh_schema):
    """A raw table from before timestamps, with a view over it: converted to midnight
    timestamps, the view kept and reading them, and nothing done the second time."""
    fresh_schema("ts_migrate")
    raw = db.qualified(config.RAW_DRAWS_TABLE)
    view = db.qualified("raw_draw_days")
    with db.connect(pg_url) as conn:
        conn.execute(
            sql.SQL(
                "create table {} (loto text not null, unique_id text not null, ds date not null, "
                "y numeric not null, num integer, co bigint, source_file text, "
                "loaded_at timestamptz not null default now(), primary key (loto, unique_id, ds))"
            ).format(raw)
        )
        conn.execute(
            sql.SQL("insert into {} (loto, unique_id, ds, y) values ('mine', 'a', '2001-02-03', 1)").format(
                raw
            )
        )
        conn.execute(sql.SQL("create view {} as select loto, ds from {}").format(view, raw))
        conn.commit()
        assert _column_type(pg_url, config.RAW_DRAWS_TABLE, "ds") == "date"
        ensure_tables(conn)
        conn.commit()
        assert _column_type(pg_url, config.RAW_DRAWS_TABLE, "ds") == "timestamp without time zone"
        assert _column_type(pg_url, "raw_draw_days", "ds") == "timestamp without time zone"
        assert conn.execute(sql.SQL("select ds from {}").format(view)).fetchall() == [
            (dt.datetime(2001, 2, 3),)
        ]
        assert migrate_draws_ds(conn) is False
        # The primary key survived: the same key again is refused.
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                sql.SQL(
                    "insert into {} (loto, unique_id, ds, y) values ('mine', 'a', '2001-02-03', 2)"
                ).format(raw)
            )


def test_the_jobs_date_tables_are_migrated(pg_url, fresh_schema):
    """py_features_hist.ds and py_job_state.max_ds made as dates, with dbt's staging view
    over py_features_hist: the job's table check converts them and keeps the view."""
    fresh_schema("ts_job_migrate")
    hist = db.qualified(tables.HIST_TABLE)
    state = db.qualified(tables.STATE_TABLE)
    with db.connect(pg_url) as conn:
        db.ensure_schema(conn)
        conn.execute(
            sql.SQL(
                "create table {} (loto text not null, unique_id text not null, ds date not null, "
                "computed_at timestamptz, primary key (loto, unique_id, ds))"
            ).format(hist)
        )
        conn.execute(
            sql.SQL(
                "create table {} (loto text not null, unique_id text not null, family text not null, "
                "feature_version text not null, n_rows integer not null, max_ds date, checksum text, "
                "status text not null, run_id text, computed_at timestamptz not null, "
                "primary key (loto, unique_id, family))"
            ).format(state)
        )
        conn.execute(
            sql.SQL("insert into {} (loto, unique_id, ds) values ('x', 'a', '2001-02-03')").format(hist)
        )
        conn.execute(
            sql.SQL("create view {} as select * from {}").format(
                db.qualified("stg_python__features_hist"), hist
            )
        )
        conn.commit()
    with db.connect(pg_url) as conn:
        tables.ensure_tables(conn, [], [])
    assert _column_type(pg_url, tables.HIST_TABLE, "ds") == "timestamp without time zone"
    assert _column_type(pg_url, tables.STATE_TABLE, "max_ds") == "timestamp without time zone"
    assert _column_type(pg_url, "stg_python__features_hist", "ds") == "timestamp without time zone"
