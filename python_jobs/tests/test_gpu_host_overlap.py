"""On the GPU, the host-only stages of GPU families run in a process pool beside the device.

No GPU is needed: NumPy stands in for CuPy (as the array-code tests do), so the families'
device code runs here. Checked: the host stage really runs in another process, its failure is
the GPU batch's failure as before (stop where the GPU was asked for, else the CPU and a
count), and the feature job with the pool writes exactly what the sequential job writes.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable

import numpy as np
import pytest
from psycopg import sql

from python_jobs import config, db, gpu
from python_jobs.features import registry
from python_jobs.features.registry import Family
from python_jobs.gpu import with_host_stage
from python_jobs.job import SeriesBatch, compute_family, executors, tables
from python_jobs.job import run as job_run
from python_jobs.job.errors import GpuFailure
from python_jobs.job.reading import SeriesData
from python_jobs.tests.family_data import bingo5, loto6
from python_jobs.tests.test_job import copy_staging


def _stat(y: np.ndarray) -> dict[str, float]:
    return {"ho_sum": float(np.sum(y)), "ho_pid": float(os.getpid())}


def ho_host(ys: list[np.ndarray]) -> list[float]:
    """The host stage: the process it ran in, per series."""
    return [float(os.getpid()) for _ in ys]


def ho_broken_host(ys: list[np.ndarray]) -> list[float]:
    raise RuntimeError("the host stage failed")


@with_host_stage(ho_host)
def ho_batch(ys: list[np.ndarray], host: Callable[[], list] | None = None) -> list[dict[str, float]]:
    pids = host() if host is not None else ho_host(ys)
    return [{"ho_sum": float(np.sum(y)), "ho_pid": pid} for y, pid in zip(ys, pids, strict=True)]


@with_host_stage(ho_broken_host)
def ho_broken_batch(ys: list[np.ndarray], host: Callable[[], list] | None = None) -> list[dict[str, float]]:
    return ho_batch(ys, host if host is not None else lambda: ho_broken_host(ys))


OUTPUTS = ("ho_sum", "ho_pid")
HOSTED = Family("ho_stat", "stat", _stat, outputs=OUTPUTS, gpu=f"{__name__}:ho_batch")
BROKEN = Family("ho_stat", "stat", _stat, outputs=OUTPUTS, gpu=f"{__name__}:ho_broken_batch")


def _batch() -> SeriesBatch:
    ds = np.arange(60).astype("datetime64[D]").astype("datetime64[us]")
    return SeriesBatch([SeriesData("loto6", key, ds, loto6()[key][:60]) for key in ("N1", "N2", "N3")])


@pytest.fixture
def pool() -> executors.HostPoolExecutor:
    executor = executors.HostPoolExecutor(1)
    yield executor
    executor.close()


@pytest.fixture
def numpy_device(monkeypatch) -> None:
    """A GPU here: the readiness check passes and ``cupy()`` hands out NumPy."""
    monkeypatch.setattr(gpu, "unavailable_reason", lambda: None)
    monkeypatch.setattr(gpu, "_memory_limit_applied", lambda: None)
    monkeypatch.setitem(sys.modules, "cupy", np)


def test_the_host_stage_runs_in_a_pool_process_and_the_rest_here(pool):
    batch = _batch()
    pooled = pool.submit(compute_family, HOSTED, batch, "gpu", "raise", True).result()
    inline = executors.SyncExecutor().submit(compute_family, HOSTED, batch, "gpu", "raise", True).result()
    assert pooled.device == inline.device == "gpu"
    np.testing.assert_array_equal(pooled.values[:, 0], inline.values[:, 0])
    assert set(inline.values[:, 1]) == {os.getpid()}
    (worker,) = set(pooled.values[:, 1])
    assert worker != os.getpid()


def test_on_the_cpu_nothing_goes_to_the_pool(pool):
    result = pool.submit(compute_family, HOSTED, _batch(), "cpu", "raise").result()
    assert result.device == "cpu" and set(result.values[:, 1]) == {os.getpid()}
    assert pool._pool is None


def test_a_failed_host_stage_is_the_gpu_batch_failure(pool, capsys):
    with pytest.raises(GpuFailure, match=r"ho_stat.*the host stage failed"):
        pool.submit(compute_family, BROKEN, _batch(), "gpu", "raise", True).result()
    fallback = pool.submit(compute_family, BROKEN, _batch(), "gpu", "raise", False).result()
    assert fallback.device == "cpu" and fallback.gpu_failures == 1
    assert set(fallback.values[:, 1]) == {os.getpid()}
    assert "job.gpu_batch_failed" in capsys.readouterr().err


def test_the_gpu_job_runs_the_host_stages_in_a_pool_under_auto(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    chosen = executors.make_executor(None, device="gpu", work_seconds=10**6)
    assert isinstance(chosen, executors.HostPoolExecutor) and chosen.workers == 3
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert isinstance(executors.make_executor(None, device="gpu", work_seconds=0.0), executors.SyncExecutor)
    assert isinstance(executors.make_executor("sync", device="gpu", work_seconds=0.0), executors.SyncExecutor)


# -- the real families, batch by batch as the job submits and collects them ---------------------

FAMILIES = ("catch22", "matrix_profile_left", "anomaly")


def _real_batches() -> list[SeriesBatch]:
    out = []
    for loto, values in (("loto6", loto6()), ("bingo5", bingo5())):
        keys = list(values)[:3]
        series = []
        for key in keys:
            y = np.asarray(values[key], dtype=np.float64)
            ds = np.arange(len(y)).astype("datetime64[D]").astype("datetime64[us]")
            series.append(SeriesData(loto, key, ds, y))
        cuts = [(len(s.y) // 2, len(s.y)) for s in series]
        out.append(SeriesBatch(series, cuts))
    return out


def _run_batches(executor, batches: list[SeriesBatch]) -> list[dict]:
    """Submit every family of each batch, collecting a batch once the next is submitted (as the job)."""
    fams = [registry.family(name).bind() for name in FAMILIES]
    in_flight: deque = deque()
    collected = []
    for batch in batches:
        in_flight.append(
            {fam.name: executor.submit(compute_family, fam, batch, "gpu", "raise", True) for fam in fams}
        )
        while len(in_flight) >= executor.max_in_flight:
            collected.append({name: fut.result() for name, fut in in_flight.popleft().items()})
    collected.extend({name: fut.result() for name, fut in futures.items()} for futures in in_flight)
    return collected


def test_real_families_with_the_pool_equal_the_sequential_run(numpy_device, pool):
    sequential = _run_batches(executors.SyncExecutor(), _real_batches())
    overlapped = _run_batches(pool, _real_batches())
    assert len(overlapped) == len(sequential) == 2
    for got, want in zip(overlapped, sequential, strict=True):
        assert list(got) == list(want) == list(FAMILIES)
        for name in FAMILIES:
            assert got[name].device == want[name].device == "gpu", name
            assert got[name].errors == want[name].errors == [], name
            np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert pool._pool is not None, "catch22 and anomaly declare host stages"


# -- the feature job -----------------------------------------------------------------------------


def _job_tables(url: str, schema: str) -> dict[str, list[tuple]]:
    """The job's feature tables in ``schema``, keys first, without when they were written."""
    out = {}
    with db.connect(url, autocommit=True) as conn:
        for name in (tables.STAT_TABLE, tables.HIST_TABLE, tables.STAT_HISTORY_TABLE):
            columns = [
                row[0]
                for row in conn.execute(
                    "select column_name from information_schema.columns where table_schema = %s"
                    " and table_name = %s and column_name not in ('computed_at', 'run_id')"
                    " order by ordinal_position",
                    (schema, name),
                )
            ]
            keys = sql.SQL(", ").join(map(sql.Identifier, tables.TABLES[name][1]))
            query = sql.SQL("select {} from {} order by {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), db.qualified(name, schema), keys
            )
            out[name] = [tuple(columns), *conn.execute(query).fetchall()]
    return out


def test_the_gpu_job_with_the_pool_writes_what_the_sequential_job_writes(
    pg_url, loaded_schema, fresh_schema, numpy_device, monkeypatch
):
    monkeypatch.setattr(job_run, "resolve_device", lambda requested, **kwargs: "gpu")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the pool under auto, on any machine
    written = {}
    for scheduler in ("sync", None):
        schema = fresh_schema("hostpool")
        copy_staging(pg_url, loaded_schema, schema)
        assert config.target_schema() == schema
        result = job_run.run_job(
            url=pg_url,
            families=list(FAMILIES),
            device="gpu",
            scheduler=scheduler,
            batch_size=8,
            progress=False,
            quiet=True,
            n_workers=1,
        )
        assert not result.errors and set(result.device_per_family.values()) == {"gpu"}
        written[result.scheduler] = _job_tables(pg_url, schema)
    assert set(written) == {"sync", "host-pool"}
    for name, rows in written["sync"].items():
        assert len(rows) > 1, name
        assert written["host-pool"][name] == rows, name
