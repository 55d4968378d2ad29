"""The job's per-snapshot stat values (py_features_stat_history): computed once, then only what changed.

On a copy of the bundled staging rows (loto6 2000-2025, bingo5 2017-2024), with the easy
families of test_job.py: each snapshot's values equal the family called on the series cut at
its as_of, a second run computes none, a new draw computes one snapshot per series it grows, a
new year keeps the old latest as that year's snapshot, and a corrected row recomputes exactly
the snapshots at or after it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from python_jobs.job import run as job_run
from python_jobs.job import snapshots, tables
from python_jobs.job.planning import Planned, plan_snapshots
from python_jobs.job.reading import SeriesInfo
from python_jobs.job.snapshots import SnapshotInfo, SnapshotState
from python_jobs.tests.test_job import HIST, STAT, execute, job_schema, run, staging_series, tj_stat_outputs

__all__ = ["job_schema"]  # the fixture, imported for the tests below


def expected_snapshots(url: str, period: str = "year") -> pd.DataFrame:
    """Each series' snapshots from pandas (the last row of each period), with tj_stat on the cut series."""
    rows = []
    for (loto, uid), group in staging_series(url).items():
        stamps = pd.to_datetime(group["ds"])
        key = stamps.dt.year if period == "year" else stamps.dt.year * 100 + stamps.dt.month
        last_of_period = key.ne(key.shift(-1))
        for position in np.flatnonzero(last_of_period.to_numpy()):
            y = group["y"].to_numpy()[: position + 1]
            values = (
                STAT.compute(y) if len(y) >= STAT.min_rows() else dict.fromkeys(tj_stat_outputs(), math.nan)
            )
            rows.append({"loto": loto, "unique_id": uid, "as_of": group["ds"].iloc[position], **values})
    return pd.DataFrame(rows)


def stored_snapshots(url: str) -> pd.DataFrame:
    cols = ", ".join(tj_stat_outputs())
    frame = pd.DataFrame(
        execute(url, f"select loto, unique_id, as_of, {cols} from py_features_stat_history order by 1, 2, 3"),
        columns=["loto", "unique_id", "as_of", *tj_stat_outputs()],
    )
    for col in tj_stat_outputs():
        frame[col] = frame[col].astype(float)
    return frame


def assert_history_matches_cut_series(url: str) -> None:
    want = expected_snapshots(url)
    got = stored_snapshots(url)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, check_dtype=False)


def test_each_snapshot_once_then_only_what_changed(pg_url: str, job_schema: str) -> None:
    first = run(pg_url, [STAT, HIST])
    assert_history_matches_cut_series(pg_url)
    total = len(expected_snapshots(pg_url))
    assert first.snapshots_computed == total
    assert first.rows_written[tables.STAT_HISTORY_TABLE] == total
    # The latest snapshot is the series' py_features_stat row, value for value.
    latest_differs = execute(
        pg_url,
        "select count(*) from py_features_stat as s join (select distinct on (loto, unique_id) * "
        "from py_features_stat_history order by loto, unique_id, as_of desc) as h using (loto, unique_id) "
        "where (s.tj_mean, s.tj_std, s.tj_last) is distinct from (h.tj_mean, h.tj_std, h.tj_last)",
    )
    assert latest_differs == [(0,)]

    again = run(pg_url, [STAT, HIST])
    assert again.snapshots_computed == 0 and again.rows_written[tables.STAT_HISTORY_TABLE] == 0

    # One new loto6 draw in the same year: the latest snapshot of each of its 7 series moves.
    execute(
        pg_url,
        "insert into stg_lottery__draws (loto, unique_id, ds, y, num, co) "
        "select loto, unique_id, ds + interval '4 days', (y::int % 43) + 1, num + 1, 0 "
        "from stg_lottery__draws where loto = 'loto6' and ds = '2025-09-25'",
    )
    same_year = run(pg_url, [STAT, HIST])
    assert same_year.snapshots_computed == 7
    assert len(stored_snapshots(pg_url)) == total
    assert execute(pg_url, "select count(*) from py_features_stat_history where as_of = '2025-09-25'") == [
        (0,)
    ]
    assert execute(pg_url, "select count(*) from py_job_snapshot_state where as_of = '2025-09-25'") == [(0,)]

    # The first draw of 2026: one new snapshot per series; 2025-09-29 stays as 2025's, untouched.
    execute(
        pg_url,
        "insert into stg_lottery__draws (loto, unique_id, ds, y, num, co) "
        "select loto, unique_id, timestamp '2026-01-05', (y::int % 43) + 1, num + 1, 0 "
        "from stg_lottery__draws where loto = 'loto6' and ds = '2025-09-29'",
    )
    year_closed = run(pg_url, [STAT, HIST])
    assert year_closed.snapshots_computed == 7
    assert len(stored_snapshots(pg_url)) == total + 7
    assert_history_matches_cut_series(pg_url)

    # A corrected bingo5 N1 row of 2022: the snapshots of 2022, 2023 and 2024 of that series only.
    execute(
        pg_url,
        "update stg_lottery__draws set y = case when y = 1 then 2 else 1 end "
        "where loto = 'bingo5' and unique_id = 'N1' and ds = "
        "(select min(ds) from stg_lottery__draws where loto = 'bingo5' and ds >= '2022-06-01')",
    )
    corrected = run(pg_url, [STAT, HIST])
    assert corrected.snapshots_computed == 3
    assert corrected.series_computed == 1
    assert_history_matches_cut_series(pg_url)

    # Incremental runs left exactly what a full refresh computes.
    before = stored_snapshots(pg_url)
    refreshed = run(pg_url, [STAT, HIST], full_refresh=True)
    assert refreshed.snapshots_computed == total + 7
    assert refreshed.rows_written[tables.STAT_HISTORY_TABLE] == 0
    pd.testing.assert_frame_equal(stored_snapshots(pg_url), before)


def test_monthly_snapshots_and_back_to_yearly(pg_url: str, job_schema: str) -> None:
    """The cadence var of dbt_project.yml, overridden as ``--vars``: month ends, then only year ends."""
    execute(pg_url, "delete from stg_lottery__draws where loto = 'loto6' and ds < '2024-01-01'")
    monthly = run(pg_url, [STAT], dbt_vars={"stat_snapshot_cadence": "monthly"})
    want = expected_snapshots(pg_url, "month")
    assert monthly.snapshots_computed == len(want)
    got = stored_snapshots(pg_url)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, check_dtype=False)
    # Back to yearly: every year end is a month end, so nothing is computed, only month ends dropped.
    yearly = run(pg_url, [STAT])
    assert yearly.snapshots_computed == 0
    pd.testing.assert_frame_equal(
        stored_snapshots(pg_url), expected_snapshots(pg_url), check_exact=False, rtol=1e-12, check_dtype=False
    )


def test_a_failing_snapshot_is_recorded_and_retried(pg_url: str, job_schema: str) -> None:
    """A family that fails on one early cut only: its state row is an error, the series' row is not."""
    execute(pg_url, "delete from stg_lottery__draws where loto = 'loto6'")
    first_year = execute(
        pg_url,
        "select count(*) from stg_lottery__draws where loto = 'bingo5' and unique_id = 'N1' "
        "and ds < '2018-01-01'",
    )[0][0]

    def tj_picky(y: np.ndarray) -> dict[str, float]:
        if len(y) == first_year:
            raise ValueError("synthetic failure")
        return {"tj_picky_len": float(len(y))}

    from python_jobs.features.registry import Family

    picky = Family("tj_picky", "stat", tj_picky, outputs=("tj_picky_len",))
    result = run(pg_url, [picky])
    assert {(e.unique_id, e.family) for e in result.errors} == {(f"N{k}", "tj_picky") for k in range(1, 9)}
    assert all(e.error.startswith("snapshot as_of 2017-") for e in result.errors)
    states = execute(pg_url, "select status, count(*) from py_job_snapshot_state group by 1 order by 1")
    assert states == [("error", 8), ("ok", 8 * 7)]
    assert execute(pg_url, "select count(*) from py_job_state where status = 'ok'") == [(8,)]
    # The next run retries exactly the failed snapshots.
    assert run(pg_url, [picky]).snapshots_computed == 8 + 8  # the failed ones, and each latest again


def _snap(day: str, n_rows: int, checksum: str = "c") -> SnapshotInfo:
    return SnapshotInfo("x", "N1", dt.datetime.fromisoformat(day), n_rows, f"{checksum}{n_rows}")


def test_plan_snapshots_picks_changed_snapshots_and_the_latest() -> None:
    snaps = [_snap("2023-12-28", 2), _snap("2024-12-26", 5), _snap("2025-03-03", 7)]
    info = SeriesInfo("x", "N1", 7, snaps[-1].as_of, snaps[-1].checksum)
    versions = {"tj_stat": "v1", "tj_hist": "h1"}
    ok = {
        (s.loto, s.unique_id, s.as_of, "tj_stat"): SnapshotState("v1", s.n_rows, s.checksum, "ok")
        for s in snaps
    }

    def planned(state, items=()) -> list[Planned]:
        return plan_snapshots(list(items), [info], {("x", "N1"): snaps}, state, [STAT, HIST], versions, False)

    assert planned(ok) == []
    # Only the 2024 snapshot's state is stale: it and the latest are computed.
    stale = {**ok, ("x", "N1", snaps[1].as_of, "tj_stat"): SnapshotState("v1", 5, "old", "ok")}
    (item,) = planned(stale)
    assert item.families == ("tj_stat",) and item.snapshots == (snaps[1], snaps[2])
    # A series item of the hist family gains the stat family when the series-level row is stale.
    (item,) = planned(ok, [Planned(info, ("tj_stat", "tj_hist"))])
    assert item.families == ("tj_stat", "tj_hist") and item.snapshots == (snaps[2],)
    # Another version: every snapshot.
    (item,) = plan_snapshots([], [info], {("x", "N1"): snaps}, ok, [STAT], {"tj_stat": "v2"}, False)
    assert item.snapshots == tuple(snaps)


def test_assemble_splits_latest_and_first_errors() -> None:
    snaps = [[_snap("2023-12-28", 2), _snap("2024-12-26", 5)], [_snap("2024-01-04", 1)]]
    values = {"tj_stat": np.arange(9, dtype=float).reshape(3, 3)}
    out = snapshots.assemble(
        snaps,
        values,
        {"tj_stat": [(0, "boom"), (2, "bang")]},
        {"tj_stat": tj_stat_outputs()},
        {"tj_stat": "v"},
    )
    np.testing.assert_array_equal(out.latest_values, values["tj_stat"][[1, 2]])
    assert out.failed_latest == {"tj_stat": {1}}
    assert sorted(out.errors) == [
        (0, "tj_stat", "snapshot as_of 2023-12-28 00:00:00: boom"),
        (1, "tj_stat", "bang"),
    ]
    assert [row[-1] for row in out.history.state] == ["error", "ok", "error"]


def test_a_bad_cadence_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(
        device="cpu",
        families=["tj_stat"],
        scheduler="sync",
        batch_size=None,
        on_error="warn",
        full_refresh=False,
        vars="{stat_snapshot_cadence: weekly}",
    )
    assert job_run.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: dbt var 'stat_snapshot_cadence' must be one of ['monthly', 'yearly'], got 'weekly'"
    ]
