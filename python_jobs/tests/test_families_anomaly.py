"""IsolationForest score: scikit-learn refitted by hand on the documented blocks, point in time."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from python_jobs.features import anomaly as anomaly_module
from python_jobs.features import registry
from python_jobs.features.anomaly import anomaly, delay_embedding, fit_forest, score_forest
from python_jobs.gpu.anomaly import anomaly_batch, anomaly_batch_xp
from python_jobs.tests.family_data import real_series, requires_gpu

NAME = "hist_y_iforest_score"


def params() -> dict:
    """The family's declared parameters, as the registry holds them now."""
    return registry.family("anomaly").resolved()


def reference(y: np.ndarray) -> np.ndarray:
    """The documented definition, written out with explicit loops."""
    p = params()
    dims, first = p["embed"], p["min_train"]
    vectors = [y[j : j + dims] for j in range(len(y) - dims + 1)]
    out = np.full(len(y), np.nan)
    start = first
    while start < len(vectors):
        stop = min(p["refit_growth"] * start, len(vectors))
        model = IsolationForest(n_estimators=p["n_estimators"], random_state=p["random_state"]).fit(
            np.array(vectors[:start])
        )
        out[start + dims - 1 : stop + dims - 1] = -model.score_samples(np.array(vectors[start:stop]))
        start = stop
    return out


@pytest.mark.parametrize("key", ["bingo5:N5", "loto6:B1"])
def test_equals_scikit_learn_fitted_on_earlier_blocks(key):
    y = real_series()[key]
    got = anomaly(y)
    assert list(got) == registry.family("anomaly").output_names() == [NAME]
    np.testing.assert_allclose(got[NAME], reference(y), rtol=0, atol=1e-12, equal_nan=True)
    first_scored = params()["min_train"] + params()["embed"] - 1
    assert np.isnan(got[NAME][:first_scored]).all()
    assert np.isfinite(got[NAME][first_scored:]).all()
    assert ((got[NAME][first_scored:] > 0) & (got[NAME][first_scored:] <= 1)).all()


def test_point_in_time():
    y = real_series()["loto6:N1"]
    full = anomaly(y)[NAME]
    for k in (100, 131, 300, 515, 1030):
        np.testing.assert_array_equal(anomaly(y[:k])[NAME], full[:k], err_msg=f"cut at {k}")


def test_a_run_of_extreme_values_scores_highest():
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    y[348:351] = 4.0  # the vector of row 350 is (4, 4, 4)
    scores = anomaly(y)[NAME]
    assert np.nanargmax(scores) == 350


@pytest.mark.parametrize(
    "y",
    [np.array([]), np.arange(2.0), np.arange(100.0), np.full(300, 3.0)],
    ids=["empty", "2", "100", "constant"],
)
def test_short_and_constant_series(y):
    got = anomaly(y)[NAME]
    assert len(got) == len(y)
    first_scored = params()["min_train"] + params()["embed"] - 1
    assert np.isnan(got[:first_scored]).all()
    assert np.isfinite(got[first_scored:]).all()


def test_nan_rows_are_skipped_and_left_out_of_training():
    y = real_series()["bingo5:N5"].copy()
    y[[5, 200]] = np.nan
    got = anomaly(y)[NAME]
    assert np.isnan(got[200:203]).all()
    assert np.isfinite(got[203:]).all() and np.isfinite(got[130:200]).all()


def test_schedule_follows_the_declared_parameters():
    y = real_series()["bingo5:N8"]
    with registry.override("anomaly", refit_growth=2, min_train=64) as fam:
        np.testing.assert_allclose(anomaly(y)[NAME], reference(y), rtol=0, atol=1e-12, equal_nan=True)
        np.testing.assert_array_equal(fam.compute(y)[NAME], anomaly(y)[NAME])
        assert np.isnan(anomaly(y)[NAME][: 64 + params()["embed"] - 1]).all()
    # Outside the block the declared values are back.
    assert params()["min_train"] == 128


@pytest.mark.parametrize("n_train", [2, 5, 128, 300, 512, 2000])
def test_grown_trees_are_scikit_learns_trees(n_train):
    vectors = delay_embedding(real_series()["loto6:N4"], params()["embed"])[:n_train]
    model = IsolationForest(n_estimators=params()["n_estimators"], random_state=params()["random_state"]).fit(
        vectors
    )
    forest, plan = fit_forest(vectors, params()["n_estimators"], params()["random_state"])
    assert plan.max_samples == model.max_samples_
    for tree, estimator in zip(forest, model.estimators_, strict=True):
        ref = estimator.tree_
        count = ref.node_count
        assert np.isnan(tree[count:]).all() and np.isfinite(tree[:count]).all()
        # scikit-learn numbers nodes in the order it creates them, depth first, as here.
        np.testing.assert_array_equal(tree[:count, anomaly_module.LEFT], ref.children_left)
        np.testing.assert_array_equal(tree[:count, anomaly_module.RIGHT], ref.children_right)
        inner = ref.children_left >= 0
        np.testing.assert_array_equal(tree[:count, anomaly_module.FEATURE][inner], ref.feature[inner])
        np.testing.assert_array_equal(tree[:count, anomaly_module.THRESHOLD][inner], ref.threshold[inner])
        sklearn_path = (
            ref.compute_node_depths() + anomaly_module.average_path_length(ref.n_node_samples) - 1.0
        )
        np.testing.assert_allclose(tree[:count, anomaly_module.PATH], sklearn_path, rtol=0, atol=1e-12)
    probe = delay_embedding(real_series()["bingo5:N1"], params()["embed"])
    np.testing.assert_allclose(score_forest(forest, plan, probe), -model.score_samples(probe), atol=1e-12)


def test_scores_fractional_values_as_float32_like_scikit_learn():
    # scikit-learn casts to float32 before comparing with the thresholds; so does the kernel.
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(700, params()["embed"])) * 1e3
    model = IsolationForest(n_estimators=params()["n_estimators"], random_state=params()["random_state"]).fit(
        vectors[:400]
    )
    forest, plan = fit_forest(vectors[:400], params()["n_estimators"], params()["random_state"])
    np.testing.assert_allclose(
        score_forest(forest, plan, vectors[400:]), -model.score_samples(vectors[400:]), rtol=0, atol=1e-12
    )


GPU_BATCH = [*real_series().values(), np.array([]), np.arange(2.0), np.full(300, 3.0)]


def test_gpu_array_code_through_numpy_equals_cpu():
    for got, y in zip(anomaly_batch_xp(np, GPU_BATCH), GPU_BATCH, strict=True):
        np.testing.assert_allclose(got[NAME], anomaly(y)[NAME], rtol=0, atol=1e-9, equal_nan=True)


@requires_gpu
def test_gpu_equals_cpu():
    for got, y in zip(anomaly_batch(GPU_BATCH), GPU_BATCH, strict=True):
        np.testing.assert_allclose(got[NAME], anomaly(y)[NAME], rtol=0, atol=1e-6, equal_nan=True)


def test_trees_that_test_the_node_variance_are_scikit_learns():
    # With 2,333 training rows two of the (seeded) targets are close enough that some trees
    # must evaluate scikit-learn's "variance <= eps" leaf test; those replay its partition order.
    n_train = 2333
    plan_checks = anomaly_module.forest_plan(
        n_train, params()["embed"], params()["n_estimators"], 0
    ).check_variance
    assert plan_checks.any() and not plan_checks.all()
    rng = np.random.default_rng(7)
    vectors = rng.integers(1, 44, size=(n_train + 300, params()["embed"])).astype(np.float64)
    model = IsolationForest(n_estimators=params()["n_estimators"], random_state=0).fit(vectors[:n_train])
    forest, plan = fit_forest(vectors[:n_train], params()["n_estimators"], 0)
    for tree, estimator in zip(forest, model.estimators_, strict=True):
        count = estimator.tree_.node_count
        np.testing.assert_array_equal(tree[:count, anomaly_module.LEFT], estimator.tree_.children_left)
        np.testing.assert_array_equal(tree[:count, anomaly_module.RIGHT], estimator.tree_.children_right)
    np.testing.assert_allclose(
        score_forest(forest, plan, vectors[n_train:]),
        -model.score_samples(vectors[n_train:]),
        rtol=0,
        atol=1e-12,
    )
