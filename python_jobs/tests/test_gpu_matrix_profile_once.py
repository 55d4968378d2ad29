"""The matrix profile of a batch is computed once for both of its families, on either device.

A job batch runs the ``matrix_profile`` (stat) family on every snapshot of each series and the
``matrix_profile_left`` (hist) family on the whole series; the whole series' self-join is the
latest snapshot's, so the hist family must find every one of them already computed. The
kernels are counted (the numba self-join on the CPU, the batched device pass with NumPy
standing in for CuPy), and the job's values are compared with each family called on its own,
where nothing is shared.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from python_jobs.features import _batch_memo, registry
from python_jobs.features import matrix_profile as cpu_mp
from python_jobs.gpu import matrix_profile as gpu_mp
from python_jobs.job import SeriesBatch, compute_family
from python_jobs.job.reading import SeriesData
from python_jobs.tests.family_data import bingo5, loto6

STAT, LEFT = "matrix_profile", "matrix_profile_left"


def _batch() -> SeriesBatch:
    """Real series of two lotteries (two lengths), each with two earlier snapshots and its whole."""
    picked = {"loto6": {key: loto6()[key] for key in ("N1", "N4")}, "bingo5": {"N2": bingo5()["N2"]}}
    series, cuts = [], []
    for loto, values in picked.items():
        for key, y in values.items():
            ds = np.arange(len(y)).astype("datetime64[D]").astype("datetime64[us]")
            series.append(SeriesData(loto, key, ds, np.asarray(y, dtype=np.float64)))
            cuts.append((len(y) // 3, 2 * len(y) // 3, len(y)))
    return SeriesBatch(series, cuts)


def _alone(batch: SeriesBatch) -> tuple[np.ndarray, np.ndarray]:
    """Both families' values called series by series outside any batch (nothing shared)."""
    stat_names = registry.family(STAT).output_names()
    stat = np.array(
        [[cpu_mp.matrix_profile(s.y)[name] for name in stat_names] for s in batch.snapshot_series()]
    )
    (left_name,) = registry.family(LEFT).output_names()
    left = np.concatenate([cpu_mp.matrix_profile_left(s.y)[left_name] for s in batch.series])
    return stat, left[:, None]


@pytest.fixture
def self_joins(monkeypatch) -> list[int]:
    """The length of each series the numba self-join kernel runs on."""
    calls: list[int] = []
    kernel = cpu_mp._self_join

    def counted(y, m, excl_zone):
        calls.append(len(y))
        return kernel(y, m, excl_zone)

    monkeypatch.setattr(cpu_mp, "_self_join", counted)
    return calls


@pytest.fixture
def device_passes(monkeypatch) -> list[list[int]]:
    """The series lengths of each batched device pass, NumPy standing in for CuPy."""
    calls: list[list[int]] = []
    group = gpu_mp._profiles_group

    def counted(xp, values, m):
        calls.append([values.shape[1]] * values.shape[0])
        return group(xp, values, m)

    monkeypatch.setattr(gpu_mp, "_profiles_group", counted)
    monkeypatch.setattr(gpu_mp, "cupy", lambda: np)
    return calls


def test_the_cpu_path_joins_each_series_once_for_both_families(self_joins):
    batch = _batch()
    want_stat, want_left = _alone(batch)
    self_joins.clear()
    stat = compute_family(registry.family(STAT), batch, "cpu", "raise")
    left = compute_family(registry.family(LEFT), batch, "cpu", "raise")
    # One join per snapshot (the whole series' one is the latest), none for the hist family.
    assert sorted(self_joins) == sorted(len(s) for s in batch.snapshot_series())
    np.testing.assert_array_equal(stat.values, want_stat)
    np.testing.assert_array_equal(left.values, want_left)
    # Only the whole series are kept for the batch, not the earlier snapshots.
    assert len(batch.memo()) == len(batch.series)


def test_the_gpu_path_profiles_each_series_once_for_both_families(device_passes):
    batch = _batch()
    want_stat, want_left = _alone(batch)
    stat = compute_family(registry.family(STAT), batch, "gpu", "raise", gpu_required=True)
    passes_for_stat = len(device_passes)
    left = compute_family(registry.family(LEFT), batch, "gpu", "raise", gpu_required=True)
    assert stat.device == left.device == "gpu"
    assert len(device_passes) == passes_for_stat, "the hist family ran its own device pass"
    assert sorted(n for lengths in device_passes for n in lengths) == sorted(
        len(s) for s in batch.snapshot_series()
    )
    np.testing.assert_allclose(stat.values, want_stat, rtol=0, atol=1e-8)
    np.testing.assert_allclose(left.values, want_left, rtol=0, atol=1e-8)


def test_the_hist_family_first_leaves_only_the_earlier_snapshots_to_the_stat_family(device_passes):
    batch = _batch()
    compute_family(registry.family(LEFT), batch, "gpu", "raise", gpu_required=True)
    whole = sorted(n for lengths in device_passes for n in lengths)
    device_passes.clear()
    compute_family(registry.family(STAT), batch, "gpu", "raise", gpu_required=True)
    earlier = sorted(n for lengths in device_passes for n in lengths)
    assert whole == sorted(len(s) for s in batch.series)
    assert earlier == sorted(n for cuts in batch.prefix_lengths for n in cuts[:-1])


def test_a_cpu_fallback_never_reads_a_device_profile(device_passes, self_joins):
    batch = _batch()
    compute_family(registry.family(STAT), batch, "gpu", "raise", gpu_required=True)
    self_joins.clear()
    # The hist family's GPU batch fails: its CPU values are the numba join's, joined anew.
    compute_family(registry.family(LEFT), batch, "cpu", "raise")
    assert sorted(self_joins) == sorted(len(s) for s in batch.series)


def test_outside_a_batch_nothing_is_kept(self_joins):
    y = loto6()["N2"]
    cpu_mp.matrix_profile(y)
    cpu_mp.matrix_profile_left(y)
    assert _batch_memo.current() is None and self_joins == [len(y), len(y)]


def test_the_memo_is_not_shipped_with_the_batch():
    batch = _batch()
    compute_family(registry.family(STAT), batch, "cpu", "raise")
    assert len(batch.memo()) == len(batch.series)
    again = pickle.loads(pickle.dumps(batch))
    assert len(again.memo()) == 0 and len(again.series) == len(batch.series)
