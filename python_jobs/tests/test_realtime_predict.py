"""The next-value model: walk-forward backtest on real draws, saved bundle, online predictions
published to a Redis stream; and the commands' answers to bad input (exit 2, one line)."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from python_jobs.cli import main
from python_jobs.realtime import predict
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.tests.realtime_reference import bundled_draws


@pytest.fixture(scope="module")
def bingo5_features() -> pd.DataFrame:
    """The engine's columns for every bingo5 row (equal to features_hist, tested elsewhere)."""
    draws = bundled_draws()
    draws = draws[draws.loto == "bingo5"]
    engine = RealTimeFeatureEngine(history_features=False)
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


def test_walk_forward_uses_only_earlier_rows_and_is_honest(bingo5_features, tmp_path):
    frame = predict.training_frame(bingo5_features)
    # The target is the next draw's value.
    series = frame[frame.unique_id == "N3"]
    following = bingo5_features[bingo5_features.unique_id == "N3"].set_index("ds")["y"]
    assert (series["y_next"].to_numpy() == following.shift(-1).loc[series["ds"]].to_numpy()).all()
    bundle, backtest = predict.train(bingo5_features, tmp_path / "model.pkl", "v1")
    assert len(backtest.folds) == predict.FOLDS
    starts = [pd.Timestamp(fold["from"]) for fold in backtest.folds]
    assert starts == sorted(starts)
    total = backtest.overall()
    # Random draws: the model is no better than the window mean beyond noise, and repeating
    # the last value is clearly worse.
    assert abs(total["model_mae"] / total["window_mean_mae"] - 1) < 0.05
    assert total["last_value_mae"] > 1.2 * total["window_mean_mae"]
    assert "test from" in backtest.report()
    loaded = predict.load_model(tmp_path / "model.pkl")
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
        bingo5_features[bingo5_features.unique_id.isin(["N1", "N2"])], tmp_path / "m.pkl", folds=1
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
