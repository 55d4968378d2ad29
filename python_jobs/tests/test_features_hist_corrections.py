"""features_hist after a correction of the raw draws: the next incremental run leaves the mart
equal, row for row and bit for bit, to a full refresh.

Each kind of correction a user makes by re-ingesting a fixed file is applied to the raw table
of the bundled real data: a number of an old draw changed (its other positions' draw-level
columns and the later gap, frequency and streak columns of both values change with it), a draw
moved to another date (past the next draw of its lottery, so the order changes), and deleted
draws. Between the corrections the Python job's table is rewritten for the corrected draws, as
the job would, so rows whose job values changed are recomputed as well.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from psycopg import sql

from python_jobs import config, db
from python_jobs.tests.test_features_hist import (
    _assert_identical,
    _build,
    _execute,
    _ingest_bundled,
    _mart,
    _read,
    _run_staging,
    _write_python_job_values,
)

pytestmark = pytest.mark.dbt

# An early Loto6 row that no correction below reaches: an incremental run must not rewrite it.
# ds is a timestamp (draws at midnight).
MARKER = ("loto6", "N1", pd.Timestamp(2001, 1, 4))


def _raw(schema: str) -> sql.Composable:
    return db.qualified(config.RAW_DRAWS_TABLE, schema)


def _loto6_draw(url: str, schema: str, index: int) -> pd.DataFrame:
    """The rows of the index-th Loto6 draw (0-based, in date order)."""
    return _read(
        url,
        schema,
        "select unique_id, ds, y from stg_lottery__draws where loto = 'loto6' and ds = ("
        "select distinct ds from stg_lottery__draws where loto = 'loto6' "
        f"order by ds offset {index} limit 1) order by unique_id",
    )


def _correct_a_number(url: str, schema: str) -> None:
    """N3 of an old draw goes up by one, where that keeps the draw ascending and free of repeats."""
    for index in range(1200, 1400):
        draw = _loto6_draw(url, schema, index).set_index("unique_id")["y"].astype(int)
        new_value = draw["N3"] + 1
        if new_value < draw["N4"] and new_value not in set(draw):
            ds = _loto6_draw(url, schema, index)["ds"].iloc[0]
            statement = sql.SQL("update {} set y = %s where loto = 'loto6' and unique_id = 'N3' and ds = %s")
            _execute(url, statement.format(_raw(schema)), (int(new_value), ds))
            return
    raise AssertionError("no Loto6 draw found whose N3 can be corrected")


def _move_a_draw(url: str, schema: str) -> None:
    """A Monday draw moves to the Friday after, past the Thursday draw between them."""
    draws = _read(url, schema, "select distinct ds from stg_lottery__draws where loto = 'loto6' order by ds")
    dates = set(draws["ds"])
    monday = next(
        ds for ds in draws["ds"].iloc[1500:] if ds.weekday() == 0 and ds + dt.timedelta(days=3) in dates
    )
    friday = monday + dt.timedelta(days=4)
    assert friday not in dates
    statement = sql.SQL("update {} set ds = %s where loto = 'loto6' and ds = %s")
    _execute(url, statement.format(_raw(schema)), (friday, monday))


def _delete_draws(url: str, schema: str) -> None:
    """One old Loto6 draw and one Bingo5 draw are deleted, every position of each."""
    loto6 = _loto6_draw(url, schema, 900)["ds"].iloc[0]
    bingo5 = _read(
        url, schema, "select distinct ds from stg_lottery__draws where loto = 'bingo5' order by ds"
    )
    statement = sql.SQL("delete from {} where (loto = 'loto6' and ds = %s) or (loto = 'bingo5' and ds = %s)")
    _execute(url, statement.format(_raw(schema)), (loto6, bingo5["ds"].iloc[200]))


def _set_marker(url: str, schema: str, value: float | None) -> None:
    statement = sql.SQL("update {} set hist_y_drawdown = %s where loto = %s and unique_id = %s and ds = %s")
    _execute(url, statement.format(db.qualified("features_hist", schema)), (value, *MARKER))


@pytest.fixture(scope="module")
def corrected_schema(pg_url: str):
    """A schema with the bundled data built once; the corrections then apply in turn."""
    import uuid

    schema = f"t_hist_fix_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SCHEMA", schema)
        _execute(pg_url, sql.SQL("create schema {}").format(sql.Identifier(schema)))
        try:
            _ingest_bundled(pg_url)
            _write_python_job_values(pg_url, schema)
            _build(pg_url)
            yield schema
        finally:
            _execute(pg_url, sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


@pytest.mark.parametrize(
    "correct",
    [_correct_a_number, _move_a_draw, _delete_draws],
    ids=["number-changed", "date-changed", "draws-deleted"],
)
def test_incremental_run_after_a_correction_equals_a_full_refresh(
    pg_url, corrected_schema, monkeypatch, correct
):
    schema = corrected_schema
    monkeypatch.setenv("DBT_SCHEMA", schema)
    before = _mart(pg_url, schema)
    original = before.loc[MARKER, "hist_y_drawdown"]
    # A sentinel in a row that the correction does not reach: the incremental run keeps it.
    _set_marker(pg_url, schema, -1.0)

    correct(pg_url, schema)
    _run_staging(pg_url)
    _write_python_job_values(pg_url, schema)
    _build(pg_url)
    incremental = _mart(pg_url, schema)
    assert incremental.loc[MARKER, "hist_y_drawdown"] == -1.0, "the incremental run rebuilt untouched rows"
    _set_marker(pg_url, schema, original)
    incremental = _mart(pg_url, schema)

    _build(pg_url, "--full-refresh")
    full = _mart(pg_url, schema)
    # The correction changed the mart (the check is not vacuous)...
    assert not before.index.equals(full.index) or not before.equals(full)
    # ...and the incremental run reached every row it changed, and removed the gone ones.
    _assert_identical(incremental, full)
