"""``build`` on a user's own file: no sample data, dbt's order, warnings named and recorded.

The file is a long-format CSV made from the first draws of the bundled Loto6 results under a
lottery name of the user's; one draw is unreadable and skipped (``--skip-bad-rows``), which
leaves a gap in the draw numbers that dbt's ``continuous_draw_numbers`` test warns about.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from psycopg import sql

from python_jobs import cli, config, db, pipeline, runs

pytestmark = [pytest.mark.slow, pytest.mark.dbt]

DRAWS = 40
BAD_DRAW = 20  # 0-based: its three lines are unreadable
SERIES = ("N1", "N2", "N3")


def _long_file(tmp_path: Path) -> Path:
    draws = json.loads((config.RAW_DATA_DIR / "loto6.json").read_text(encoding="utf-8"))[:DRAWS]
    lines = ["loto,unique_id,ds,y,num"]
    for index, draw in enumerate(draws):
        for position, uid in enumerate(SERIES, start=1):
            y = "unreadable" if index == BAD_DRAW else str(int(draw[f"第{position}数字"]))
            lines.append(f"mine,{uid},{draw['日付'].replace('/', '-')},{y},{draw['開催回']}")
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _scalar(url: str, query: str, table: str) -> object:
    with db.connect(url) as conn:
        return conn.execute(sql.SQL(query).format(db.qualified(table))).fetchone()[0]


def test_build_on_a_users_file_loads_no_samples_and_names_the_dbt_warning(
    fresh_schema, pg_url: str, tmp_path: Path, capsys, monkeypatch
):
    fresh_schema("build")
    monkeypatch.setenv(runs.RUN_ID_ENV, "build-test-ingest")
    assert cli.main(["ingest", "--loto", "mine", str(_long_file(tmp_path)), "--skip-bad-rows"]) == 0
    monkeypatch.setenv(runs.RUN_ID_ENV, "build-test")
    assert cli.main(["build", "--device", "cpu"]) == 0
    out = capsys.readouterr().out

    # Only the user's lottery: build loaded none of the bundled files.
    with db.connect(pg_url) as conn:
        lotteries = conn.execute(
            sql.SQL("select distinct loto from {}").format(db.qualified(config.RAW_DRAWS_TABLE))
        ).fetchall()
    assert lotteries == [("mine",)]
    staged = (DRAWS - 1) * len(SERIES)
    assert _scalar(pg_url, "select count(*) from {}", config.STAGING_MODEL) == staged
    assert _scalar(pg_url, "select count(*) from {}", "features_hist") == staged
    assert _scalar(pg_url, "select count(*) from {}", "features_stat") == len(SERIES)
    assert _scalar(pg_url, "select count(*) from {} where hist_y_roll_median_w3 is not null", "features_hist")

    # The stages ran in dbt's order, one line each, and the summary names the warning.
    order = ["dbt build seeds+staging", "python feature job", "dbt build marts", "materialize"]
    positions = [out.index(f"  {name} ") for name in order]
    assert positions == sorted(positions), out
    assert "warnings (1):" in out
    assert "continuous_draw_numbers_stg_lottery__draws_num" in out
    assert "`loto-features rejects`" in out

    # Every stage has a row count; the one dbt warned in is `warn`, not `ok`.
    recorded = {row[2]: row for row in runs.last_runs(1) if row[0] == "build-test"}
    assert list(recorded) == order
    assert all(row[4] is not None for row in recorded.values()), recorded
    assert recorded["dbt build seeds+staging"][6] == "warn"
    assert "continuous_draw_numbers" in recorded["dbt build seeds+staging"][7]
    assert recorded["dbt build marts"][6] == "ok"
    assert cli.main(["runs", "--limit", "1"]) == 0
    assert "warn: continuous_draw_numbers_stg_lottery__draws_num (dbt test" in capsys.readouterr().out

    # The skipped lines, newest first, with line number, reason and the raw text.
    assert cli.main(["rejects", "--loto", "mine", "--limit", "2"]) == 0
    listed = capsys.readouterr().out.splitlines()
    first_bad_line = 2 + BAD_DRAW * len(SERIES)
    assert len(listed) == 4
    assert f"mine.csv:{first_bad_line}  unparseable number" in listed[0]
    assert "unreadable" in listed[1]
    assert cli.main(["rejects", "--loto", "loto6"]) == 0
    assert "no rejected lines for loto6" in capsys.readouterr().out


def test_dbt_outcome_reads_counts_and_warnings(tmp_path: Path):
    results = {
        "results": [
            {"unique_id": "model.loto_features.stg_lottery__draws", "status": "success"},
            {"unique_id": "test.loto_features.not_null_x.abc", "status": "pass"},
            {
                "unique_id": "test.loto_features.continuous_draw_numbers_x.0123",
                "status": "warn",
                "message": "Got 1 result, configured to warn if != 0",
            },
        ]
    }
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    outcome = pipeline.dbt_outcome(path)
    assert outcome.detail == "1 models, 2 tests; 1 warning"
    assert outcome.warnings == [
        "continuous_draw_numbers_x (dbt test, severity warn): Got 1 result, configured to warn if != 0"
    ]


def test_demo_output_stays_short(demo_run):
    """The session's demo (a process, on the bundled data) printed one line per stage and the
    summary: well under 60 lines, no log lines, no traceback."""
    lines = demo_run.stdout.splitlines()
    assert len(lines) < 60, demo_run.stdout
    for name in ("ingest", "dbt build seeds+staging", "python feature job", "dbt build marts", "materialize"):
        assert any(line.startswith(f"  {name} ") for line in lines), name
    assert "stage.start" not in demo_run.stderr and "job.family_done" not in demo_run.stderr
    assert "Traceback" not in demo_run.stdout + demo_run.stderr
    assert "loto-features report --loto loto6" in demo_run.stdout
    assert "python -m python_jobs" not in demo_run.stdout


#: Each mart's grain, as its YAML documents it.
MART_GRAINS = {
    "features_hist": ["loto", "unique_id", "ds"],
    "features_futr": ["loto", "unique_id", "ds"],
    "features_stat": ["loto", "unique_id"],
    "features_stat_history": ["loto", "unique_id", "as_of"],
}


def test_demo_marts_are_keyed_on_their_grain(demo_schema: str, pg_url: str):
    """Each mart's primary key is its grain (added after the load); the evaluator's exceptions
    seed is loaded beside the evaluator, not among the marts."""
    with db.connect(pg_url) as conn:
        keys = dict(
            conn.execute(
                """
                select table_class.relname, array_agg(attribute.attname order by key.position)
                from pg_constraint as pk
                inner join pg_class as table_class on pk.conrelid = table_class.oid
                cross join unnest(pk.conkey) with ordinality as key (attnum, position)
                inner join pg_attribute as attribute
                    on attribute.attrelid = pk.conrelid and attribute.attnum = key.attnum
                where pk.contype = 'p' and pk.connamespace = %s::regnamespace
                group by table_class.relname
                """,
                (demo_schema,),
            ).fetchall()
        )
        seeded = conn.execute(
            "select table_schema from information_schema.tables"
            " where table_name = 'dbt_project_evaluator_exceptions' and table_schema in (%s, %s)",
            (demo_schema, f"{demo_schema}_evaluator"),
        ).fetchall()
    assert {mart: keys.get(mart) for mart in MART_GRAINS} == MART_GRAINS
    assert seeded == [(f"{demo_schema}_evaluator",)]


def test_a_runs_table_made_before_warn_existed_accepts_it(fresh_schema, pg_url: str, monkeypatch):
    fresh_schema("runswarn")
    with db.connect(pg_url, autocommit=True) as conn:
        db.ensure_schema(conn)
        old = runs._DDL.replace("'ok', 'warn', 'failed'", "'ok', 'failed'")
        conn.execute(sql.SQL(old).format(table=db.qualified(runs.RUNS_TABLE)))
    monkeypatch.setenv(runs.RUN_ID_ENV, "warn-run")
    with runs.record("dbt build marts", url=pg_url) as stage:
        stage.rows = 5
        stage.warn("dbt test x warned: Got 1 result")
    (row,) = runs.last_runs(1, url=pg_url)
    assert (row[2], row[4], row[6], row[7]) == (
        "dbt build marts",
        5,
        "warn",
        "dbt test x warned: Got 1 result",
    )
