"""The feature job's pieces that need no database: COPY encoding, planning, one family on a batch."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import pickle
import struct

import numpy as np
import pytest

from python_jobs import config, device, job_io, jobs
from python_jobs.features.registry import Family
from python_jobs.jobs_args import DEFAULT_BATCH_SIZE, add_job_arguments


def _stat(y: np.ndarray) -> dict[str, float]:
    return {"u_mean": float(np.mean(y)), "u_max": float(np.max(y))}


def _hist(y: np.ndarray) -> dict[str, np.ndarray]:
    return {"u_cumsum": np.cumsum(y)}


def _bad_length(y: np.ndarray) -> dict[str, np.ndarray]:
    return {"u_cumsum": np.cumsum(y)[:-1]}


def _raises_on_big(y: np.ndarray) -> dict[str, float]:
    if y.max() > 100:
        raise ValueError("too big")
    return {"u_mean": float(np.mean(y)), "u_max": float(np.max(y))}


STAT = Family("u_stat", "stat", _stat, outputs=lambda: ["u_mean", "u_max"], min_length=3)
HIST = Family("u_hist", "hist", _hist, outputs=lambda: ["u_cumsum"])


def _series(name: str, values: list[float]) -> job_io.SeriesData:
    ds = np.datetime64("2020-01-02") + np.arange(len(values)).astype("timedelta64[D]")
    return job_io.SeriesData("t", name, ds, np.asarray(values, dtype=float))


# -- binary COPY ------------------------------------------------------------------------------


def _reference_copy(rows: list[tuple[int, int, float]]) -> bytes:
    """PostgreSQL's binary COPY layout written field by field with struct (documented format)."""
    out = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    for sid, days, value in rows:
        out.append(struct.pack(">h", 3))
        out.append(struct.pack(">ii", 4, sid))
        out.append(struct.pack(">ii", 4, days))
        out.append(struct.pack(">id", 8, value))
    out.append(struct.pack(">h", -1))
    return b"".join(out)


def _reference_series_copy(series: list[tuple[int, list[int], list[float]]]) -> bytes:
    """The read query's COPY: (int4 sid, bytea of int4 days, bytea of float8 values) per series."""
    out = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    for sid, days, values in series:
        day_bytes = b"".join(struct.pack(">i", d) for d in days)
        value_bytes = b"".join(struct.pack(">d", v) for v in values)
        out.append(struct.pack(">h", 3))
        out.append(struct.pack(">ii", 4, sid))
        out.append(struct.pack(">i", len(day_bytes)) + day_bytes)
        out.append(struct.pack(">i", len(value_bytes)) + value_bytes)
    out.append(struct.pack(">h", -1))
    return b"".join(out)


def test_binary_payload_matches_the_documented_layout() -> None:
    rows = [(1, 0, 1.5), (1, 1, -2.25), (2, 8000, 1e300)]
    payload = job_io.binary_copy_payload(
        [np.array([r[0] for r in rows]), np.array([r[1] for r in rows])],
        np.array([[r[2]] for r in rows]),
    )
    assert payload == _reference_copy(rows)


def test_binary_payload_turns_infinities_into_nan() -> None:
    payload = job_io.binary_copy_payload([np.array([1, 2])], np.array([[np.inf], [-np.inf]]))
    values = np.frombuffer(
        payload[19:-2], dtype=[("n", ">i2"), ("l0", ">i4"), ("i", ">i4"), ("l1", ">i4"), ("v", ">f8")]
    )
    assert np.isnan(values["v"]).all()


def test_read_copy_parser_decodes_each_series() -> None:
    parsed = job_io.parse_read_copy(
        _reference_series_copy([(1, [-10, 9000], [3.0, 7.5]), (3, [9001], [-1.0])])
    )
    assert [(sid, days.tolist(), values.tolist()) for sid, days, values in parsed] == [
        (1, [-10, 9000], [3.0, 7.5]),
        (3, [9001], [-1.0]),
    ]
    assert job_io.parse_read_copy(_reference_series_copy([])) == []


def test_read_copy_parser_rejects_other_layouts() -> None:
    with pytest.raises(job_io.JobIOError, match="binary format"):
        job_io.parse_read_copy(b"not a copy")
    with pytest.raises(job_io.JobIOError, match="4 fields"):
        job_io.parse_read_copy(
            _reference_copy([(1, 1, 1.0)]).replace(struct.pack(">h", 3), struct.pack(">h", 4))
        )
    mismatched = _reference_series_copy([(1, [1, 2], [1.0])])
    with pytest.raises(job_io.JobIOError, match="different lengths"):
        job_io.parse_read_copy(mismatched)


def test_long_column_names_are_refused() -> None:
    with pytest.raises(job_io.JobIOError, match="longer than 63"):
        job_io.check_identifiers(["stat_" + "x" * 60])
    job_io.check_identifiers(["stat_" + "x" * 58])


# -- one family on one batch -------------------------------------------------------------------


def test_compute_family_stat_and_hist_values() -> None:
    batch = jobs.SeriesBatch([_series("A", [1, 2, 3]), _series("B", [4, 5, 6, 7])])
    stat = jobs.compute_family(STAT, batch, "cpu", "warn")
    np.testing.assert_array_equal(stat.values, [[2.0, 3.0], [5.5, 7.0]])
    hist = jobs.compute_family(HIST, batch, "cpu", "warn")
    np.testing.assert_array_equal(hist.values[:, 0], [1, 3, 6, 4, 9, 15, 22])
    assert stat.errors == [] and hist.errors == []


def test_short_series_get_nan_without_an_error() -> None:
    batch = jobs.SeriesBatch([_series("short", [1, 2]), _series("ok", [1, 2, 3])])
    res = jobs.compute_family(STAT, batch, "cpu", "raise")
    assert res.too_short == 1 and res.errors == []
    assert np.isnan(res.values[0]).all()
    np.testing.assert_array_equal(res.values[1], [2.0, 3.0])


def test_non_finite_input_and_bad_outputs_are_errors() -> None:
    batch = jobs.SeriesBatch([_series("nan", [1, math.nan, 3]), _series("ok", [1, 2, 3])])
    res = jobs.compute_family(STAT, batch, "cpu", "warn")
    assert [i for i, _ in res.errors] == [0]
    assert "non-finite" in res.errors[0][1]
    bad = Family("u_bad", "hist", _bad_length, outputs=lambda: ["u_cumsum"])
    res = jobs.compute_family(bad, jobs.SeriesBatch([_series("A", [1, 2, 3])]), "cpu", "warn")
    assert "shape" in res.errors[0][1] and np.isnan(res.values).all()


def test_raise_mode_names_the_series_and_survives_pickling() -> None:
    fam = Family("u_fragile", "stat", _raises_on_big, outputs=lambda: ["u_mean", "u_max"])
    batch = jobs.SeriesBatch([_series("small", [1, 2, 3]), _series("big", [1, 200, 3])])
    with pytest.raises(jobs.SeriesFailure, match="t/big") as info:
        jobs.compute_family(fam, batch, "cpu", "raise")
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.family, again.loto, again.unique_id) == ("u_fragile", "t", "big")
    assert "too big" in str(again)
    res = jobs.compute_family(fam, batch, "cpu", "ignore")
    assert [i for i, _ in res.errors] == [1]
    assert np.isnan(res.values[1]).all() and res.values[0, 0] == 2.0


# -- planning ----------------------------------------------------------------------------------


def _info(uid: str, n: int, checksum: str) -> job_io.SeriesInfo:
    return job_io.SeriesInfo("t", uid, n, dt.date(2020, 1, n), checksum)


def test_plan_picks_new_changed_failed_and_outdated_pairs() -> None:
    versions = {"u_stat": "v1", "u_hist": "v1"}
    summary = [
        _info("same", 5, "c1"),
        _info("changed", 6, "c2"),
        _info("new", 3, "c3"),
        _info("failed", 4, "c4"),
    ]
    ok = {"status": "ok", "feature_version": "v1"}
    state = {
        ("t", "same", "u_stat"): job_io.StateRow(n_rows=5, max_ds=dt.date(2020, 1, 5), checksum="c1", **ok),
        ("t", "same", "u_hist"): job_io.StateRow(n_rows=5, max_ds=dt.date(2020, 1, 5), checksum="c1", **ok),
        ("t", "changed", "u_stat"): job_io.StateRow(
            n_rows=5, max_ds=dt.date(2020, 1, 5), checksum="old", **ok
        ),
        ("t", "changed", "u_hist"): job_io.StateRow(
            n_rows=5, max_ds=dt.date(2020, 1, 5), checksum="old", **ok
        ),
        ("t", "failed", "u_stat"): job_io.StateRow("v1", 4, dt.date(2020, 1, 4), None, "error"),
        ("t", "failed", "u_hist"): job_io.StateRow(n_rows=4, max_ds=dt.date(2020, 1, 4), checksum="c4", **ok),
    }
    planned = jobs._plan(summary, state, [STAT, HIST], versions, full_refresh=False)
    assert {p.info.unique_id: p.families for p in planned} == {
        "changed": ("u_stat", "u_hist"),
        "new": ("u_stat", "u_hist"),
        "failed": ("u_stat",),
    }
    # The grown series may append its per-draw rows after the stored last date.
    candidates = jobs._append_candidates(planned, state, {"u_stat": "stat", "u_hist": "hist"}, versions)
    assert [(c[0].info.unique_id, c[1], c[2]) for c in candidates] == [
        ("changed", dt.date(2020, 1, 5), "old")
    ]
    # A new version of one family recomputes only that family, everywhere.
    bumped = jobs._plan(summary, state, [STAT, HIST], {"u_stat": "v2", "u_hist": "v1"}, full_refresh=False)
    assert {p.info.unique_id: p.families for p in bumped}["same"] == ("u_stat",)
    everything = jobs._plan(summary, state, [STAT, HIST], versions, full_refresh=True)
    assert len(everything) == 4 and all(p.families == ("u_stat", "u_hist") for p in everything)


def test_batches_keep_one_family_set_each() -> None:
    planned = [jobs._Planned(_info(f"s{i}", 3, "c"), ("a",) if i % 2 else ("a", "b")) for i in range(7)]
    batches = list(jobs._batches(planned, 2))
    assert all(len({p.families for p in batch}) == 1 for batch in batches)
    assert sorted(p.info.unique_id for batch in batches for p in batch) == sorted(f"s{i}" for i in range(7))
    assert max(len(batch) for batch in batches) == 2


def test_family_version_follows_settings_outputs_and_source(monkeypatch: pytest.MonkeyPatch) -> None:
    before = jobs.family_version(STAT)
    assert jobs.family_version(STAT) == before
    monkeypatch.setattr(config, "WINDOWS", (3, 7))
    assert jobs.family_version(STAT) != before
    monkeypatch.undo()
    renamed = Family("u_stat", "stat", _stat, outputs=lambda: ["u_mean", "u_maximum"], min_length=3)
    assert jobs.family_version(renamed) != before


# -- device and arguments ----------------------------------------------------------------------


def test_device_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "gpu_available", lambda: False)
    monkeypatch.delenv("DEVICE", raising=False)
    assert device.resolve_device("auto") == "cpu"
    assert device.resolve_device(None) == "cpu"
    assert device.resolve_device("cpu") == "cpu"
    with pytest.raises(device.DeviceError, match="--device cpu"):
        device.resolve_device("gpu")
    monkeypatch.setenv("DEVICE", "gpu")
    with pytest.raises(device.DeviceError, match="no GPU is usable"):
        device.resolve_device(None)
    with pytest.raises(device.DeviceError, match="unknown device"):
        device.resolve_device("tpu")
    monkeypatch.setattr(device, "gpu_available", lambda: True)
    assert device.resolve_device("auto") == "gpu"
    assert device.resolve_device("gpu") == "gpu"


def test_job_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVICE", "cpu")
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    parser = argparse.ArgumentParser()
    add_job_arguments(parser)
    args = parser.parse_args([])
    assert (args.device, args.scheduler, args.families, args.batch_size) == (
        "cpu",
        None,
        None,
        DEFAULT_BATCH_SIZE,
    )
    assert (args.on_error, args.full_refresh, args.no_progress) == ("warn", False, False)
    args = parser.parse_args(
        ["--device", "gpu", "--scheduler", "tcp://10.0.0.1:8786", "--families", "a", "--families", "b"]
        + ["--batch-size", "8", "--on-error", "raise", "--full-refresh", "--no-progress", "--workers", "3"]
    )
    assert args.families == ["a", "b"] and args.scheduler == "tcp://10.0.0.1:8786" and args.workers == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--batch-size", "0"])


def test_unknown_scheduler_is_a_clear_error() -> None:
    with pytest.raises(jobs.JobError, match="unknown scheduler"):
        jobs.make_executor("carrier-pigeon", device="cpu", work_seconds=10)
    assert isinstance(jobs.make_executor(None, device="cpu", work_seconds=10), jobs.SyncExecutor)
    assert isinstance(jobs.make_executor("auto", device="gpu", work_seconds=10**6), jobs.SyncExecutor)


def test_work_estimate_follows_costs_and_lengths() -> None:
    cheap = Family("u_cheap", "stat", _stat, outputs=lambda: ["u_mean"], cost="low")
    dear = Family("u_dear", "stat", _stat, outputs=lambda: ["u_max"], cost="high")
    planned = [jobs._Planned(_info(f"s{i}", 1, "c"), ("u_cheap", "u_dear")) for i in range(3)]
    for item in planned:
        item.info = job_io.SeriesInfo("t", item.info.unique_id, 2000, item.info.max_ds, "c")
    expected = 3 * 2 * (jobs.COST_SECONDS["low"] + jobs.COST_SECONDS["high"])
    assert jobs.estimated_seconds(planned, [cheap, dear]) == pytest.approx(expected)
