"""The feature job on the bundled real draws: tables, incremental runs, failures, Dask, devices.

The job runs with small families defined here (their values are easy to recompute
independently), on a copy of the staging model of the loaded schema, so each test can add,
change or remove draws without touching the shared schema.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from python_jobs import config, db, device, job_io, jobs
from python_jobs.features.registry import Family

BUNDLED_SERIES = 15  # loto6 N1..N6, B1 and bingo5 N1..N8
BUNDLED_ROWS = 2037 * 7 + 375 * 8


def tj_stat(y: np.ndarray) -> dict[str, float]:
    return {
        "tj_mean": float(np.mean(y)),
        "tj_std": float(np.std(y, ddof=1)) if len(y) > 1 else math.nan,
        "tj_last": float(y[-1]),
    }


def tj_hist(y: np.ndarray) -> dict[str, np.ndarray]:
    # Point in time, as a per-draw family must be: row i uses y[: i + 1] only.
    n = np.arange(1, len(y) + 1)
    mean = np.cumsum(y) / n
    std = np.sqrt(np.maximum(np.cumsum(y * y) / n - mean * mean, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        zscore = (y - mean) / std
    return {
        "tj_cummax": np.maximum.accumulate(y),
        "tj_lag1": np.concatenate([[np.nan], y[:-1]]),
        "tj_z_expanding": zscore,
    }


def tj_stat_outputs() -> list[str]:
    return ["tj_mean", "tj_std", "tj_last"]


def tj_hist_outputs() -> list[str]:
    return ["tj_cummax", "tj_lag1", "tj_z_expanding"]


STAT = Family("tj_stat", "stat", tj_stat, outputs=tj_stat_outputs, min_length=3)
HIST = Family("tj_hist", "hist", tj_hist, outputs=tj_hist_outputs)

GPU_CALLS: list[int] = []


def tj_stat_batch(ys: list[np.ndarray]) -> list[dict[str, float]]:
    """Stands in for a GPU kernel: one call for a whole batch."""
    GPU_CALLS.append(len(ys))
    return [tj_stat(y) for y in ys]


def tj_broken_batch(ys: list[np.ndarray]) -> list[dict[str, float]]:
    raise RuntimeError("device lost")


def fragile(target_sum: float) -> Family:
    """A stat family that raises on the one series whose values sum to ``target_sum``."""

    def tj_fragile(y: np.ndarray) -> dict[str, float]:
        if float(np.sum(y)) == target_sum:
            raise ValueError("synthetic failure")
        return {"tj_fragile_len": float(len(y))}

    return Family("tj_fragile", "stat", tj_fragile, outputs=lambda: ["tj_fragile_len"])


# -- helpers -----------------------------------------------------------------------------------


def copy_staging(url: str, source_schema: str, schema: str) -> None:
    """The loaded schema's staging rows as a plain table the test may change."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create table {} as select * from {}").format(
                db.qualified(config.STAGING_MODEL, schema), db.qualified(config.STAGING_MODEL, source_schema)
            )
        )
        conn.execute(
            sql.SQL("alter table {} add primary key (loto, unique_id, ds)").format(
                db.qualified(config.STAGING_MODEL, schema)
            )
        )


@pytest.fixture
def job_schema(pg_url: str, loaded_schema: str, fresh_schema: Callable[[str], str]) -> str:
    schema = fresh_schema("job")
    copy_staging(pg_url, loaded_schema, schema)
    return schema


def run(url: str, families: list[Family] | None = None, **kwargs) -> jobs.JobResult:
    options = {"scheduler": "sync", "batch_size": 4, "progress": False, "quiet": True, "device": "cpu"}
    options.update(kwargs)
    return jobs.run_job(url=url, families=families or [STAT, HIST], **options)


def execute(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(config.target_schema())))
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def staging_series(url: str) -> dict[tuple[str, str], pd.DataFrame]:
    """Every series of the staging table, read with a plain SELECT (not the job's COPY)."""
    rows = execute(url, "select loto, unique_id, ds, y::float8 from stg_lottery__draws order by 1, 2, 3")
    frame = pd.DataFrame(rows, columns=["loto", "unique_id", "ds", "y"])
    return {key: group.reset_index(drop=True) for key, group in frame.groupby(["loto", "unique_id"])}


def table(url: str, name: str, columns: list[str], keys: list[str]) -> pd.DataFrame:
    cols = ", ".join([*keys, *columns])
    frame = pd.DataFrame(
        execute(url, f"select {cols} from {name} order by {', '.join(keys)}"), columns=[*keys, *columns]
    )
    for col in columns:
        frame[col] = frame[col].astype(float)
    return frame


def expected_stat(url: str, fam: Family = STAT) -> pd.DataFrame:
    rows = []
    for (loto, uid), group in staging_series(url).items():
        y = group["y"].to_numpy()
        values = fam.fn(y) if len(y) >= fam.min_length else dict.fromkeys(fam.outputs(), math.nan)
        rows.append({"loto": loto, "unique_id": uid, **values})
    return pd.DataFrame(rows)[["loto", "unique_id", *fam.outputs()]]


def expected_hist(url: str, fam: Family = HIST) -> pd.DataFrame:
    parts = []
    for (loto, uid), group in staging_series(url).items():
        part = pd.DataFrame(fam.fn(group["y"].to_numpy()))
        part.insert(0, "ds", group["ds"])
        part.insert(0, "unique_id", uid)
        part.insert(0, "loto", loto)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[["loto", "unique_id", "ds", *fam.outputs()]]


def assert_tables_match_direct_calls(url: str) -> None:
    got_stat = table(url, job_io.STAT_TABLE, tj_stat_outputs(), ["loto", "unique_id"])
    pd.testing.assert_frame_equal(got_stat, expected_stat(url), check_exact=False, rtol=1e-12)
    got_hist = table(url, job_io.HIST_TABLE, tj_hist_outputs(), ["loto", "unique_id", "ds"])
    pd.testing.assert_frame_equal(got_hist, expected_hist(url), check_exact=False, rtol=1e-12)


# -- tests -------------------------------------------------------------------------------------


def test_job_writes_one_row_per_series_and_per_draw(pg_url: str, job_schema: str) -> None:
    result = run(pg_url)
    assert result.status == "success"
    assert result.series_total == result.series_computed == BUNDLED_SERIES
    assert result.rows_written == {job_io.STAT_TABLE: BUNDLED_SERIES, job_io.HIST_TABLE: BUNDLED_ROWS}
    assert execute(pg_url, "select count(*) from py_features_stat") == [(BUNDLED_SERIES,)]
    assert execute(pg_url, "select count(*) from py_features_hist") == [(BUNDLED_ROWS,)]
    assert_tables_match_direct_calls(pg_url)
    # Undefined values are NULL: the first lag and the first z-score (0 / 0) of each series.
    nulls = execute(
        pg_url,
        "select count(*) filter (where tj_lag1 is null), count(*) filter (where tj_z_expanding is null) "
        "from py_features_hist",
    )
    assert nulls[0][0] == BUNDLED_SERIES and nulls[0][1] >= BUNDLED_SERIES
    runs = execute(
        pg_url,
        "select status, device, scheduler, families, series_computed, series_total, rows_written, "
        "seconds_per_family, finished_at is not null from py_job_runs",
    )
    assert len(runs) == 1
    status, dev, scheduler, fams, computed, total, written, seconds, finished = runs[0]
    assert (status, dev, scheduler, fams) == ("success", "cpu", "sync", ["tj_stat", "tj_hist"])
    assert (computed, total, written, finished) == (
        BUNDLED_SERIES,
        BUNDLED_SERIES,
        BUNDLED_SERIES + BUNDLED_ROWS,
        True,
    )
    assert set(seconds) == {"tj_stat", "tj_hist"}
    assert execute(
        pg_url, "select count(*), count(distinct family) from py_job_state where status = 'ok'"
    ) == [(2 * BUNDLED_SERIES, 2)]


def test_rerun_skips_unchanged_series_and_new_draws_recompute_only_theirs(
    pg_url: str, job_schema: str
) -> None:
    run(pg_url)
    again = run(pg_url)
    assert again.series_computed == 0 and sum(again.rows_written.values()) == 0
    assert again.computed_per_family == {"tj_stat": 0, "tj_hist": 0}

    # One new loto6 draw: seven series grow by one row; only their new rows are written.
    execute(
        pg_url,
        "insert into stg_lottery__draws (loto, unique_id, ds, y, num, co) "
        "select loto, unique_id, date '2025-09-29', (y::int % 43) + 1, num + 1, 0 from stg_lottery__draws "
        "where loto = 'loto6' and ds = date '2025-09-25'",
    )
    grown = run(pg_url)
    assert grown.series_computed == 7
    assert grown.computed_per_family == {"tj_stat": 7, "tj_hist": 7}
    assert grown.rows_written == {job_io.STAT_TABLE: 7, job_io.HIST_TABLE: 7}
    assert_tables_match_direct_calls(pg_url)

    # A corrected past value: that series is recomputed in full, the others are not touched.
    execute(
        pg_url,
        "update stg_lottery__draws set y = case when y = 1 then 2 else 1 end "
        "where loto = 'bingo5' and unique_id = 'N1' and ds = date '2017-04-05'",
    )
    corrected = run(pg_url)
    assert corrected.series_computed == 1
    assert corrected.rows_written[job_io.HIST_TABLE] >= 1
    assert_tables_match_direct_calls(pg_url)

    # A draw removed from the middle of a series: its row goes, the later rows change.
    execute(
        pg_url,
        "delete from stg_lottery__draws where loto = 'loto6' and unique_id = 'B1' and ds = "
        "(select ds from stg_lottery__draws where loto = 'loto6' order by ds offset 7000 limit 1)",
    )
    shrunk = run(pg_url)
    assert shrunk.series_computed == 1
    assert execute(
        pg_url, "select count(*) from py_features_hist where unique_id = 'B1' and loto = 'loto6'"
    ) == [(2037,)]
    assert_tables_match_direct_calls(pg_url)

    # A series that left the staging model leaves the job's tables too.
    execute(pg_url, "delete from stg_lottery__draws where loto = 'bingo5' and unique_id = 'N8'")
    removed = run(pg_url)
    assert removed.series_total == BUNDLED_SERIES - 1 and removed.series_computed == 0
    assert execute(
        pg_url, "select count(*) from py_features_stat where unique_id = 'N8' and loto = 'bingo5'"
    ) == [(0,)]
    assert_tables_match_direct_calls(pg_url)


def test_definition_change_and_full_refresh_recompute_everything(
    pg_url: str, job_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(pg_url)
    execute(pg_url, "update py_features_stat set tj_mean = -1 where unique_id = 'N2'")
    monkeypatch.setattr(config, "SEASON_LENGTH", config.SEASON_LENGTH + 1)
    bumped = run(pg_url)
    assert bumped.computed_per_family == {"tj_stat": BUNDLED_SERIES, "tj_hist": BUNDLED_SERIES}
    # Same values as before, so only the two rows that were tampered with are rewritten.
    assert bumped.rows_written == {job_io.STAT_TABLE: 2, job_io.HIST_TABLE: 0}
    assert_tables_match_direct_calls(pg_url)
    assert run(pg_url).series_computed == 0
    refreshed = run(pg_url, full_refresh=True)
    assert refreshed.series_computed == BUNDLED_SERIES
    assert_tables_match_direct_calls(pg_url)


def test_warn_records_the_failure_and_leaves_that_family_null(pg_url: str, job_schema: str) -> None:
    target = float(staging_series(pg_url)[("loto6", "N1")]["y"].sum())
    fam = fragile(target)
    result = run(pg_url, families=[STAT, fam], on_error="warn")
    assert result.status == "success"
    assert [(e.loto, e.unique_id, e.family) for e in result.errors] == [("loto6", "N1", "tj_fragile")]
    errors = execute(pg_url, "select run_id, loto, unique_id, family, error from py_job_errors")
    assert errors == [(result.run_id, "loto6", "N1", "tj_fragile", "ValueError: synthetic failure")]
    rows = execute(
        pg_url, "select loto, unique_id, tj_fragile_len, tj_mean from py_features_stat order by 1, 2"
    )
    assert len(rows) == BUNDLED_SERIES
    for loto, uid, length, mean in rows:
        assert mean is not None
        if (loto, uid) == ("loto6", "N1"):
            assert length is None
        else:
            assert length == {"loto6": 2037, "bingo5": 375}[loto]
    assert execute(pg_url, "select series_failed from py_job_runs") == [(1,)]
    # The failed pair is tried again on the next run; nothing else is.
    again = run(pg_url, families=[STAT, fam], on_error="ignore")
    assert again.computed_per_family == {"tj_stat": 0, "tj_fragile": 1}
    assert len(again.errors) == 1
    assert execute(pg_url, "select count(*) from py_job_errors") == [(1,)]  # ignore records nothing


def test_raise_stops_the_run_and_marks_it_failed(pg_url: str, job_schema: str) -> None:
    target = float(staging_series(pg_url)[("bingo5", "N3")]["y"].sum())
    with pytest.raises(jobs.SeriesFailure, match="bingo5/N3") as info:
        run(pg_url, families=[fragile(target)], on_error="raise")
    assert info.value.family == "tj_fragile"
    status = execute(pg_url, "select status, error like '%synthetic failure%' from py_job_runs")
    assert status == [("failed", True)]


def test_short_constant_and_nan_series_never_crash(pg_url: str, job_schema: str) -> None:
    execute(
        pg_url,
        "insert into stg_lottery__draws (loto, unique_id, ds, y) values "
        "('synthetic', 'N1', '2020-01-01', 4), ('synthetic', 'N2', '2020-01-01', 7), "
        "('synthetic', 'N2', '2020-01-02', 7), ('synthetic', 'N2', '2020-01-03', 7), "
        "('synthetic', 'N3', '2020-01-01', 1), ('synthetic', 'N3', '2020-01-02', 'NaN'), "
        "('synthetic', 'N3', '2020-01-03', 2)",
    )
    result = run(pg_url, on_error="warn")
    assert result.status == "success" and result.series_computed == BUNDLED_SERIES + 3
    assert result.too_short_per_family["tj_stat"] == 1
    assert sorted((e.unique_id, e.family) for e in result.errors) == [("N3", "tj_hist"), ("N3", "tj_stat")]
    stat = {
        uid: (mean, std)
        for uid, mean, std in execute(
            pg_url, "select unique_id, tj_mean, tj_std from py_features_stat where loto = 'synthetic'"
        )
    }
    assert stat == {"N1": (None, None), "N2": (7.0, 0.0), "N3": (None, None)}
    # The constant series' z-score is undefined (0 / 0): NULL, not NaN.
    z = execute(
        pg_url, "select tj_z_expanding from py_features_hist where loto = 'synthetic' and unique_id = 'N2'"
    )
    assert z == [(None,)] * 3
    assert execute(pg_url, "select count(*) from py_features_hist where tj_z_expanding = 'NaN'::float8") == [
        (0,)
    ]


def test_local_cluster_gives_the_same_tables(
    pg_url: str, loaded_schema: str, fresh_schema: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    in_process = fresh_schema("job_sync")
    copy_staging(pg_url, loaded_schema, in_process)
    run(pg_url)
    expected = [
        table(pg_url, job_io.STAT_TABLE, tj_stat_outputs(), ["loto", "unique_id"]),
        table(pg_url, job_io.HIST_TABLE, tj_hist_outputs(), ["loto", "unique_id", "ds"]),
    ]

    on_cluster = fresh_schema("job_dask")
    copy_staging(pg_url, loaded_schema, on_cluster)
    # Workers cannot import this test module by name: ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            # This machine's workers have no GPU; the check runs on them, not here.
            with pytest.raises(device.DeviceError, match="on the Dask workers"):
                run(pg_url, scheduler=client, device="gpu")
            result = run(pg_url, scheduler=client, device="auto")
            caches = set(client.run(lambda: __import__("os").environ.get("NUMBA_CACHE_DIR")).values())
            workers = len(client.scheduler_info()["workers"])
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert workers == 2
    assert caches == {str(config.numba_cache_dir())}
    assert result.scheduler.startswith("client:tcp://") and result.series_computed == BUNDLED_SERIES
    assert result.device == "cpu"
    got = [
        table(pg_url, job_io.STAT_TABLE, tj_stat_outputs(), ["loto", "unique_id"]),
        table(pg_url, job_io.HIST_TABLE, tj_hist_outputs(), ["loto", "unique_id", "ds"]),
    ]
    for want, have in zip(expected, got, strict=True):
        pd.testing.assert_frame_equal(have, want, check_exact=True)


def test_gpu_path_sends_whole_batches_and_falls_back_to_cpu(
    pg_url: str, job_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "resolve_device", lambda requested, **kwargs: "gpu")
    batched = Family(
        "tj_stat", "stat", tj_stat, outputs=tj_stat_outputs, min_length=3, gpu=f"{__name__}:tj_stat_batch"
    )
    GPU_CALLS.clear()
    result = run(pg_url, families=[batched, HIST], batch_size=8, device="gpu")
    assert GPU_CALLS == [8, 7]  # two launches for fifteen series
    assert result.device_per_family == {"tj_stat": "gpu", "tj_hist": "cpu"}
    assert_tables_match_direct_calls(pg_url)
    broken = Family(
        "tj_stat", "stat", tj_stat, outputs=tj_stat_outputs, min_length=3, gpu=f"{__name__}:tj_broken_batch"
    )
    fallback = run(pg_url, families=[broken, HIST], device="gpu", full_refresh=True)
    assert fallback.device_per_family["tj_stat"] == "cpu" and not fallback.errors
    assert_tables_match_direct_calls(pg_url)


def test_gpu_on_a_cpu_machine_is_one_clear_error(
    pg_url: str, job_schema: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(device, "gpu_available", lambda: False)
    with pytest.raises(device.DeviceError, match="--device cpu"):
        run(pg_url, device="gpu")
    from python_jobs.cli import build_parser

    args = build_parser().parse_args(["features", "--device", "gpu", "--no-progress"])
    assert jobs.main(args) == 2
    err = capsys.readouterr().err
    assert "no GPU is usable" in err and "Traceback" not in err
    assert execute(pg_url, "select to_regclass('py_job_runs')") == [(None,)]  # nothing was started
    if "cupy" not in sys.modules:
        run(pg_url, device="auto")
        assert "cupy" not in sys.modules


def test_transient_database_errors_are_retried(
    pg_url: str, job_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"write": 0, "read": 0}
    real_write, real_read = job_io.write_batch, job_io.read_series

    def flaky_write(conn: psycopg.Connection, batch: job_io.BatchWrite) -> dict[str, int]:
        calls["write"] += 1
        if calls["write"] == 1:
            # Half-way through the transaction, as when the server goes away mid-batch.
            conn.execute("select 1")
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real_write(conn, batch)

    def flaky_read(conn: psycopg.Connection, keys: list[tuple[str, str]]) -> list[job_io.SeriesData]:
        calls["read"] += 1
        if calls["read"] == 2:
            raise psycopg.errors.SerializationFailure("could not serialize access")
        return real_read(conn, keys)

    monkeypatch.setattr(job_io, "write_batch", flaky_write)
    monkeypatch.setattr(job_io, "read_series", flaky_read)
    result = run(pg_url)
    assert result.status == "success"
    batches = math.ceil(BUNDLED_SERIES / 4)
    assert calls == {"write": batches + 1, "read": batches + 1}
    assert_tables_match_direct_calls(pg_url)


def test_command_line_end_to_end(pg_url: str, job_schema: str, capsys: pytest.CaptureFixture) -> None:
    from python_jobs.cli import main

    assert main(["features", "--families", "spectral", "--no-progress", "--batch-size", "5"]) == 0
    out = capsys.readouterr().out
    assert "spectral" in out and f"{BUNDLED_SERIES} computed" in out and "series/s" in out
    assert main(["features", "--families", "spectral", "--no-progress"]) == 0
    assert f"0 computed, {BUNDLED_SERIES} unchanged" in capsys.readouterr().out
    assert main(["features", "--families", "no_such_family", "--no-progress"]) == 2
    assert "unknown feature families" in capsys.readouterr().err


def test_real_families_equal_their_functions(pg_url: str, job_schema: str) -> None:
    from python_jobs.features import registry

    names = ["rolling", "spectral", "autocorrelation"]
    result = run(pg_url, families=names, batch_size=6)
    assert result.status == "success" and not result.errors
    assert result.computed_per_family == dict.fromkeys(names, BUNDLED_SERIES)
    by_name = {fam.name: fam for fam in registry.families(names=names)}
    for name in ("spectral", "autocorrelation"):
        fam = by_name[name]
        got = table(pg_url, job_io.STAT_TABLE, fam.outputs(), ["loto", "unique_id"])
        pd.testing.assert_frame_equal(got, expected_stat(pg_url, fam), check_exact=False, rtol=1e-12, atol=0)
    rolling = by_name["rolling"]
    got = table(pg_url, job_io.HIST_TABLE, rolling.outputs(), ["loto", "unique_id", "ds"])
    pd.testing.assert_frame_equal(got, expected_hist(pg_url, rolling), check_exact=False, rtol=1e-12, atol=0)
    assert got[rolling.outputs()].notna().to_numpy().sum() > 0.9 * got[rolling.outputs()].size

    # A new draw appends one row per grown series; the rows kept are what a full run gives.
    execute(
        pg_url,
        "insert into stg_lottery__draws (loto, unique_id, ds, y) "
        "select loto, unique_id, date '2024-07-10', 6 - y from stg_lottery__draws "
        "where loto = 'bingo5' and ds = date '2024-07-03'",
    )
    grown = run(pg_url, families=names, batch_size=6)
    assert grown.series_computed == 8 and grown.rows_written[job_io.HIST_TABLE] == 8
    got = table(pg_url, job_io.HIST_TABLE, rolling.outputs(), ["loto", "unique_id", "ds"])
    pd.testing.assert_frame_equal(got, expected_hist(pg_url, rolling), check_exact=False, rtol=1e-12, atol=0)


@pytest.mark.dbt
def test_dbt_hook_and_job_create_the_same_tables(pg_url: str, fresh_schema: Callable[[str], str]) -> None:
    from python_jobs import dbt
    from python_jobs.features import registry

    def shape(schema: str) -> tuple[set, set]:
        columns = execute(
            pg_url,
            "select table_name, column_name, data_type, is_nullable, column_default "
            "from information_schema.columns where table_schema = %s and table_name = any(%s)",
            (schema, list(job_io.JOB_TABLES)),
        )
        keys = execute(
            pg_url,
            "select tc.table_name, kcu.column_name, kcu.ordinal_position "
            "from information_schema.table_constraints as tc "
            "join information_schema.key_column_usage as kcu using (constraint_schema, constraint_name) "
            "where tc.table_schema = %s and tc.constraint_type = 'PRIMARY KEY'",
            (schema,),
        )
        return set(columns), set(keys)

    by_hook = fresh_schema("job_hook")
    # A hook runs with any dbt command that executes nodes; the smallest seed is enough.
    dbt.run(["seed", "--select", "loto_spec"], url=pg_url, quiet=True)
    by_job = fresh_schema("job_ddl")
    with job_io.connect(pg_url) as conn:
        job_io.ensure_tables(conn, registry.output_columns("stat"), registry.output_columns("hist"))
    hook_columns, hook_keys = shape(by_hook)
    job_columns, job_keys = shape(by_job)
    assert {row[0] for row in hook_columns} == set(job_io.JOB_TABLES)
    assert hook_columns == job_columns
    assert hook_keys == job_keys
    features = {row[1] for row in hook_columns if row[0] in (job_io.STAT_TABLE, job_io.HIST_TABLE)}
    assert set(registry.output_columns("stat")) | set(registry.output_columns("hist")) < features
