"""A full refresh of ``py_features_hist`` rebuilt and swapped in (:mod:`python_jobs.job.swap`).

On the bundled real draws, with the small families of ``test_job``: the swapped-in table
equals what an incremental run left and what the families give when called directly, has its
primary key, and keeps the views over it (and their grants) working; a reader sees the whole
old table or the whole new one; a run that dies before the swap leaves the old table and its
bookkeeping; a full refresh of some of the table's families merges in place instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from python_jobs import db, dbt, job
from python_jobs.features.registry import Family
from python_jobs.job import swap, tables
from python_jobs.tests.test_job import (
    BUNDLED_ROWS,
    HIST,
    STAT,
    assert_tables_match_direct_calls,
    copy_staging,
    execute,
    expected_hist,
    run,
    staging_series,
    tj_hist_outputs,
)

HIST_COLUMNS = ["loto", "unique_id", "ds", *tj_hist_outputs()]
# What a reader of the table sees at once: its rows, and a sum that differs when a value does.
SIGNATURE = "select count(*), sum(tj_cummax), count(tj_lag1) from {}"


@pytest.fixture
def job_schema(pg_url: str, loaded_schema: str, fresh_schema: Callable[[str], str]) -> str:
    schema = fresh_schema("job_swap")
    copy_staging(pg_url, loaded_schema, schema)
    return schema


def _stored_hist(url: str) -> pd.DataFrame:
    rows = execute(url, f"select {', '.join(HIST_COLUMNS)} from py_features_hist order by 1, 2, 3")
    return pd.DataFrame(rows, columns=HIST_COLUMNS)


def _oid(url: str, name: str) -> int:
    return execute(url, "select %s::regclass::oid", (name,))[0][0]


def _primary_key_columns(url: str) -> list[str]:
    """The columns of the table's primary key, read from pg_constraint."""
    rows = execute(
        url,
        "select a.attname from pg_constraint as c cross join lateral unnest(c.conkey) with ordinality as k "
        "(attnum, pos) join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.attnum "
        "where c.conrelid = 'py_features_hist'::regclass and c.contype = 'p' order by k.pos",
    )
    return [row[0] for row in rows]


def _leftovers(url: str) -> list[str]:
    return [
        row[0]
        for row in execute(
            url,
            "select relname from pg_class where relnamespace = current_schema()::regnamespace "
            "and relname in (%s, %s)",
            (swap.LOADED_TABLE, swap.RETIRED_TABLE),
        )
    ]


def _hist_state_runs(url: str) -> set[str]:
    return {row[0] for row in execute(url, "select run_id from py_job_state where family = 'tj_hist'")}


def _new_signature(url: str) -> tuple:
    """What the table holds after a full refresh, from the families called directly.

    The draws are integers, so their running maxima and the sum of those are exact.
    """
    want = expected_hist(url)
    return (BUNDLED_ROWS, float(want["tj_cummax"].sum()), int(want["tj_lag1"].notna().sum()))


def test_a_full_refresh_swaps_in_what_an_incremental_run_left(pg_url: str, job_schema: str) -> None:
    run(pg_url)
    # A corrected value: the incremental run recomputes that series and merges it in place.
    execute(
        pg_url,
        "update stg_lottery__draws set y = case when y = 1 then 2 else 1 end "
        "where loto = 'bingo5' and unique_id = 'N1' and ds = date '2017-04-05'",
    )
    incremental = run(pg_url)
    assert incremental.series_computed == 1
    after_incremental = _stored_hist(pg_url)
    before = _oid(pg_url, "py_features_hist")

    refreshed = run(pg_url, full_refresh=True)
    # Every row written by COPY into a new table, which took the old one's place...
    assert refreshed.rows_written[tables.HIST_TABLE] == BUNDLED_ROWS
    assert _oid(pg_url, "py_features_hist") != before
    assert _leftovers(pg_url) == []
    # ...with its primary key, built after the load, under the name it had.
    assert _primary_key_columns(pg_url) == ["loto", "unique_id", "ds"]
    assert execute(
        pg_url, "select conname from pg_constraint where conrelid = 'py_features_hist'::regclass"
    ) == [("py_features_hist_pkey",)]
    # ...equal, bit for bit, to what the incremental run left, and to the families' own values.
    pd.testing.assert_frame_equal(_stored_hist(pg_url), after_incremental, check_exact=True)
    assert_tables_match_direct_calls(pg_url)
    # The per-draw bookkeeping is the refresh's, written with the swap.
    assert _hist_state_runs(pg_url) == {refreshed.run_id}
    # A run with nothing new writes nothing and keeps the table.
    swapped = _oid(pg_url, "py_features_hist")
    again = run(pg_url)
    assert again.series_computed == 0 and sum(again.rows_written.values()) == 0
    assert _oid(pg_url, "py_features_hist") == swapped


def test_views_over_the_table_and_their_grants_survive_the_swap(pg_url: str, job_schema: str) -> None:
    run(pg_url)
    # A view shaped like the dbt staging model, a view over it, a view with an option, a grant.
    execute(
        pg_url,
        "create view stg_hist as with py_hist as (select * from py_features_hist), "
        "final as (select py_hist.loto, py_hist.unique_id, py_hist.ds, "
        "py_hist.tj_cummax::double precision as tj_cummax, py_hist.tj_lag1::double precision as tj_lag1 "
        "from py_hist) select * from final",
    )
    execute(pg_url, "create view stg_hist_n1 as select * from stg_hist where unique_id = 'N1'")
    execute(
        pg_url,
        "create view hist_guarded with (security_barrier) as "
        "select loto, ds, tj_cummax from py_features_hist",
    )
    execute(pg_url, "grant select on py_features_hist, stg_hist to public")
    views = {name: _oid(pg_url, name) for name in ("stg_hist", "stg_hist_n1", "hist_guarded")}
    before = _oid(pg_url, "py_features_hist")
    # Old contents the refresh must replace: every tj_cummax off by one.
    execute(pg_url, "update py_features_hist set tj_cummax = tj_cummax + 1")

    run(pg_url, full_refresh=True)

    # The table was swapped; the views are the same objects, now over it, and read its values.
    assert _oid(pg_url, "py_features_hist") != before
    assert {name: _oid(pg_url, name) for name in views} == views
    want = expected_hist(pg_url)
    got = execute(pg_url, "select sum(tj_cummax), count(*) from stg_hist")[0]
    assert got == (pytest.approx(float(want["tj_cummax"].sum()), rel=1e-12), BUNDLED_ROWS)
    n1 = execute(pg_url, "select count(*) from stg_hist_n1")[0][0]
    assert n1 == int((want["unique_id"] == "N1").sum()) > 0
    assert execute(pg_url, "select sum(tj_cummax) from hist_guarded")[0][0] == pytest.approx(
        float(want["tj_cummax"].sum()), rel=1e-12
    )
    assert execute(pg_url, "select reloptions from pg_class where oid = 'hist_guarded'::regclass") == [
        (["security_barrier=true"],)
    ]
    assert execute(pg_url, "select has_table_privilege('public', 'py_features_hist', 'select')") == [(True,)]
    assert_tables_match_direct_calls(pg_url)


def _wait_for(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _waiting_on_lock(url: str, pattern: str) -> bool:
    """Whether a statement like ``pattern`` (an ``ilike`` pattern) waits for a lock."""
    return bool(
        execute(
            url,
            "select 1 from pg_stat_activity where wait_event_type = 'Lock' and query ilike %s",
            (pattern,),
        )
    )


def test_a_reader_sees_the_whole_old_table_or_the_whole_new_one(pg_url: str, job_schema: str) -> None:
    run(pg_url)
    execute(pg_url, "create view hist_view as select * from py_features_hist")
    # Old contents unlike the new: one series gone, every tj_cummax off by one.
    execute(pg_url, "delete from py_features_hist where loto = 'loto6' and unique_id = 'N3'")
    execute(pg_url, "update py_features_hist set tj_cummax = tj_cummax + 1")
    old = tuple(execute(pg_url, SIGNATURE.format("py_features_hist"))[0])
    new = _new_signature(pg_url)
    assert old != new

    results: dict[str, object] = {}

    def refresh() -> None:
        try:
            results["job"] = run(pg_url, full_refresh=True)
        except BaseException as exc:  # pragma: no cover - reported below
            results["job"] = exc

    def late_reader() -> None:
        with db.connect(pg_url, autocommit=True) as conn:
            results["late"] = tuple(conn.execute(SIGNATURE.format(f"{job_schema}.hist_view")).fetchone())

    # A reader inside a transaction holds the old table: the swap waits for it.
    with db.connect(pg_url) as held:
        held.execute(f"set search_path to {job_schema}")
        assert tuple(held.execute(SIGNATURE.format("hist_view")).fetchone()) == old
        job_thread = threading.Thread(target=refresh)
        job_thread.start()
        swap_waits = f"lock table %{job_schema}%"
        _wait_for(lambda: _waiting_on_lock(pg_url, swap_waits) or "job" in results, "the swap to wait")
        assert "job" not in results, results.get("job")
        # A reader arriving now queues behind the swap...
        late = threading.Thread(target=late_reader)
        late.start()
        late_waits = f"select count(*)%{job_schema}.hist_view%"
        _wait_for(lambda: _waiting_on_lock(pg_url, late_waits), "the late reader to wait")
        # ...while the one holding the old table still reads it whole.
        assert tuple(held.execute(SIGNATURE.format("hist_view")).fetchone()) == old
        held.commit()
    job_thread.join(timeout=300)
    late.join(timeout=60)
    assert isinstance(results["job"], job.JobResult), results["job"]
    # The late reader waited for the swap, then read the new table, whole.
    assert results["late"] == new
    assert tuple(execute(pg_url, SIGNATURE.format("hist_view"))[0]) == new
    assert_tables_match_direct_calls(pg_url)


def test_polling_readers_never_see_a_mix(pg_url: str, job_schema: str) -> None:
    run(pg_url)
    execute(pg_url, "create view hist_view as select * from py_features_hist")
    execute(pg_url, "update py_features_hist set tj_cummax = tj_cummax + 1")
    old = tuple(execute(pg_url, SIGNATURE.format("py_features_hist"))[0])
    new = _new_signature(pg_url)
    seen: list[tuple] = []
    stop = threading.Event()

    def poll(name: str) -> None:
        with db.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set():
                seen.append(tuple(conn.execute(SIGNATURE.format(f"{job_schema}.{name}")).fetchone()))

    pollers = [threading.Thread(target=poll, args=(name,)) for name in ("hist_view", "py_features_hist")]
    for poller in pollers:
        poller.start()
    try:
        run(pg_url, full_refresh=True)
        time.sleep(0.2)
    finally:
        stop.set()
        for poller in pollers:
            poller.join()
    assert seen and all(signature in (old, new) for signature in seen)
    assert seen[-1] == new


def test_a_run_that_dies_before_the_swap_leaves_the_old_table(pg_url: str, job_schema: str) -> None:
    first = run(pg_url)
    before = _oid(pg_url, "py_features_hist")
    stored = _stored_hist(pg_url)
    target = float(staging_series(pg_url)[("loto6", "N4")]["y"].sum())

    def tj_hist_breaks(y: np.ndarray) -> dict[str, np.ndarray]:
        if float(np.sum(y)) == target:
            raise ValueError("synthetic failure")
        return HIST.fn(y)

    with pytest.raises(job.SeriesFailure):
        run(pg_url, [STAT, replace(HIST, fn=tj_hist_breaks)], full_refresh=True, on_error="raise")
    # Batches before the failure went to the loaded table, which is gone with the run.
    assert _oid(pg_url, "py_features_hist") == before and _leftovers(pg_url) == []
    pd.testing.assert_frame_equal(_stored_hist(pg_url), stored, check_exact=True)
    assert _hist_state_runs(pg_url) == {first.run_id}
    # A table left by a run killed during its load is dropped by the next run.
    execute(pg_url, f"create table {swap.LOADED_TABLE} (like py_features_hist)")
    assert run(pg_url, full_refresh=True).status == "success"
    assert _leftovers(pg_url) == []
    assert_tables_match_direct_calls(pg_url)


def tj_cummin(y: np.ndarray) -> dict[str, np.ndarray]:
    return {"tj_cummin": np.minimum.accumulate(y)}


def test_a_refresh_of_some_of_the_tables_families_merges_in_place(pg_url: str, job_schema: str) -> None:
    other = Family("tj_hist_min", "hist", tj_cummin, outputs=("tj_cummin",))
    run(pg_url, [STAT, HIST, other])
    before = _oid(pg_url, "py_features_hist")
    execute(pg_url, "update py_features_hist set tj_cummax = tj_cummax + 1 where unique_id = 'B1'")
    refreshed = run(pg_url, [STAT, HIST], full_refresh=True)
    # Rebuilding the table would lose tj_cummin: the changed rows are merged instead.
    assert _oid(pg_url, "py_features_hist") == before
    assert 0 < refreshed.rows_written[tables.HIST_TABLE] < BUNDLED_ROWS
    assert_tables_match_direct_calls(pg_url)
    cummin = execute(pg_url, "select count(tj_cummin) from py_features_hist")[0][0]
    assert cummin == BUNDLED_ROWS


def test_a_foreign_key_into_the_table_keeps_it_in_place(pg_url: str, job_schema: str) -> None:
    run(pg_url)
    # The old table could not be dropped without the key: the refresh merges instead.
    execute(
        pg_url,
        "create table hist_child (loto text, unique_id text, ds timestamp, "
        "foreign key (loto, unique_id, ds) references py_features_hist)",
    )
    execute(pg_url, "update py_features_hist set tj_cummax = tj_cummax + 1 where unique_id = 'B1'")
    before = _oid(pg_url, "py_features_hist")
    assert run(pg_url, full_refresh=True).rows_written[tables.HIST_TABLE] == 2037
    assert _oid(pg_url, "py_features_hist") == before and _leftovers(pg_url) == []
    assert_tables_match_direct_calls(pg_url)


def test_a_swap_that_fails_changes_nothing(
    pg_url: str, job_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run(pg_url)
    # The name the old table is moved to inside the swap is taken: the swap fails half-way.
    execute(pg_url, "create table occupied (a int)")
    monkeypatch.setattr(swap, "RETIRED_TABLE", "occupied")
    execute(pg_url, "update py_features_hist set tj_cummax = tj_cummax + 1")
    before = _oid(pg_url, "py_features_hist")
    stored = _stored_hist(pg_url)
    with pytest.raises(job.JobIOError, match="could not replace the old one, which is unchanged"):
        run(pg_url, full_refresh=True)
    assert _oid(pg_url, "py_features_hist") == before and swap.LOADED_TABLE not in _leftovers(pg_url)
    pd.testing.assert_frame_equal(_stored_hist(pg_url), stored, check_exact=True)
    assert _hist_state_runs(pg_url) == {first.run_id}


@pytest.mark.dbt
def test_the_dbt_staging_view_over_the_table_survives_the_swap(pg_url: str, job_schema: str) -> None:
    run(pg_url)
    dbt.run(["run", "--quiet", "--select", "stg_python__features_hist"], url=pg_url)
    view = _oid(pg_url, "stg_python__features_hist")
    before = _oid(pg_url, "py_features_hist")
    # Old contents the refresh must replace: one series gone.
    execute(pg_url, "delete from py_features_hist where unique_id = 'N1'")
    run(pg_url, full_refresh=True)
    assert _oid(pg_url, "py_features_hist") != before
    assert _oid(pg_url, "stg_python__features_hist") == view
    rows = "select count(*), count(distinct (loto, unique_id)) from stg_python__features_hist"
    assert execute(pg_url, rows) == [(BUNDLED_ROWS, 15)]
    # dbt builds it again over the new table.
    dbt.run(["run", "--quiet", "--select", "stg_python__features_hist"], url=pg_url)
    assert execute(pg_url, "select count(*) from stg_python__features_hist") == [(BUNDLED_ROWS,)]
