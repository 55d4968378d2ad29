"""The password never shows, and a hostile schema name never reaches SQL."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from python_jobs import config, db, dbt
from python_jobs.identifiers import InvalidIdentifier, validate_schema
from python_jobs.redact import mask_url, redact
from python_jobs.tests.ingest_files import BINGO5, bingo5_lines, replace_field, write_lines

PASSWORD = 'S3cr"et\\pw'
ROLE = "loto_pw_test"


def test_mask_url_masks_every_form():
    assert mask_url("postgresql://u:p%40ss@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert mask_url("postgresql://u:a@b@h/d") == "postgresql://u:***@h/d"
    assert mask_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert mask_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert "secret" not in redact("host=h password=secret dbname=d")


@pytest.mark.parametrize("name", ['x"; drop table y; --', "Upper", "", "1abc", "a" * 64, "a-b", "ä"])
def test_schema_names_are_validated(name):
    with pytest.raises(InvalidIdentifier, match="not a usable schema name"):
        validate_schema(name)


def test_hostile_schema_is_refused_before_any_sql(pg_url):
    hostile = 'x"; create table pwned (i int); --'
    env = {**os.environ, "DATABASE_URL": pg_url, "DBT_SCHEMA": hostile}
    for args in (["ingest", "--loto", "bingo5", str(BINGO5)], ["profile"]):
        proc = subprocess.run(
            [sys.executable, "-m", "python_jobs", *args], capture_output=True, text=True, env=env, check=False
        )
        assert proc.returncode == 2, proc.stderr
        assert "not a usable schema name" in proc.stderr and "Traceback" not in proc.stderr
    with db.connect(pg_url) as conn:
        assert conn.execute("select to_regclass('pwned') is null").fetchone()[0]


@pytest.fixture
def password_url(pg_url: str) -> str:
    """The test server's URL for a role whose password holds a quote and a backslash."""
    with db.connect(pg_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (ROLE,)).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(
            sql.SQL("{} role {} login password {}").format(
                sql.SQL(verb), sql.Identifier(ROLE), sql.Literal(PASSWORD)
            )
        )
        dbname = conn.info.dbname
        conn.execute(
            sql.SQL("grant create on database {} to {}").format(sql.Identifier(dbname), sql.Identifier(ROLE))
        )
    params = conninfo_to_dict(pg_url)
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    auth = f"{ROLE}:{quote(PASSWORD, safe='')}"
    if host.startswith("/"):
        return f"postgresql://{auth}@/{dbname}?host={quote(host)}&port={port}"
    return f"postgresql://{auth}@{host}:{port}/{dbname}"


def _run(code_or_args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *code_or_args], capture_output=True, text=True, env=env, check=False, timeout=300
    )


@pytest.fixture
def kept_profile():
    """The repository's profiles.yml as it was before the test (the test renders its own)."""
    path = config.REPO_ROOT / "profiles.yml"
    before = path.read_bytes() if path.exists() else None
    yield path
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)
        path.chmod(0o600)


def test_password_appears_nowhere(pg_url, password_url, tmp_path, kept_profile):
    schema = f"t_pw_{uuid.uuid4().hex[:8]}"
    logs, target = tmp_path / "logs", tmp_path / "target"
    env = {
        **os.environ,
        "DATABASE_URL": password_url,
        "DBT_SCHEMA": schema,
        "DBT_LOG_PATH": str(logs),
        "DBT_TARGET_PATH": str(target),
        "LOG_LEVEL": "DEBUG",
    }
    bad = bingo5_lines()
    bad[4] = replace_field(bad[4], 3, "99")
    bad_file = write_lines(tmp_path, bad)
    runs = [
        _run(["-m", "python_jobs", "db", "url"], env),
        _run(["-m", "python_jobs", "db", "start"], env),
        _run(["-m", "python_jobs", "ingest", "--loto", "bingo5", str(BINGO5)], env),
        _run(["-m", "python_jobs", "ingest", "--loto", "bingo5", str(bad_file)], env),
        _run(["-m", "python_jobs", "profile"], env),
        _run(["-c", "from python_jobs import dbt; dbt.run(['seed', '--select', 'loto_spec'])"], env),
        # A server that is down: retry warnings and the final error.
        _run(
            ["-m", "python_jobs", "ingest", "--loto", "bingo5", str(BINGO5)],
            {
                **env,
                # Nothing listens on port 1 (the test server may be on a unix socket).
                "DATABASE_URL": f"postgresql://{ROLE}:{quote(PASSWORD, safe='')}@127.0.0.1:1/postgres",
            },
        ),
        # A malformed URL.
        _run(
            ["-m", "python_jobs", "ingest", "--loto", "bingo5", str(BINGO5)],
            {**env, "DATABASE_URL": password_url + "&bogus_option=1"},
        ),
    ]
    try:
        assert [proc.returncode for proc in runs] == [0, 0, 0, 2, 0, 0, 2, 2], [
            proc.stderr[-800:] for proc in runs
        ]
        assert "***" in runs[0].stdout and ROLE in runs[0].stdout
        texts = [proc.stdout + proc.stderr for proc in runs]
        profile = kept_profile
        texts.append(profile.read_text(encoding="utf-8"))
        assert stat.S_IMODE(profile.stat().st_mode) == 0o600
        files = [path for folder in (logs, target) for path in folder.rglob("*") if path.is_file()]
        assert files, "dbt wrote no logs or artefacts to check"
        texts += [path.read_text(encoding="utf-8", errors="replace") for path in files]
        for needle in (PASSWORD, quote(PASSWORD, safe=""), "S3cr"):
            leaks = [index for index, text in enumerate(texts) if needle in text]
            assert not leaks, f"{needle!r} in outputs/files {leaks}"
        assert "Traceback" not in "".join(texts[:8])
    finally:
        with db.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def test_profile_template_reads_the_password_at_run_time(tmp_path):
    text = (config.REPO_ROOT / "profiles.yml.template").read_text(encoding="utf-8")
    assert "env_var('LOTO_PGPASSWORD', '')" in text and "${password}" not in text
    path = dbt.render_profile("postgresql://a:b%22c@h:5/d", path=tmp_path / "p.yml")
    assert 'b"c' not in path.read_text() and stat.S_IMODE(Path(path).stat().st_mode) == 0o600
