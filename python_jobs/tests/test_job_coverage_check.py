"""The data test that warns when a Python job table is behind staging (the generic test
``python_job_covers_staging``), on the keys of the bundled loto6 draws, against the set
differences of those keys computed in Python.
"""

from __future__ import annotations

import subprocess
from collections import Counter

import pandas as pd
import pytest
from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.ingest import parse_file

pytestmark = pytest.mark.dbt

COLUMNS = ("loto", "unique_id", "ds")


def _draw_keys() -> pd.DataFrame:
    loto, path = config.BUNDLED_FILES[0]
    frame = pd.concat(chunk.draws for chunk in parse_file(path, loto).chunks())
    keys = frame.loc[:, list(COLUMNS)].reset_index(drop=True)
    keys["ds"] = pd.to_datetime(keys["ds"])
    return keys


def _write(url: str, schema: str, table: str, keys: pd.DataFrame) -> None:
    target = sql.Identifier(schema, table)
    with db.connect(url) as conn:
        conn.execute(sql.SQL("create table {} (loto text, unique_id text, ds timestamp)").format(target))
        with conn.cursor().copy(sql.SQL("copy {} (loto, unique_id, ds) from stdin").format(target)) as copy:
            for row in keys.itertuples(index=False, name=None):
                copy.write_row(row)
        conn.commit()


def _stale_rows(url: str, schema: str, job_table: str, grain: list[str]) -> dict[tuple, tuple[int, int]]:
    """The test's failing rows, (loto, unique_id) -> (keys missing, keys not staged)."""
    call = (
        "{{ test_python_job_covers_staging(model=api.Relation.create(database=target.database, "
        f"schema=target.schema, identifier='{job_table}'), staged='\"{schema}\".\"staged\"', "
        f"grain={grain}, job_table='{job_table}') }}}}"
    )
    dbt.render_profile(url)
    compiled = subprocess.run(
        [dbt.dbt_executable(), "compile", "--quiet", "--inline", call],
        capture_output=True,
        text=True,
        cwd=config.REPO_ROOT,
        env=dbt.dbt_env(url),
        check=True,
    ).stdout
    with db.connect(url) as conn:
        rows = conn.execute(
            f"select loto, unique_id, keys_missing, keys_not_staged from ({compiled}) as t"
        ).fetchall()
    return {(loto, unique_id): (missing, extra) for loto, unique_id, missing, extra in rows}


def _reference(staged: pd.DataFrame, job: pd.DataFrame, grain: list[str]) -> dict[tuple, tuple[int, int]]:
    staged_keys = set(staged[grain].itertuples(index=False, name=None))
    job_keys = set(job[grain].itertuples(index=False, name=None))
    missing = Counter(key[:2] for key in staged_keys - job_keys)
    extra = Counter(key[:2] for key in job_keys - staged_keys)
    return {series: (missing[series], extra[series]) for series in missing.keys() | extra.keys()}


def test_the_coverage_check_counts_what_the_job_lacks_and_holds_in_excess(fresh_schema, pg_url: str):
    schema = fresh_schema("covers")
    keys = _draw_keys()
    dates = sorted(keys["ds"].unique())
    n2_last = (keys["unique_id"] == "N2") & (keys["ds"] == dates[-1])
    # Staged: every draw, N2's last one twice (the job has not computed it yet: it counts
    # once), and a key of a series the job never saw.
    staged = pd.concat([keys, keys[n2_last], pd.DataFrame([["loto6", "N9", dates[0]]], columns=COLUMNS)])
    job = keys[~n2_last]
    # The job: N3 lacks its first ten draws, N4 holds a draw that is no longer staged, and
    # a lottery that staging does not hold at all.
    job = job[~((job["unique_id"] == "N3") & job["ds"].isin(dates[:10]))]
    gone = pd.DataFrame(
        [["loto6", "N4", pd.Timestamp("1999-01-01")], ["gone", "N1", pd.Timestamp("2001-01-01")]],
        columns=COLUMNS,
    )
    job = pd.concat([job, gone])
    _write(pg_url, schema, "staged", staged)
    _write(pg_url, schema, "job_rows", job)
    # One row per series, the first series left out.
    series = job.drop_duplicates(["loto", "unique_id"]).iloc[1:]
    _write(pg_url, schema, "job_series", series)

    rows = _stale_rows(pg_url, schema, "job_rows", list(COLUMNS))
    assert rows == _reference(staged, job, list(COLUMNS))
    assert rows[("loto6", "N3")] == (10, 0)
    assert rows[("loto6", "N2")] == (1, 0)

    rows = _stale_rows(pg_url, schema, "job_series", ["loto", "unique_id"])
    expected = _reference(staged.assign(ds=None), series.assign(ds=None), ["loto", "unique_id"])
    assert rows == expected
    assert rows[("loto6", "N9")] == (1, 0)


def test_a_job_that_has_caught_up_fails_nothing(fresh_schema, pg_url: str):
    schema = fresh_schema("covered")
    keys = _draw_keys()
    _write(pg_url, schema, "staged", keys)
    _write(pg_url, schema, "job_rows", keys.sample(frac=1.0, random_state=0))
    assert _stale_rows(pg_url, schema, "job_rows", list(COLUMNS)) == {}
