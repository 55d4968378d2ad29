"""Matrix profile families against stumpy (stump, stumpi), a naive reference, and the GPU code."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from python_jobs import definitions
from python_jobs.features import registry
from python_jobs.features.matrix_profile import (
    matrix_profile,
    matrix_profile_left,
    self_join,
)
from python_jobs.gpu.matrix_profile import (
    matrix_profile_batch,
    matrix_profile_batch_xp,
    matrix_profile_left_batch,
    matrix_profile_left_batch_xp,
)
from python_jobs.tests import naive_families as naive
from python_jobs.tests.family_data import (
    assert_columns_equal,
    assert_stats_equal,
    bingo5,
    loto6,
    real_series,
    requires_gpu,
)

M = definitions.load().mp_window
LEFT = f"hist_y_mp_left_m{M}"


STUMPY_SCRIPT = """
import sys
import numpy as np
import stumpy
series = dict(np.load(sys.argv[1]))
m = int(sys.argv[3])
out = {}
for key, y in series.items():
    profile = stumpy.stump(y, m)
    out[key + "/P"] = profile[:, 0].astype(float)
    out[key + "/IL"] = profile[:, 2].astype(int)
stream = stumpy.stumpi(series["stumpi"][:40], m, egress=False)
for value in series["stumpi"][40:]:
    stream.update(value)
out["stumpi/left_P"] = stream.left_P_
np.savez(sys.argv[2], **out)
"""


def stumpy_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    series = {key: y if len(y) < 600 else y[:600] for key, y in real_series().items()}
    series["edge"] = np.r_[
        np.full(20, 4.0), rng.integers(1, 6, 60).astype(float), np.full(12, 4.0), np.nan, np.arange(20.0)
    ]
    series["stumpi"] = bingo5()["N1"]
    return series


@pytest.fixture(scope="module")
def stumpy_results(tmp_path_factory) -> dict[str, np.ndarray]:
    """stumpy's own answers, from a process with numba's JIT off.

    Interpreted, stumpy needs ~10 s for these series; compiling its kernels on a cold numba
    cache takes over a minute on two cores, which the test suite would pay on every fresh
    machine. The arithmetic is stumpy's source either way.
    """
    folder = tmp_path_factory.mktemp("stumpy")
    np.savez(folder / "in.npz", **stumpy_inputs())
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    subprocess.run(
        [sys.executable, "-c", STUMPY_SCRIPT, str(folder / "in.npz"), str(folder / "out.npz"), str(M)],
        env=env,
        check=True,
        capture_output=True,
    )
    return dict(np.load(folder / "out.npz"))


def stumpy_stats(profile: np.ndarray) -> dict[str, float]:
    """The documented statistics of a stumpy profile, written out independently."""
    finite = [(j, v) for j, v in enumerate(profile) if math.isfinite(v)]
    values = [v for _, v in finite]
    low, high = min(values), max(values)
    tolerance = 1e-9 * max(1.0, high)
    return {
        f"stat_mp_m{M}_min": low,
        f"stat_mp_m{M}_max": high,
        f"stat_mp_m{M}_mean": float(np.mean(values)),
        f"stat_mp_m{M}_std": float(np.std(values)),
        f"stat_mp_m{M}_motif_idx": float(next(j for j, v in finite if v <= low + tolerance)),
        f"stat_mp_m{M}_discord_idx": float(next(j for j, v in finite if v >= high - tolerance)),
    }


@pytest.mark.parametrize("key", [*real_series(), "edge"])
def test_profile_and_stats_equal_stumpy_stump(stumpy_results, key):
    y = stumpy_inputs()[key]
    want = stumpy_results[f"{key}/P"]
    profile, _ = self_join(y)
    np.testing.assert_allclose(profile, want, rtol=0, atol=1e-9)
    if key != "edge":  # a series holding NaN has NaN statistics (every stat family)
        got = matrix_profile(y)
        assert list(got) == registry.family("matrix_profile").output_names()
        assert_stats_equal(got, stumpy_stats(want), rtol=1e-9)


@pytest.mark.parametrize("key", [*real_series(), "edge"])
def test_left_profile_is_the_distance_to_stumps_left_neighbour(stumpy_results, key):
    y = stumpy_inputs()[key]
    left_index = stumpy_results[f"{key}/IL"]
    _, left = self_join(y)
    for j, k in enumerate(left_index):
        if k < 0:
            assert np.isinf(left[j])
        else:
            assert left[j] == pytest.approx(naive.znorm_distance(y[j : j + M], y[k : k + M]), abs=1e-9)


def test_left_profile_equals_stumpy_stumpi(stumpy_results):
    y = stumpy_inputs()["stumpi"]
    left_p = stumpy_results["stumpi/left_P"]
    got = matrix_profile_left(y)[LEFT]
    want = np.where(np.isfinite(left_p), left_p, np.nan)
    assert np.isnan(got[: M - 1]).all()
    np.testing.assert_allclose(got[M - 1 :], want, rtol=0, atol=1e-9, equal_nan=True)
    assert np.isfinite(got[M - 1 + 4 :]).all()


def test_equals_naive_reference():
    y = loto6()["N2"][:120]
    profile, left = self_join(y)
    np.testing.assert_allclose(profile, naive.matrix_profile(y, M), rtol=0, atol=1e-9)
    np.testing.assert_allclose(left, naive.left_matrix_profile(y, M), rtol=0, atol=1e-9)


def test_full_length_series_keep_their_precision():
    # Along a 2,000-row diagonal the correlation is updated incrementally: check late rows
    # against distances computed from scratch.
    y = loto6()["N1"]
    profile, left = self_join(y)
    windows = np.lib.stride_tricks.sliding_window_view(y, M)
    z = (windows - windows.mean(axis=1, keepdims=True)) / windows.std(axis=1, keepdims=True)
    excl = math.ceil(M / 4)
    for j in range(len(windows) - 1, 1500, -37):
        distances = np.sqrt(np.maximum(((z - z[j]) ** 2).sum(axis=1), 0.0))
        assert left[j] == pytest.approx(distances[: j - excl].min(), abs=1e-9)
        far = np.abs(np.arange(len(windows)) - j) > excl
        assert profile[j] == pytest.approx(distances[far].min(), abs=1e-9)


def test_constant_stretches_and_nan_follow_stumpy():
    y = stumpy_inputs()["edge"]
    _, left = self_join(y)
    np.testing.assert_allclose(left, naive.left_matrix_profile(y, M), rtol=0, atol=1e-9)
    hist = matrix_profile_left(y)[LEFT]
    nan_row = 20 + 60 + 12
    assert np.isnan(hist[nan_row : nan_row + M]).all()  # subsequences holding the NaN
    assert hist[19] == 0.0  # the constant subsequence y[12:20] after the earlier y[0:8]
    assert all(math.isnan(v) for v in matrix_profile(y).values())


def test_left_profile_is_point_in_time():
    y = real_series()["loto6:B1"]
    full = matrix_profile_left(y)[LEFT]
    for k in (M - 1, M + 3, 100, 1000):
        np.testing.assert_array_equal(matrix_profile_left(y[:k])[LEFT], full[:k], err_msg=f"cut at {k}")


@pytest.mark.parametrize(
    "y", [np.array([]), np.arange(5.0), np.arange(M + 2.0)], ids=["empty", "< m", "no match"]
)
def test_short_series(y):
    assert all(math.isnan(v) for v in matrix_profile(y).values())
    left = matrix_profile_left(y)
    assert list(left) == registry.family("matrix_profile_left").output_names()
    assert len(left[LEFT]) == len(y) and np.isnan(left[LEFT]).all()


def test_batched_array_code_equals_cpu_through_numpy():
    # One batched matrix product per chunk (the GPU path) against the numba diagonal kernel.
    rng = np.random.default_rng(5)
    with_nan = bingo5()["N2"].copy()
    with_nan[100] = np.nan
    batch = [
        *real_series().values(),
        with_nan,
        np.r_[np.full(20, 2.0), rng.integers(1, 5, 40).astype(float)],
        np.arange(5.0),
    ]
    for got, y in zip(matrix_profile_batch_xp(np, batch), batch, strict=True):
        assert_stats_equal(got, matrix_profile(y), rtol=0, atol=1e-8)
    for got, y in zip(matrix_profile_left_batch_xp(np, batch), batch, strict=True):
        assert_columns_equal(got, matrix_profile_left(y), atol=1e-8)


@requires_gpu
def test_gpu_equals_cpu():
    batch = list(real_series().values())
    for got, y in zip(matrix_profile_batch(batch), batch, strict=True):
        assert_stats_equal(got, matrix_profile(y), rtol=0, atol=1e-6)
    for got, y in zip(matrix_profile_left_batch(batch), batch, strict=True):
        assert_columns_equal(got, matrix_profile_left(y), atol=1e-6)
