"""The next-value model: walk-forward backtest on real draws, saved bundle (a skops archive,
refused when it is a pickle, holds an untrusted type, trees out of bounds or another feature
set), online predictions published to a Redis stream; and the commands' answers to bad input
(exit 2, one line)."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from python_jobs import definitions
from python_jobs.cli import main
from python_jobs.realtime import predict
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.predict import ModelError
from python_jobs.tests.realtime_reference import bundled_draws


def _engine_features(overrides=None, positions=None) -> pd.DataFrame:
    """The engine's columns for the bingo5 rows (of ``positions``, default all) under ``overrides``."""
    draws = bundled_draws()
    draws = draws[draws.loto == "bingo5"]
    if positions is not None:
        draws = draws[draws.unique_id.isin(positions)]
    engine = RealTimeFeatureEngine(overrides, history_features=False)
    rows = []
    for ds, draw in draws.groupby("ds", sort=True):
        positions = dict(zip(draw.unique_id, draw.y, strict=True))
        for uid, features in engine.update_draw("bingo5", ds, positions).items():
            rows.append(
                {"loto": "bingo5", "unique_id": uid, "ds": pd.Timestamp(ds), "y": positions[uid], **features}
            )
    frame = pd.DataFrame(rows)
    for column in frame.columns.difference(["loto", "unique_id", "ds"]):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


@pytest.fixture(scope="module")
def bingo5_features() -> pd.DataFrame:
    """The engine's columns for every bingo5 row (equal to features_hist, tested elsewhere)."""
    return _engine_features()


def test_walk_forward_uses_only_earlier_rows_and_is_honest(bingo5_features, tmp_path):
    frame = predict.training_frame(bingo5_features, definitions.load().stat_window)
    # The target is the next draw's value.
    series = frame[frame.unique_id == "N3"]
    following = bingo5_features[bingo5_features.unique_id == "N3"].set_index("ds")["y"]
    assert (series["y_next"].to_numpy() == following.shift(-1).loc[series["ds"]].to_numpy()).all()
    bundle, backtest = predict.train(bingo5_features, tmp_path / "model.skops", "v1")
    assert len(backtest.folds) == predict.FOLDS
    starts = [pd.Timestamp(fold["from"]) for fold in backtest.folds]
    assert starts == sorted(starts)
    total = backtest.overall()
    # Random draws: the model is no better than the window mean beyond noise, and repeating
    # the last value is clearly worse.
    assert abs(total["model_mae"] / total["window_mean_mae"] - 1) < 0.05
    assert total["last_value_mae"] > 1.2 * total["window_mean_mae"]
    # The target's scale is the configured stat_window; the baseline is its rolling mean
    # (pandas as the reference).
    window = definitions.load().stat_window
    assert bundle["window"] == window and f"mean w{window}" in backtest.report()
    reference = following.rolling(window).mean().loc[series["ds"]].to_numpy()
    np.testing.assert_allclose(series[f"hist_y_roll_mean_w{window}"].to_numpy(), reference)
    loaded = predict.load_model(tmp_path / "model.skops", version="v1")
    assert loaded["columns"] == bundle["columns"] and loaded["version"] == "v1"
    assert all(
        name.startswith(("hist_y_zscore", "hist_y_pct", "hist_y_roll_auto", "hist_y_draw"))
        for name in loaded["columns"]
    )


def test_predictions_reach_the_redis_stream(bingo5_features, tmp_path, monkeypatch):
    from python_jobs import config
    from python_jobs.realtime.store import connect

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(config, "LOCAL_DIR", tmp_path)
    monkeypatch.setattr(config, "REDIS_DB_PATH", tmp_path / "redis.db")
    bundle, _ = predict.train(
        bingo5_features[bingo5_features.unique_id.isin(["N1", "N2"])], tmp_path / "m.skops", folds=1
    )
    engine = RealTimeFeatureEngine(history_features=False)
    values = bingo5_features[bingo5_features.unique_id == "N4"]["y"].to_numpy()[:60]
    rows = engine.update_many(["N4"] * 60, np.arange(60.0), values)
    client, _ = connect()
    pipeline = predict.AsyncPredictionPipeline(bundle, engine.names, client, "v9")
    predictions = pipeline.predict(rows)
    assert np.isnan(predictions[:29]).all() and np.isfinite(predictions[29:]).all()

    async def run() -> None:
        task = asyncio.ensure_future(pipeline.run())
        pipeline.submit(["N4"] * 60, list(np.arange(60.0)), rows)
        for _ in range(500):
            if pipeline.published == 31:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(run())
    assert client.xlen("predictions:v9") == 31
    newest = client.xrevrange("predictions:v9", count=1)[0][1]
    assert float(newest[b"prediction"]) == pytest.approx(predictions[-1])
    client.shutdown(nosave=True)


def test_commands_refuse_bad_input_with_exit_code_2(capsys, monkeypatch, tmp_path):
    assert main(["realtime", "serve", "--feed", "http://example"]) == 2
    assert "ws://" in capsys.readouterr().err
    assert main(["realtime", "feed", "--file", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("when,open\n2024-01-01,1\n")
    assert main(["realtime", "feed", "--file", str(bad), "--port", "0"]) == 2
    assert "Close" in capsys.readouterr().err
    monkeypatch.setenv("REDIS_URL", "nosuch://user:hunter2@127.0.0.1:1/0")
    assert main(["realtime", "serve", "--feed", "ws://127.0.0.1:1", "--no-predict"]) == 2
    captured = capsys.readouterr()
    assert "REDIS_URL" in captured.err and "hunter2" not in captured.err + captured.out


def test_the_model_window_follows_stat_window(tmp_path):
    overrides = {"windows": [5, 10], "stat_window": 10}
    features = _engine_features(overrides, ["N1", "N2", "N3"])
    window = predict.model_window(definitions.load(overrides))
    bundle, backtest = predict.train(features, tmp_path / "m.skops", folds=1, window=window)
    assert bundle["window"] == 10 and "mean w10" in backtest.report()
    engine = RealTimeFeatureEngine(overrides, history_features=False)
    values = features[features.unique_id == "N1"]["y"].to_numpy()[:30]
    rows = engine.update_many(["N1"] * 30, np.arange(30.0), values)
    predictions = predict.AsyncPredictionPipeline(bundle, engine.names, None, "v1").predict(rows)
    assert np.isnan(predictions[:9]).all() and np.isfinite(predictions[9:]).all()


def test_training_without_the_stat_window_columns_is_refused(tmp_path, monkeypatch, capsys):
    # windows [5, 10] with stat_window 30: no rolling mean or std over 30 rows to scale by.
    overrides = {"windows": [5, 10]}
    features = _engine_features(overrides, ["N1"])
    window = predict.model_window(definitions.load(overrides))
    assert window == definitions.project_definitions().stat_window
    with pytest.raises(predict.WindowColumnsMissing, match=f"hist_y_roll_mean_w{window}"):
        predict.train(features, tmp_path / "m.skops", folds=1, window=window)
    monkeypatch.setenv(definitions.VARS_ENV, "{windows: [5, 10]}")
    out = tmp_path / "cli.skops"
    assert main(["train", "--from-files", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"stat_window = {window}" in err
    assert "Traceback" not in err and not out.exists()


# -- the model file -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model(bingo5_features, tmp_path_factory):
    """A model trained on two positions (one fold), its file, and rows to predict."""
    path = tmp_path_factory.mktemp("model") / "next_value.skops"
    bundle, _ = predict.train(
        bingo5_features[bingo5_features.unique_id.isin(["N1", "N2"])], path, "v1", folds=1
    )
    rows = bingo5_features[bingo5_features.unique_id == "N5"][bundle["columns"]].fillna(0.0).to_numpy()
    return bundle, path, rows


def test_a_saved_model_round_trips_and_predicts_identically(small_model):
    bundle, path, rows = small_model
    assert path.read_bytes().startswith(b"PK") and predict.MODEL_PATH.suffix == ".skops"
    loaded = predict.load_model(path, version="v1")
    assert {k: v for k, v in loaded.items() if k != "model"} == {
        k: v for k, v in bundle.items() if k != "model"
    }
    np.testing.assert_array_equal(loaded["model"].predict(rows), bundle["model"].predict(rows))
    assert predict.load_model(path.with_name("absent.skops")) is None


def test_a_model_of_another_feature_set_is_refused(small_model):
    _, path, _ = small_model
    with pytest.raises(ModelError, match="trained for feature set v1, the engine's is v2"):
        predict.load_model(path, version="v2")


class _Payload:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_planted_pickle_at_the_model_path_is_refused_without_running(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "next_value.skops"
    path.write_bytes(pickle.dumps({"model": _Payload(marker)}))
    with pytest.raises(ModelError, match="a pickle, which is never loaded"):
        predict.load_model(path, version="v1")
    # A pickle inside a skops archive's member is not unpickled either.
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps({"__class__": "dict", "__module__": "builtins"}))
        archive.writestr("payload.npy", pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelError):
        predict.load_model(path, version="v1")
    assert not marker.exists()


def _rewritten(path, tmp_path, change) -> object:
    """A copy of the model file with its schema.json passed through ``change``."""
    out = tmp_path / "tampered.skops"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "schema.json":
                data = json.dumps(change(json.loads(data))).encode()
            target.writestr(item, data)
    return out


def test_a_skops_file_with_an_untrusted_type_is_refused(small_model, tmp_path):
    _, path, _ = small_model

    def to_os_system(node):
        # The ridge estimator's node now names os.system: what a tampered file would call.
        if isinstance(node, dict):
            if node.get("__class__") == "Ridge":
                return node | {"__module__": "os", "__class__": "system"}
            return {key: to_os_system(value) for key, value in node.items()}
        if isinstance(node, list):
            return [to_os_system(value) for value in node]
        return node

    tampered = _rewritten(path, tmp_path, to_os_system)
    with pytest.raises(ModelError, match=r"untrusted types os\.system"):
        predict.load_model(tampered, version="v1")


def test_trees_with_node_indices_out_of_bounds_are_refused(small_model, tmp_path):
    # scikit-learn follows node indices without bounds checks (a crash or an out-of-bounds read).
    import skops.io

    bundle, _, _ = small_model
    path = tmp_path / "far.skops"

    def copy():
        return skops.io.loads(skops.io.dumps(bundle["model"]), trusted=list(predict.TRUSTED_TYPES))

    model = copy()
    predictor = model.named_estimators_["boost"]._predictors[3][0]
    inner = np.flatnonzero(predictor.nodes["is_leaf"] == 0)[0]
    predictor.nodes["left"][inner] = 10**6
    path.write_bytes(skops.io.dumps(bundle | {"model": model}))
    with pytest.raises(ModelError, match="boosted tree with node indices out of bounds"):
        predict.load_model(path, version="v1")
    model = copy()
    tree = model.named_estimators_["trees"].estimators_[0].tree_
    state = tree.__getstate__()
    state["nodes"] = state["nodes"].copy()
    state["nodes"]["feature"][0] = 10**6
    tree.__setstate__(state)
    path.write_bytes(skops.io.dumps(bundle | {"model": model}))
    with pytest.raises(ModelError, match="extra tree with node indices out of bounds"):
        predict.load_model(path, version="v1")


def test_a_model_whose_inputs_the_engine_lacks_is_refused(small_model):
    bundle, _, _ = small_model
    names = [
        name for name in RealTimeFeatureEngine(history_features=False).names if name != bundle["columns"][0]
    ]
    with pytest.raises(ModelError, match=bundle["columns"][0]):
        predict.AsyncPredictionPipeline(bundle, names, client=None, version="v1")
