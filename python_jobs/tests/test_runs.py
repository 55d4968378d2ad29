"""Run history: one pipeline_runs row per stage, written on success and on failure; a database
with the table's earlier name (loto_runs) is renamed in place on first use, rows kept."""

from __future__ import annotations

import time

import pytest
from psycopg import sql

from python_jobs import cli, config, db, pipeline, runs, settings


def _rows(url: str) -> list[tuple]:
    with db.connect(url) as conn:
        query = sql.SQL(
            "select run_id, stage, what, rows, seconds, outcome, error from {} order by started_at"
        ).format(db.qualified(runs.RUNS_TABLE))
        return list(conn.execute(query).fetchall())


@pytest.fixture
def run_id(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(runs.RUN_ID_ENV, "test-run-1")
    return "test-run-1"


def test_record_writes_one_row_per_stage(fresh_schema, pg_url: str, run_id: str):
    fresh_schema("runs")
    with runs.record("ingest", what="loto6 loto6.json", url=pg_url) as stage:
        time.sleep(0.05)
        stage.rows = 12
    with runs.record("dbt build marts", url=pg_url):
        pass
    rows = _rows(pg_url)
    assert [(r[0], r[1], r[2], r[3], r[5], r[6]) for r in rows] == [
        (run_id, "ingest", "loto6 loto6.json", 12, "ok", None),
        (run_id, "dbt build marts", None, None, "ok", None),
    ]
    assert rows[0][4] >= 0.05


def test_a_failing_stage_is_recorded_and_still_raises(fresh_schema, pg_url: str, run_id: str):
    fresh_schema("runsfail")
    with pytest.raises(RuntimeError, match="boom"), runs.record("python feature job", url=pg_url):
        raise RuntimeError("boom at postgresql://app:hunter2@db/loto")
    (row,) = _rows(pg_url)
    assert row[5] == "failed"
    assert row[6] == "RuntimeError: boom at postgresql://app:***@db/loto"


def test_a_down_database_does_not_fail_the_stage(run_id: str):
    done = []
    with runs.record("ingest", url="postgresql://nobody@127.0.0.1:1/none") as stage:
        done.append(True)
        stage.rows = 1
    assert done == [True]


def test_ingest_command_records_rows_and_failures(fresh_schema, pg_url: str, run_id: str, tmp_path, capsys):
    fresh_schema("runsingest")
    assert cli.main(["ingest", "--loto", "loto6", str(config.RAW_DATA_DIR / "loto6.json")]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("loto,unique_id,ds,y\nmine,N1,2020-01-01,not-a-number\n", encoding="utf-8")
    assert cli.main(["ingest", "--loto", "mine", str(bad)]) == 2
    capsys.readouterr()
    first, second = _rows(pg_url)
    with db.connect(pg_url) as conn:
        loaded = conn.execute(
            sql.SQL("select count(*) from {}").format(db.qualified(config.RAW_DRAWS_TABLE))
        ).fetchone()
    assert (first[1], first[2], first[3], first[5]) == ("ingest", "loto6 loto6.json", loaded[0], "ok")
    assert (second[1], second[2], second[3], second[5]) == ("ingest", "mine bad.csv", None, "failed")
    assert "line 2" in second[6]


def test_stage_timer_records_each_stage(fresh_schema, pg_url: str, run_id: str):
    fresh_schema("runstimer")
    timer = pipeline.StageTimer()
    timer.run("database", lambda: pg_url)
    with pytest.raises(ValueError):
        timer.run("dbt build marts", lambda: (_ for _ in ()).throw(ValueError("bad model")))
    rows = _rows(pg_url)
    assert [(r[1], r[2], r[5]) for r in rows] == [
        ("database", "demo", "ok"),
        ("dbt build marts", "demo", "failed"),
    ]


def test_runs_command_shows_the_last_runs(fresh_schema, pg_url: str, monkeypatch, capsys):
    fresh_schema("runscmd")
    assert cli.main(["runs"]) == 0
    assert "no runs recorded yet" in capsys.readouterr().out
    for number in range(3):
        monkeypatch.setenv(runs.RUN_ID_ENV, f"run-{number}")
        with runs.record("ingest", what=f"file{number}.csv", url=pg_url) as stage:
            stage.rows = 1000 * (number + 1)
        with runs.record("dbt build marts", url=pg_url):
            pass
    assert cli.main(["runs", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "started", "(UTC)", "stage", "what", "rows", "seconds", "outcome"]
    # Newest run first, its stages in order; the oldest run is past the limit.
    assert [line.split()[0] for line in lines[1:]] == ["run-2", "run-2", "run-1", "run-1"]
    assert "file2.csv" in lines[1] and "3,000" in lines[1]
    assert "run-0" not in "\n".join(lines)


def test_runs_against_a_down_database(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@127.0.0.1:1/none")
    settings.patch(None)
    assert cli.main(["runs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "hunter2" not in err


# The table as it was first created, under its earlier name, before the 'warn' outcome.
_LEGACY_DDL = """
create table {table} (
    run_id text not null, stage text not null, what text, rows bigint,
    seconds double precision not null,
    outcome text not null check (outcome in ('ok', 'failed')),
    error text, started_at timestamptz not null
)
"""


def _make_legacy_table(url: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL(_LEGACY_DDL).format(table=db.qualified("loto_runs")))
        conn.execute(
            sql.SQL("insert into {} values ('old-run', 'ingest', 'a.csv', 7, 0.5, 'ok', null, now())").format(
                db.qualified("loto_runs")
            )
        )


def _constraints(url: str, schema: str) -> list[tuple[str, str]]:
    with db.connect(url) as conn:
        return list(
            conn.execute(
                "select cls.relname, con.conname from pg_constraint as con "
                "inner join pg_class as cls on cls.oid = con.conrelid "
                "inner join pg_namespace as nsp on nsp.oid = cls.relnamespace where nsp.nspname = %s",
                (schema,),
            ).fetchall()
        )


def test_an_old_loto_runs_table_is_renamed_in_place_with_its_rows(fresh_schema, pg_url: str, run_id: str):
    schema = fresh_schema("runslegacy")
    _make_legacy_table(pg_url)
    assert _constraints(pg_url, schema) == [("loto_runs", "loto_runs_outcome_check")]
    with runs.record("dbt build marts", url=pg_url) as stage:
        stage.warn("1 test warned")
    rows = _rows(pg_url)
    assert [(r[0], r[1], r[5]) for r in rows] == [
        ("old-run", "ingest", "ok"),
        (run_id, "dbt build marts", "warn"),
    ]
    with db.connect(pg_url) as conn:
        assert not db.table_exists(conn, "loto_runs")
    # The constraint is renamed with the table, then widened to take 'warn'.
    assert _constraints(pg_url, schema) == [("pipeline_runs", "pipeline_runs_outcome_check")]
    with db.connect(pg_url, autocommit=True) as conn:
        assert runs.migrate_legacy(conn) is False


def test_the_runs_command_reads_an_old_loto_runs_table(fresh_schema, pg_url: str, capsys):
    fresh_schema("runslegacycmd")
    _make_legacy_table(pg_url)
    assert cli.main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "old-run" in out and "a.csv" in out
    assert [r[0] for r in _rows(pg_url)] == ["old-run"]
