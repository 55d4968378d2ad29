"""Runtime settings: the bundled files, and the target schema refused unless a plain identifier."""

from __future__ import annotations

import pytest

from python_jobs import config


def test_bundled_files_are_shipped():
    for _, path in config.BUNDLED_FILES:
        assert path.exists() and path.stat().st_size > 10_000


@pytest.mark.parametrize("schema", ["public", "features", "_x1", "t_job_0a1b2c3d", "a" * 63])
def test_plain_schema_names_are_accepted(monkeypatch, schema):
    monkeypatch.setenv("DBT_SCHEMA", schema)
    assert config.target_schema() == schema


def test_unset_or_empty_schema_is_public(monkeypatch):
    monkeypatch.delenv("DBT_SCHEMA", raising=False)
    assert config.target_schema() == "public"
    monkeypatch.setenv("DBT_SCHEMA", "")
    assert config.target_schema() == "public"


@pytest.mark.parametrize(
    "schema",
    [
        'evil"; drop table x; --',
        'a"b',
        "Features",
        "1st",
        "has space",
        "dash-ed",
        "a" * 64,
        "ü",
        "pg_catalog",
        "information_schema",
        "pg_toast",
        "pg_x",
    ],
)
def test_other_schema_names_are_one_clear_error(monkeypatch, schema):
    monkeypatch.setenv("DBT_SCHEMA", schema)
    with pytest.raises(config.ConfigError, match=r"DBT_SCHEMA=.* is not a usable schema name"):
        config.target_schema()


def test_command_line_refuses_a_quoted_schema_with_exit_2(monkeypatch, capsys):
    from python_jobs.cli import main

    monkeypatch.setenv("DBT_SCHEMA", 'x"y')
    assert main(["features", "--no-progress", "--families", "spectral"]) == 2
    err = capsys.readouterr().err
    assert "is not a usable schema name" in err and "Traceback" not in err
