"""The feature job's pieces that need no database: COPY encoding, planning, versions, one family."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import pickle
import struct

import numpy as np
import pytest

from python_jobs import definitions, device, job
from python_jobs.features import registry
from python_jobs.features.registry import Family, definition
from python_jobs.job import JobIOError, executors, pgcopy, planning, reading, tables
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


STAT = Family("u_stat", "stat", _stat, outputs=("u_mean", "u_max"), min_length=3)
HIST = Family("u_hist", "hist", _hist, outputs=("u_cumsum",))


def _series(name: str, values: list[float]) -> reading.SeriesData:
    ds = np.datetime64("2020-01-02") + np.arange(len(values)).astype("timedelta64[D]")
    return reading.SeriesData("t", name, ds, np.asarray(values, dtype=float))


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
    """The read query's COPY: (int4 sid, bytea of int8 timestamps, bytea of float8 values) per
    series; a timestamp is microseconds since 2000-01-01."""
    out = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    for sid, days, values in series:
        day_bytes = b"".join(struct.pack(">q", d) for d in days)
        value_bytes = b"".join(struct.pack(">d", v) for v in values)
        out.append(struct.pack(">h", 3))
        out.append(struct.pack(">ii", 4, sid))
        out.append(struct.pack(">i", len(day_bytes)) + day_bytes)
        out.append(struct.pack(">i", len(value_bytes)) + value_bytes)
    out.append(struct.pack(">h", -1))
    return b"".join(out)


def test_binary_payload_matches_the_documented_layout() -> None:
    rows = [(1, 0, 1.5), (1, 1, -2.25), (2, 8000, 1e300)]
    payload = pgcopy.fixed_rows(
        [np.array([r[0] for r in rows]), np.array([r[1] for r in rows])],
        np.array([[r[2]] for r in rows]),
    )
    assert payload == _reference_copy(rows)


def test_binary_payload_turns_infinities_into_nan() -> None:
    payload = pgcopy.fixed_rows([np.array([1, 2])], np.array([[np.inf], [-np.inf]]))
    values = np.frombuffer(
        payload[19:-2], dtype=[("n", ">i2"), ("l0", ">i4"), ("i", ">i4"), ("l1", ">i4"), ("v", ">f8")]
    )
    assert np.isnan(values["v"]).all()


def test_read_copy_parser_decodes_each_series() -> None:
    parsed = reading.parse_read_copy(
        _reference_series_copy([(1, [-10, 9000 * 86_400_000_000], [3.0, 7.5]), (3, [1_800_000_000], [-1.0])])
    )
    assert [(sid, days.tolist(), values.tolist()) for sid, days, values in parsed] == [
        (1, [-10, 9000 * 86_400_000_000], [3.0, 7.5]),
        (3, [1_800_000_000], [-1.0]),
    ]
    assert reading.parse_read_copy(_reference_series_copy([])) == []


def test_read_copy_parser_rejects_other_layouts() -> None:
    with pytest.raises(JobIOError, match="binary format"):
        reading.parse_read_copy(b"not a copy")
    with pytest.raises(JobIOError, match="4 fields"):
        reading.parse_read_copy(
            _reference_copy([(1, 1, 1.0)]).replace(struct.pack(">h", 3), struct.pack(">h", 4))
        )
    mismatched = _reference_series_copy([(1, [1, 2], [1.0])])
    with pytest.raises(JobIOError, match="different lengths"):
        reading.parse_read_copy(mismatched)


def test_long_column_names_are_refused() -> None:
    with pytest.raises(JobIOError, match="longer than 63"):
        tables.check_identifiers(["stat_" + "x" * 60])
    tables.check_identifiers(["stat_" + "x" * 58])


# -- one family on one batch -------------------------------------------------------------------


def test_compute_family_stat_and_hist_values() -> None:
    batch = job.SeriesBatch([_series("A", [1, 2, 3]), _series("B", [4, 5, 6, 7])])
    stat = job.compute_family(STAT, batch, "cpu", "warn")
    np.testing.assert_array_equal(stat.values, [[2.0, 3.0], [5.5, 7.0]])
    hist = job.compute_family(HIST, batch, "cpu", "warn")
    np.testing.assert_array_equal(hist.values[:, 0], [1, 3, 6, 4, 9, 15, 22])
    assert stat.errors == [] and hist.errors == []


def test_short_series_get_nan_without_an_error() -> None:
    batch = job.SeriesBatch([_series("short", [1, 2]), _series("ok", [1, 2, 3])])
    res = job.compute_family(STAT, batch, "cpu", "raise")
    assert res.too_short == 1 and res.errors == []
    assert np.isnan(res.values[0]).all()
    np.testing.assert_array_equal(res.values[1], [2.0, 3.0])


def test_non_finite_input_and_bad_outputs_are_errors() -> None:
    batch = job.SeriesBatch([_series("nan", [1, math.nan, 3]), _series("ok", [1, 2, 3])])
    res = job.compute_family(STAT, batch, "cpu", "warn")
    assert [i for i, _ in res.errors] == [0]
    assert "non-finite" in res.errors[0][1]
    bad = Family("u_bad", "hist", _bad_length, outputs=("u_cumsum",))
    res = job.compute_family(bad, job.SeriesBatch([_series("A", [1, 2, 3])]), "cpu", "warn")
    assert "shape" in res.errors[0][1] and np.isnan(res.values).all()


def test_raise_mode_names_the_series_and_survives_pickling() -> None:
    fam = Family("u_fragile", "stat", _raises_on_big, outputs=("u_mean", "u_max"))
    batch = job.SeriesBatch([_series("small", [1, 2, 3]), _series("big", [1, 200, 3])])
    with pytest.raises(job.SeriesFailure, match="t/big") as info:
        job.compute_family(fam, batch, "cpu", "raise")
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.family, again.loto, again.unique_id) == ("u_fragile", "t", "big")
    assert "too big" in str(again)
    res = job.compute_family(fam, batch, "cpu", "ignore")
    assert [i for i, _ in res.errors] == [1]
    assert np.isnan(res.values[1]).all() and res.values[0, 0] == 2.0


# -- planning ----------------------------------------------------------------------------------


def _info(uid: str, n: int, checksum: str) -> reading.SeriesInfo:
    return reading.SeriesInfo("t", uid, n, dt.date(2020, 1, n), checksum)


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
        ("t", "same", "u_stat"): reading.StateRow(n_rows=5, max_ds=dt.date(2020, 1, 5), checksum="c1", **ok),
        ("t", "same", "u_hist"): reading.StateRow(n_rows=5, max_ds=dt.date(2020, 1, 5), checksum="c1", **ok),
        ("t", "changed", "u_stat"): reading.StateRow(
            n_rows=5, max_ds=dt.date(2020, 1, 5), checksum="old", **ok
        ),
        ("t", "changed", "u_hist"): reading.StateRow(
            n_rows=5, max_ds=dt.date(2020, 1, 5), checksum="old", **ok
        ),
        ("t", "failed", "u_stat"): reading.StateRow("v1", 4, dt.date(2020, 1, 4), None, "error"),
        ("t", "failed", "u_hist"): reading.StateRow(
            n_rows=4, max_ds=dt.date(2020, 1, 4), checksum="c4", **ok
        ),
    }
    planned = planning.plan(summary, state, [STAT, HIST], versions, full_refresh=False)
    assert {p.info.unique_id: p.families for p in planned} == {
        "changed": ("u_stat", "u_hist"),
        "new": ("u_stat", "u_hist"),
        "failed": ("u_stat",),
    }
    # The grown series may append its per-draw rows after the stored last date.
    candidates = planning.append_candidates(planned, state, {"u_stat": "stat", "u_hist": "hist"}, versions)
    assert [(c[0].info.unique_id, c[1], c[2]) for c in candidates] == [
        ("changed", dt.date(2020, 1, 5), "old")
    ]
    # A new version of one family recomputes only that family, everywhere.
    bumped = planning.plan(summary, state, [STAT, HIST], {"u_stat": "v2", "u_hist": "v1"}, full_refresh=False)
    assert {p.info.unique_id: p.families for p in bumped}["same"] == ("u_stat",)
    everything = planning.plan(summary, state, [STAT, HIST], versions, full_refresh=True)
    assert len(everything) == 4 and all(p.families == ("u_stat", "u_hist") for p in everything)


def test_batches_keep_one_family_set_each() -> None:
    planned = [planning.Planned(_info(f"s{i}", 3, "c"), ("a",) if i % 2 else ("a", "b")) for i in range(7)]
    batches = list(planning.batches(planned, 2))
    assert all(len({p.families for p in batch}) == 1 for batch in batches)
    assert sorted(p.info.unique_id for batch in batches for p in batch) == sorted(f"s{i}" for i in range(7))
    assert max(len(batch) for batch in batches) == 2


def _windowed(y: np.ndarray, *, windows: tuple[int, ...], scale: float) -> dict[str, np.ndarray]:
    return {f"u_w{w}": np.full(len(y), scale * w) for w in windows}


WINDOWED = Family(
    "u_windowed",
    "hist",
    _windowed,
    outputs=("u_w{windows}",),
    params={"windows": definition("windows"), "scale": 2.0},
    libraries=("scikit-learn",),
)


def test_version_follows_params_definitions_outputs_libraries_and_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defs = definitions.load()
    before = WINDOWED.version_id(defs)
    assert WINDOWED.version_id(defs) == before == WINDOWED.bind(defs).version_id()
    assert WINDOWED.version_id(definitions.load({"windows": [3, 7]})) != before
    assert WINDOWED.version_id(definitions.load({"lags": [1, 2]})) == before  # not a parameter of it
    assert dataclasses.replace(WINDOWED, params={**WINDOWED.params, "scale": 3.0}).version_id(defs) != before
    assert dataclasses.replace(WINDOWED, version=2).version_id(defs) != before
    assert dataclasses.replace(WINDOWED, outputs=("u_width{windows}",)).version_id(defs) != before
    monkeypatch.setattr(registry, "library_version", lambda name: "0.0.1")
    assert WINDOWED.version_id(defs) != before


def test_version_ignores_the_module_source(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same family in a reformatted module (spacing, comments, docstring) keeps its version."""
    plain = "import numpy as np\n\ndef toy(y, *, k):\n    return {'t': np.full(len(y), k)}\n"
    spaced = (
        '"""A reformatted copy."""\nimport numpy as np\n\n\n# why: nothing\n'
        "def toy(y,  *,   k):\n\n    return {'t':   np.full(len(y),  k)}   # same arithmetic\n"
    )
    versions = []
    for name, text in (("toy_plain", plain), ("toy_spaced", spaced)):
        (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        module = __import__(name)
        fam = Family("toy", "stat", module.toy, outputs=("t",), params={"k": 1})
        versions.append(fam.version_id())
    assert versions[0] == versions[1]


def test_registry_override_changes_the_anomaly_version_and_restores_it() -> None:
    before = registry.family("anomaly").version_id()
    with registry.override("anomaly", n_estimators=16) as changed:
        assert changed.version_id() != before
        assert registry.family("anomaly").resolved()["n_estimators"] == 16
    assert registry.family("anomaly").version_id() == before
    with pytest.raises(KeyError, match="declares no parameter"), registry.override("anomaly", trees=16):
        pass


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
    with pytest.raises(job.JobError, match="unknown scheduler"):
        executors.make_executor("carrier-pigeon", device="cpu", work_seconds=10)
    assert isinstance(executors.make_executor(None, device="cpu", work_seconds=10), executors.SyncExecutor)


def test_work_estimate_follows_costs_and_lengths() -> None:
    cheap = Family("u_cheap", "stat", _stat, outputs=("u_mean",), cost="low")
    dear = Family("u_dear", "stat", _stat, outputs=("u_max",), cost="high")
    planned = [planning.Planned(_info(f"s{i}", 1, "c"), ("u_cheap", "u_dear")) for i in range(3)]
    for item in planned:
        item.info = reading.SeriesInfo("t", item.info.unique_id, 2000, item.info.max_ds, "c")
    expected = 3 * 2 * (executors.COST_SECONDS["low"] + executors.COST_SECONDS["high"])
    assert executors.estimated_seconds(planned, [cheap, dear]) == pytest.approx(expected)


def test_bench_reads_the_demo_stage_table() -> None:
    from bench.pipeline import _demo_stages

    printed = (
        "Summary (schema public)\n  table      rows\n  features_stat  15\n\n"
        "  stage                     seconds\n  database                     0.03\n"
        "  ingest                       1.03\n  dbt build seeds+staging      8.05\n"
        "  python feature job           6.33\n  total                       15.44\n"
    )
    assert _demo_stages(printed) == {
        "database": 0.03,
        "ingest": 1.03,
        "dbt build seeds+staging": 8.05,
        "python feature job": 6.33,
    }


def _parse_feature_rows(payload: bytes) -> list[tuple]:
    """Decode binary COPY rows of (text, text, timestamp, timestamptz, float8 ...), field by field."""
    pos, rows = 19, []
    while True:
        (n_fields,) = struct.unpack_from(">h", payload, pos)
        pos += 2
        if n_fields == -1:
            return rows
        fields = []
        for _ in range(n_fields):
            (length,) = struct.unpack_from(">i", payload, pos)
            pos += 4
            fields.append(None if length == -1 else payload[pos : pos + length])
            pos += max(length, 0)
        loto, uid, day, stamp, *values = fields
        rows.append(
            (
                loto.decode(),
                uid.decode(),
                struct.unpack(">q", day)[0],
                struct.unpack(">q", stamp)[0],
                *[None if v is None else struct.unpack(">d", v)[0] for v in values],
            )
        )


def test_feature_rows_write_keys_dates_and_null_for_non_finite_values() -> None:
    computed_at = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    values = np.array([[1.5, np.nan], [-np.inf, 2.0], [3.0, 1e300]])
    payload = bytes(
        pgcopy.feature_rows(
            [("loto6", "N1"), ("ミニロト", "N12")],
            np.array([0, 0, 1]),
            pgcopy.timestamp_micros(
                np.array(
                    ["1999-12-29", "2024-08-21T00:30", "2024-08-21T00:30:00.000001"], dtype="datetime64[us]"
                )
            ),
            computed_at,
            values,
        )
    )
    half_past = (dt.datetime(2024, 8, 21, 0, 30) - dt.datetime(2000, 1, 1)) // dt.timedelta(microseconds=1)
    micros = (computed_at - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert payload.startswith(pgcopy.HEADER) and payload.endswith(pgcopy.TRAILER)
    assert _parse_feature_rows(payload) == [
        ("loto6", "N1", -3 * 86_400_000_000, micros, 1.5, None),
        ("loto6", "N1", half_past, micros, None, 2.0),
        ("ミニロト", "N12", half_past + 1, micros, 3.0, 1e300),
    ]
