"""The feature job on the bundled real draws: tables, incremental runs, failures, Dask, devices.

The job runs with small families defined here (their values are easy to recompute
independently), on a copy of the staging model of the loaded schema, so each test can add,
change or remove draws without touching the shared schema.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from python_jobs import config, db, device, job
from python_jobs.features.registry import Family
from python_jobs.job import reading, reporting, session, tables, writing
from python_jobs.job import run as job_run
from python_jobs.job.errors import GpuFailure

BUNDLED_SERIES = 15  # loto6 N1..N6, B1 and bingo5 N1..N8
BUNDLED_ROWS = 2037 * 7 + 375 * 8
# Stat snapshots: the last draw of each year, loto6 2000-2025 and bingo5 2017-2024.
BUNDLED_SNAPSHOTS = 26 * 7 + 8 * 8


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


STAT = Family("tj_stat", "stat", tj_stat, outputs=tuple(tj_stat_outputs()), min_length=3)
HIST = Family("tj_hist", "hist", tj_hist, outputs=tuple(tj_hist_outputs()))

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

    return Family("tj_fragile", "stat", tj_fragile, outputs=("tj_fragile_len",))


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


def run(url: str, families: list[Family] | None = None, **kwargs) -> job.JobResult:
    options = {"scheduler": "sync", "batch_size": 4, "progress": False, "quiet": True, "device": "cpu"}
    options.update(kwargs)
    return job.run_job(url=url, families=families or [STAT, HIST], **options)


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
        values = fam.compute(y) if len(y) >= fam.min_rows() else dict.fromkeys(fam.output_names(), math.nan)
        rows.append({"loto": loto, "unique_id": uid, **values})
    return pd.DataFrame(rows)[["loto", "unique_id", *fam.output_names()]]


def expected_hist(url: str, fam: Family = HIST) -> pd.DataFrame:
    parts = []
    for (loto, uid), group in staging_series(url).items():
        part = pd.DataFrame(fam.compute(group["y"].to_numpy()))
        part.insert(0, "ds", group["ds"])
        part.insert(0, "unique_id", uid)
        part.insert(0, "loto", loto)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[["loto", "unique_id", "ds", *fam.output_names()]]


def assert_tables_match_direct_calls(url: str) -> None:
    got_stat = table(url, tables.STAT_TABLE, tj_stat_outputs(), ["loto", "unique_id"])
    pd.testing.assert_frame_equal(got_stat, expected_stat(url), check_exact=False, rtol=1e-12)
    got_hist = table(url, tables.HIST_TABLE, tj_hist_outputs(), ["loto", "unique_id", "ds"])
    pd.testing.assert_frame_equal(got_hist, expected_hist(url), check_exact=False, rtol=1e-12)


# -- tests -------------------------------------------------------------------------------------


def test_job_writes_one_row_per_series_and_per_draw(pg_url: str, job_schema: str) -> None:
    result = run(pg_url)
    assert result.status == "success"
    assert result.series_total == result.series_computed == BUNDLED_SERIES
    assert result.rows_written == {
        tables.STAT_TABLE: BUNDLED_SERIES,
        tables.HIST_TABLE: BUNDLED_ROWS,
        tables.STAT_HISTORY_TABLE: BUNDLED_SNAPSHOTS,
    }
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
        BUNDLED_SERIES + BUNDLED_ROWS + BUNDLED_SNAPSHOTS,
        True,
    )
    assert set(seconds) == {"tj_stat", "tj_hist"}
    # The wall seconds of every phase are reported, and the work is in read, compute, write.
    assert list(result.seconds_per_phase) == list(reporting.PHASES)
    assert all(v >= 0 for v in result.seconds_per_phase.values())
    assert min(result.seconds_per_phase[p] for p in ("read", "compute", "write")) > 0
    assert "wall seconds: setup" in result.summary()
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
    # ...and their latest stat snapshot moves to it: seven snapshots computed and written.
    assert grown.rows_written == {tables.STAT_TABLE: 7, tables.HIST_TABLE: 7, tables.STAT_HISTORY_TABLE: 7}
    assert grown.snapshots_computed == 7
    assert_tables_match_direct_calls(pg_url)

    # A corrected past value: that series is recomputed in full, the others are not touched.
    execute(
        pg_url,
        "update stg_lottery__draws set y = case when y = 1 then 2 else 1 end "
        "where loto = 'bingo5' and unique_id = 'N1' and ds = date '2017-04-05'",
    )
    corrected = run(pg_url)
    assert corrected.series_computed == 1
    assert corrected.rows_written[tables.HIST_TABLE] >= 1
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


def test_version_bump_and_full_refresh_recompute_everything(pg_url: str, job_schema: str) -> None:
    run(pg_url)
    execute(pg_url, "update py_features_stat set tj_mean = -1 where unique_id = 'N2'")
    # A lottery var the families do not read changes nothing...
    assert run(pg_url, dbt_vars="{season_length: 8}").series_computed == 0
    # ...their version numbers, bumped as an author does when the arithmetic changes, do.
    bumped = run(pg_url, families=[replace(STAT, version=2), replace(HIST, version=2)])
    assert bumped.computed_per_family == {"tj_stat": BUNDLED_SERIES, "tj_hist": BUNDLED_SERIES}
    # Same values as before, so only the two rows that were tampered with are rewritten.
    assert bumped.rows_written == {tables.STAT_TABLE: 2, tables.HIST_TABLE: 0, tables.STAT_HISTORY_TABLE: 0}
    assert bumped.snapshots_computed == BUNDLED_SNAPSHOTS
    assert_tables_match_direct_calls(pg_url)
    assert run(pg_url, families=[replace(STAT, version=2), replace(HIST, version=2)]).series_computed == 0
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
    with pytest.raises(job.SeriesFailure, match="bingo5/N3") as info:
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
        table(pg_url, tables.STAT_TABLE, tj_stat_outputs(), ["loto", "unique_id"]),
        table(pg_url, tables.HIST_TABLE, tj_hist_outputs(), ["loto", "unique_id", "ds"]),
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
        table(pg_url, tables.STAT_TABLE, tj_stat_outputs(), ["loto", "unique_id"]),
        table(pg_url, tables.HIST_TABLE, tj_hist_outputs(), ["loto", "unique_id", "ds"]),
    ]
    for want, have in zip(expected, got, strict=True):
        pd.testing.assert_frame_equal(have, want, check_exact=True)


def test_gpu_path_sends_whole_batches_and_falls_back_to_cpu(
    pg_url: str, job_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_run, "resolve_device", lambda requested, **kwargs: "gpu")
    batched = Family(
        "tj_stat",
        "stat",
        tj_stat,
        outputs=tuple(tj_stat_outputs()),
        min_length=3,
        gpu=f"{__name__}:tj_stat_batch",
    )
    GPU_CALLS.clear()
    result = run(pg_url, families=[batched, HIST], batch_size=8, device="gpu")
    # Two launches for fifteen series: each launch takes every snapshot of its batch's series.
    assert GPU_CALLS == [8 * 8, 7 * 26]
    assert result.device_per_family == {"tj_stat": "gpu", "tj_hist": "cpu"}
    assert_tables_match_direct_calls(pg_url)
    broken = Family(
        "tj_stat",
        "stat",
        tj_stat,
        outputs=tuple(tj_stat_outputs()),
        min_length=3,
        gpu=f"{__name__}:tj_broken_batch",
    )
    # Asked for by name, the GPU's failure stops the job; under auto each failing batch is
    # computed on the CPU and counted.
    with pytest.raises(GpuFailure, match="device lost"):
        run(pg_url, families=[broken, HIST], device="gpu", full_refresh=True)
    fallback = run(pg_url, families=[broken, HIST], device="auto", full_refresh=True)
    assert fallback.device_per_family["tj_stat"] == "cpu" and not fallback.errors
    assert fallback.gpu_failures_per_family == {"tj_stat": 4, "tj_hist": 0}
    assert "GPU failures: 4 batch(es)" in fallback.summary()
    assert_tables_match_direct_calls(pg_url)


def test_gpu_on_a_cpu_machine_is_one_clear_error(
    pg_url: str, job_schema: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(device, "gpu_available", lambda: False)
    with pytest.raises(device.DeviceError, match="--device cpu"):
        run(pg_url, device="gpu")
    from python_jobs.cli import build_parser

    args = build_parser().parse_args(["features", "--device", "gpu", "--no-progress"])
    assert job.main(args) == 2
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
    real_write, real_read = writing.write_batch, reading.read_series

    def flaky_write(conn: psycopg.Connection, batch: writing.BatchWrite) -> dict[str, int]:
        calls["write"] += 1
        if calls["write"] == 1:
            # Half-way through the transaction, as when the server goes away mid-batch.
            conn.execute("select 1")
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real_write(conn, batch)

    def flaky_read(conn: psycopg.Connection, keys: list[tuple[str, str]]) -> list[reading.SeriesData]:
        calls["read"] += 1
        if calls["read"] == 2:
            raise psycopg.errors.SerializationFailure("could not serialize access")
        return real_read(conn, keys)

    monkeypatch.setattr(writing, "write_batch", flaky_write)
    monkeypatch.setattr(reading, "read_series", flaky_read)
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
        got = table(pg_url, tables.STAT_TABLE, fam.output_names(), ["loto", "unique_id"])
        pd.testing.assert_frame_equal(got, expected_stat(pg_url, fam), check_exact=False, rtol=1e-12, atol=0)
    rolling = by_name["rolling"]
    got = table(pg_url, tables.HIST_TABLE, rolling.output_names(), ["loto", "unique_id", "ds"])
    pd.testing.assert_frame_equal(got, expected_hist(pg_url, rolling), check_exact=False, rtol=1e-12, atol=0)
    assert got[rolling.output_names()].notna().to_numpy().sum() > 0.9 * got[rolling.output_names()].size

    # A new draw appends one row per grown series; the rows kept are what a full run gives.
    execute(
        pg_url,
        "insert into stg_lottery__draws (loto, unique_id, ds, y) "
        "select loto, unique_id, date '2024-07-10', 6 - y from stg_lottery__draws "
        "where loto = 'bingo5' and ds = date '2024-07-03'",
    )
    grown = run(pg_url, families=names, batch_size=6)
    assert grown.series_computed == 8 and grown.rows_written[tables.HIST_TABLE] == 8
    got = table(pg_url, tables.HIST_TABLE, rolling.output_names(), ["loto", "unique_id", "ds"])
    pd.testing.assert_frame_equal(got, expected_hist(pg_url, rolling), check_exact=False, rtol=1e-12, atol=0)


def _keep_series(url: str, keep: list[tuple[str, str]]) -> None:
    """Only these series in the test's staging copy (families that cost seconds per series)."""
    execute(
        url,
        "delete from stg_lottery__draws "
        "where (loto, unique_id) not in (select * from unnest(%s::text[], %s::text[]))",
        ([k[0] for k in keep], [k[1] for k in keep]),
    )


def test_an_isolation_forest_setting_recomputes_its_series(pg_url: str, job_schema: str) -> None:
    from python_jobs.features import registry
    from python_jobs.features.anomaly import anomaly

    _keep_series(pg_url, [("bingo5", "N1"), ("bingo5", "N2")])
    first = run(pg_url, families=["anomaly"])
    assert first.computed_per_family == {"anomaly": 2}
    assert run(pg_url, families=["anomaly"]).series_computed == 0
    columns = ["hist_y_iforest_score"]
    with registry.override("anomaly", n_estimators=8):
        changed = run(pg_url, families=["anomaly"])
        assert changed.computed_per_family == {"anomaly": 2}
        assert changed.rows_written[tables.HIST_TABLE] > 0
        got = table(pg_url, tables.HIST_TABLE, columns, ["loto", "unique_id", "ds"])
        for (loto, uid), group in staging_series(pg_url).items():
            want = anomaly(group["y"].to_numpy(), n_estimators=8)["hist_y_iforest_score"]
            mine = got[(got.loto == loto) & (got.unique_id == uid)]["hist_y_iforest_score"].to_numpy()
            np.testing.assert_allclose(mine, want, rtol=0, atol=1e-12, equal_nan=True)
        assert run(pg_url, families=["anomaly"]).series_computed == 0
    # Back to the declared setting: the scores of the declared forest again.
    assert run(pg_url, families=["anomaly"]).computed_per_family == {"anomaly": 2}


def test_vars_change_the_job_columns_as_they_change_the_macro(
    pg_url: str, job_schema: str, capsys: pytest.CaptureFixture
) -> None:
    from python_jobs.cli import main
    from python_jobs.features import registry
    from python_jobs.features.rolling import rolling
    from python_jobs.tests.test_feature_names import render_macro

    _keep_series(pg_url, [("bingo5", "N1"), ("loto6", "B1")])
    assert main(["features", "--families", "rolling", "--no-progress", "--vars", "{windows: [5, 10]}"]) == 0
    capsys.readouterr()
    stored = [
        row[0]
        for row in execute(
            pg_url,
            "select column_name from information_schema.columns where table_schema = %s "
            "and table_name = 'py_features_hist' and column_name like 'hist_%%' order by ordinal_position",
            (job_schema,),
        )
    ]
    # windows 5 and 10, and the stat_window (30) whose quartiles the IQR outlier flag reads
    expected = [f"hist_y_roll_{stat}_w{w}" for stat in ("median", "q25", "q75") for w in (5, 10, 30)]
    assert stored == expected
    macro = render_macro("py_hist_columns", {"windows": [5, 10]})
    assert [col for col in macro if col.startswith("hist_y_roll_")] == expected
    got = table(pg_url, tables.HIST_TABLE, expected, ["loto", "unique_id", "ds"])
    want = pd.concat(
        [
            pd.DataFrame(rolling(group["y"].to_numpy(), (5, 10, 30)))[expected]
            for _, group in sorted(staging_series(pg_url).items())
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(got[expected], want, check_exact=False, rtol=1e-12)
    # The same vars again: nothing to do; the project's windows: another version, recomputed.
    assert main(["features", "--families", "rolling", "--no-progress", "--vars", "{windows: [5, 10]}"]) == 0
    assert "0 computed, 2 unchanged" in capsys.readouterr().out
    assert run(pg_url, families=["rolling"]).computed_per_family == {"rolling": 2}
    assert registry.family("rolling").output_names()[0] == "hist_y_roll_median_w3"


def test_a_killed_run_is_marked_failed_by_the_next_one(pg_url: str, job_schema: str) -> None:
    run(pg_url)
    # What a job killed mid-run leaves behind: its row still 'running', never finished.
    execute(
        pg_url,
        "insert into py_job_runs (run_id, started_at, status, device, scheduler) "
        "values ('killed', now() - interval '1 hour', 'running', 'cpu', 'sync')",
    )
    result = run(pg_url)
    rows = dict(execute(pg_url, "select run_id, status from py_job_runs"))
    assert rows["killed"] == "failed" and rows[result.run_id] == "success"
    error, finished = execute(
        pg_url, "select error, finished_at is not null from py_job_runs where run_id = 'killed'"
    )[0]
    assert "interrupted" in error and finished
    assert list(rows.values()).count("running") == 0


def _hist_primary_key(url: str) -> list[str]:
    with session.connect(url) as conn:
        key = tables.primary_key(conn, tables.HIST_TABLE)
    return [] if key is None else [key]


def test_a_first_load_builds_the_key_once_and_a_killed_one_is_repaired(
    pg_url: str, job_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real_write = writing.write_batch

    def spy(conn: psycopg.Connection, batch: writing.BatchWrite) -> dict[str, int]:
        # The hist rows of an empty table go in without the key (built once at the end).
        seen.append(batch.bulk_into == tables.HIST_TABLE)
        assert len(_hist_primary_key(pg_url)) == (0 if seen[-1] else 1)
        return real_write(conn, batch)

    monkeypatch.setattr(writing, "write_batch", spy)
    run(pg_url)
    assert seen and all(seen)
    assert len(_hist_primary_key(pg_url)) == 1
    assert_tables_match_direct_calls(pg_url)
    # Later runs find stored rows: the key stays, and changed rows go through it.
    seen.clear()
    execute(pg_url, "update stg_lottery__draws set y = y + 1 where loto = 'bingo5' and unique_id = 'N2'")
    run(pg_url)
    assert seen == [False] and len(_hist_primary_key(pg_url)) == 1
    assert_tables_match_direct_calls(pg_url)
    # A run killed half-way through a load (the key never rebuilt): the next run builds it.
    execute(pg_url, f"alter table py_features_hist drop constraint {_hist_primary_key(pg_url)[0]}")
    run(pg_url, full_refresh=True)
    assert len(_hist_primary_key(pg_url)) == 1
    assert_tables_match_direct_calls(pg_url)


def test_the_lock_and_connections_are_released_when_a_run_fails(pg_url: str, job_schema: str) -> None:
    target = float(staging_series(pg_url)[("bingo5", "N3")]["y"].sum())
    with pytest.raises(job.SeriesFailure):
        run(pg_url, families=[fragile(target)], on_error="raise")
    key = f"loto_features.py_job.{job_schema}"
    # The reader held the job's session lock: it is free again only if that connection closed.
    with db.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()[0]
        conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def test_the_job_creates_its_tables_from_one_definition(
    pg_url: str, fresh_schema: Callable[[str], str]
) -> None:
    from python_jobs.features import registry

    schema = fresh_schema("job_ddl")
    with session.connect(pg_url) as conn:
        tables.ensure_tables(conn, registry.output_columns("stat"), registry.output_columns("hist"))
    found = execute(
        pg_url,
        "select table_name, column_name, data_type from information_schema.columns where table_schema = %s",
        (schema,),
    )
    by_table: dict[str, dict[str, str]] = {}
    for name, column, kind in found:
        by_table.setdefault(name, {})[column] = kind
    assert set(by_table) == set(tables.JOB_TABLES)
    for name, (columns, _) in tables.TABLES.items():
        assert set(by_table[name]) >= {col for col, _ in columns}
    features = {**by_table[tables.STAT_TABLE], **by_table[tables.HIST_TABLE]}
    for col in registry.output_columns("stat") + registry.output_columns("hist"):
        assert features[col] == "double precision"
    keys = execute(
        pg_url,
        "select tc.table_name, string_agg(kcu.column_name, ',' order by kcu.ordinal_position) "
        "from information_schema.table_constraints as tc "
        "join information_schema.key_column_usage as kcu using (constraint_schema, constraint_name) "
        "where tc.table_schema = %s and tc.constraint_type = 'PRIMARY KEY' group by tc.table_name",
        (schema,),
    )
    assert dict(keys) == {name: ",".join(key) for name, (_, key) in tables.TABLES.items()}
