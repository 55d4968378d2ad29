"""Next-value model: trained offline from ``features_hist``, served on every online update.

Model. The target is the next value of a series in units of its ``stat_window``-row window
(the dbt var, 30 rows by default; :func:`scale_columns`),
``z = (y[t+1] - mean_wN) / std_wN``, predicted from scale-free columns of the row (z-scores
of every window, pct changes, lag-1 autocorrelation, drawdown/drawup), so one model serves
lottery positions and price series alike; the prediction is ``mean_wN + z std_wN``. The
rolling mean and standard deviation over ``stat_window`` rows exist only when ``stat_window``
is one of the ``windows``; otherwise training is refused with :class:`WindowColumnsMissing`. The
model is a small ensemble of scikit-learn regressors averaged (ridge regression, extra trees,
gradient boosting).

Backtest. Walk-forward by date: the rows are cut at the quantiles of ``ds`` into folds, each
fold is predicted by a model trained on every earlier row only, and the mean absolute error is
compared with two baselines: the last value, and the window mean. Lottery draws are random
by design (each number is drawn uniformly, independently of earlier draws), so no model can
beat the window mean by more than noise: a score near the mean baseline is the honest result
and says the pipeline leaks no future information; a score far better would mean a leak.

Serving. :class:`AsyncPredictionPipeline` runs as its own asyncio task: the service hands it
each batch of feature vectors after they reach Redis, it predicts them in one call and appends
``{symbol, ts, prediction}`` to the Redis stream ``predictions:{version}``. Its queue is bounded;
when the model falls behind the oldest batches are dropped and counted.

Model file. ``next_value.skops``: the ensemble and its metadata in one skops archive, data only,
checked by :func:`python_jobs.realtime.model_file.load_model` before use.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from python_jobs import config, definitions

# The model file's checks live in model_file; these names are part of this module's interface.
from python_jobs.realtime.model_file import MODEL_PATH, ModelError
from python_jobs.realtime.model_file import TRUSTED_TYPES as TRUSTED_TYPES
from python_jobs.realtime.model_file import load_model as load_model

if TYPE_CHECKING:
    from sklearn.ensemble import VotingRegressor

FOLDS = 5
STREAM_MAXLEN = 100_000


def model_columns(names: Sequence[str]) -> list[str]:
    """The scale-free input columns among ``names``."""
    wanted = (
        "hist_y_zscore_w",
        "hist_y_pct_change",
        "hist_y_roll_autocorr1_w",
        "hist_y_drawdown",
        "hist_y_drawup",
    )
    return [name for name in names if name.startswith(wanted)]


class WindowColumnsMissing(ValueError):
    """The features lack the rolling mean or std the target is scaled by; one line: which and why."""


def scale_columns(window: int) -> tuple[str, str]:
    """The rolling mean and standard deviation columns over ``window`` rows (the target's scale)."""
    return f"hist_y_roll_mean_w{window}", f"hist_y_roll_std_w{window}"


def model_window(defs: definitions.FeatureDefinitions | None = None) -> int:
    """The window of the target's scale: the dbt var ``stat_window`` of ``defs`` (default: in force)."""
    return (defs or definitions.load()).stat_window


def require_scale_columns(columns: Sequence[str], window: int) -> None:
    """Refuse features without the two columns of :func:`scale_columns` over ``window`` rows.

    Raises
    ------
    WindowColumnsMissing
        One of them is absent: ``stat_window`` is not among the dbt var ``windows``.
    """
    missing = [name for name in scale_columns(window) if name not in columns]
    if missing:
        raise WindowColumnsMissing(
            f"the features have no {' or '.join(missing)}: the model scales its target by the rolling "
            f"mean and std over stat_window = {window} rows, which exist only when {window} is one of "
            f"the dbt var windows; add it to windows or set stat_window to one of them"
        )


def _ensemble() -> VotingRegressor:
    from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor, VotingRegressor
    from sklearn.linear_model import Ridge

    return VotingRegressor(
        [
            ("ridge", Ridge(alpha=1.0)),
            ("trees", ExtraTreesRegressor(n_estimators=30, max_depth=8, min_samples_leaf=20, random_state=0)),
            ("boost", HistGradientBoostingRegressor(max_iter=50, max_depth=4, random_state=0)),
        ]
    )


def training_frame(features: pd.DataFrame, window: int) -> pd.DataFrame:
    """Rows with a next value and a usable window: inputs, target z, and what the baselines need.

    ``features`` holds loto, unique_id, ds, y and the ``features_hist`` columns, one row per
    (series, ds); the next value is its ``label_y`` where it has one (a training set of
    :func:`python_jobs.training_set`), else y of the series' next row. The target is scaled by
    the rolling mean and std over ``window`` rows.

    Raises
    ------
    WindowColumnsMissing
        ``features`` has no rolling mean or std over ``window`` rows.
    """
    require_scale_columns(features.columns, window)
    frame = features.sort_values(["loto", "unique_id", "ds"]).reset_index(drop=True).copy()
    mean_name, std_name = scale_columns(window)
    mean, std = frame[mean_name], frame[std_name]
    if "label_y" in frame:
        frame["y_next"] = frame["label_y"].astype(float)
    else:
        frame["y_next"] = frame.groupby(["loto", "unique_id"])["y"].shift(-1)
    frame["z_next"] = (frame["y_next"] - mean) / std
    usable = frame["z_next"].notna() & np.isfinite(frame["z_next"]) & (std > 0)
    return frame[usable].reset_index(drop=True)


@dataclass
class Backtest:
    """Walk-forward mean absolute errors of the model and the baselines, per fold and overall.

    ``window`` is the rows of the window-mean baseline (the target's scale).
    """

    window: int
    folds: list[dict[str, Any]] = field(default_factory=list)

    def overall(self) -> dict[str, float]:
        rows = sum(f["rows"] for f in self.folds)
        return {
            key: sum(f[key] * f["rows"] for f in self.folds) / rows
            for key in ("model_mae", "last_value_mae", "window_mean_mae")
        }

    def report(self) -> str:
        mean = f"mean w{self.window}"
        lines = [f"  {'test from':<12} {'rows':>7} {'model':>8} {'last value':>11} {mean:>9}"]
        for f in self.folds:
            lines.append(
                f"  {f['from']:<12} {f['rows']:>7,} {f['model_mae']:>8.3f} {f['last_value_mae']:>11.3f}"
                f" {f['window_mean_mae']:>9.3f}"
            )
        total = self.overall()
        lines.append(
            f"  {'all':<12} {sum(f['rows'] for f in self.folds):>7,} {total['model_mae']:>8.3f}"
            f" {total['last_value_mae']:>11.3f} {total['window_mean_mae']:>9.3f}"
        )
        return "\n".join(lines)


def walk_forward(frame: pd.DataFrame, columns: list[str], window: int, folds: int = FOLDS) -> Backtest:
    """Each fold of dates predicted by a model trained on the rows before it (MAE in y units).

    ``frame`` is a :func:`training_frame` over ``window`` rows.
    """
    cuts = frame["ds"].quantile(np.linspace(0, 1, folds + 2)[1:-1], interpolation="nearest").tolist()
    cuts.append(frame["ds"].max() + pd.Timedelta(days=1) if hasattr(cuts[0], "day") else np.inf)
    result = Backtest(window)
    mean_name, std_name = scale_columns(window)
    mean, std = frame[mean_name], frame[std_name]
    inputs = frame[columns].fillna(0.0).to_numpy()
    for start, stop in itertools.pairwise(cuts):
        train = (frame["ds"] < start).to_numpy()
        test = ((frame["ds"] >= start) & (frame["ds"] < stop)).to_numpy()
        if train.sum() < 100 or test.sum() == 0:
            continue
        model = _ensemble().fit(inputs[train], frame.loc[train, "z_next"])
        predicted = mean[test] + model.predict(inputs[test]) * std[test]
        actual = frame.loc[test, "y_next"]
        result.folds.append(
            {
                "from": str(start)[:10],
                "rows": int(test.sum()),
                "model_mae": float((predicted - actual).abs().mean()),
                "last_value_mae": float((frame.loc[test, "y"] - actual).abs().mean()),
                "window_mean_mae": float((mean[test] - actual).abs().mean()),
            }
        )
    return result


def features_from_marts(url: str | None = None) -> pd.DataFrame:
    """``features_hist`` joined with y from ``stg_lottery__draws``.

    Raises
    ------
    python_jobs.marts.MartNotReadyError
        ``features_hist`` is missing, empty (an unlogged build after a crash) or lacks staged
        draws: a model trained on it would silently see part of the data. The message names
        the dbt command that rebuilds it.
    """
    from psycopg import sql

    from python_jobs import db
    from python_jobs.marts import require_ready

    with db.connect(url or db.database_url()) as conn:
        require_ready(conn, "features_hist")
        query = sql.SQL(
            "select features.*, draws.y::double precision as y from {} as features "
            "inner join {} as draws using (loto, unique_id, ds)"
        ).format(db.qualified("features_hist"), db.qualified(config.STAGING_MODEL))
        cur = conn.execute(query)
        frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
    for column in frame.columns.difference(["loto", "unique_id", "ds"]):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["ds"] = pd.to_datetime(frame["ds"])
    return frame


class NoTrainingRows(ValueError):
    """The chosen loto has no staged rows; the message says how to get some."""


def training_features(loto: str, url: str | None = None) -> pd.DataFrame:
    """The point-in-time training set of every staged row of ``loto``, with each row's y.

    The entities are the rows the model will be served on: each staged (unique_id, ds) of
    ``loto``. Their features come from :func:`python_jobs.training_set` (the marts as known at
    each ds) and the target from its ``label_y``.

    Raises
    ------
    NoTrainingRows
        ``loto`` has no staged row.
    python_jobs.marts.MartNotReadyError
        ``features_hist`` is missing, empty or lacks staged draws.
    python_jobs.training.entities.TrainingSetError
        A mart the training set reads does not exist (named, with the command that builds it).
    """
    from psycopg import sql

    from python_jobs import db
    from python_jobs.marts import require_ready
    from python_jobs.training import training_set

    target = url or db.database_url()
    with db.connect(target) as conn:
        require_ready(conn, "features_hist")
        cur = conn.execute(
            sql.SQL(
                "select loto, unique_id, ds, y::double precision as y from {} where loto = %s "
                "order by unique_id, ds"
            ).format(db.qualified(config.STAGING_MODEL)),
            (loto,),
        )
        entities = pd.DataFrame(cur.fetchall(), columns=["loto", "unique_id", "ds", "y"])
    if entities.empty:
        raise NoTrainingRows(loto)
    frame = training_set(entities, url=target)
    hist = [column for column in frame.columns if column.startswith("hist_")]
    numbers = frame[hist].apply(pd.to_numeric, errors="coerce").astype(float)
    return pd.concat([frame.drop(columns=hist), numbers, entities[["y"]].astype(float)], axis=1)


def features_from_files() -> pd.DataFrame:
    """The same columns computed by the online engine from the bundled files (no database).

    The engine's values equal the mart's (tested column by column), so this is the mart
    without a database.
    """
    from python_jobs.ingest.parse import parse_file
    from python_jobs.realtime.engine import RealTimeFeatureEngine

    engine = RealTimeFeatureEngine(history_features=False)
    rows = []
    for loto, path in config.BUNDLED_FILES:
        draws = parse_file(path, loto).to_frame()
        draws["y"] = draws["y"].astype(float)
        for ds, draw in draws.groupby("ds", sort=True):
            positions = dict(zip(draw["unique_id"], draw["y"], strict=True))
            for uid, features in engine.update_draw(loto, ds, positions).items():
                rows.append({"loto": loto, "unique_id": uid, "ds": ds, "y": positions[uid], **features})
    frame = pd.DataFrame(rows)
    frame["ds"] = pd.to_datetime(frame["ds"])
    for column in frame.columns.difference(["loto", "unique_id", "ds"]):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def train(
    features: pd.DataFrame,
    path: Path = MODEL_PATH,
    version: str = "",
    folds: int = FOLDS,
    *,
    window: int | None = None,
) -> tuple[dict[str, Any], Backtest]:
    """Backtest walk-forward (``folds`` folds), fit on every row, save ``{model, columns, ...}``.

    The bundle records the target's ``window`` (default: :func:`model_window`), the feature-set
    ``version``, the lotteries trained on (``loto``, comma-separated) and the training
    ``period`` (first and last ds of the rows). It is written as a skops archive (no pickle),
    replacing ``path`` in one rename.

    Raises
    ------
    WindowColumnsMissing
        ``features`` has no rolling mean or std over ``window`` rows.
    """
    window = model_window() if window is None else window
    frame = training_frame(features, window)
    columns = model_columns([c for c in frame.columns if c.startswith("hist_")])
    backtest = walk_forward(frame, columns, window, folds)
    model = _ensemble().fit(frame[columns].fillna(0.0).to_numpy(), frame["z_next"])
    bundle = {
        "model": model,
        "columns": columns,
        "window": window,
        "version": version,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": len(frame),
        "backtest": backtest.folds,
        "loto": ",".join(sorted(frame["loto"].unique())),
        "period": [str(frame["ds"].min()), str(frame["ds"].max())],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    import skops.io

    partial.write_bytes(skops.io.dumps(bundle))
    os.replace(partial, path)
    return bundle, backtest


class AsyncPredictionPipeline:
    """Predicts the next value on every update and publishes it to a Redis stream.

    Parameters
    ----------
    bundle : dict
        What :func:`load_model` returns.
    names : sequence of str
        Column names of the feature vectors it receives.
    client : redis.Redis
        Where ``predictions:{version}`` lives.
    version : str
        Feature-set version (the stream's name).
    queue_size : int
        Batches waiting; beyond it the oldest are dropped and counted.
    """

    def __init__(
        self,
        bundle: dict[str, Any],
        names: Sequence[str],
        client: Any,
        version: str,
        *,
        queue_size: int = 256,
        metrics: Any = None,
    ) -> None:
        self.model = bundle["model"]
        index = {name: i for i, name in enumerate(names)}
        mean_name, std_name = scale_columns(bundle["window"])
        missing = [name for name in (*bundle["columns"], mean_name, std_name) if name not in index]
        if missing:
            raise ModelError(f"model inputs not among the engine's columns: {', '.join(missing[:3])}")
        self.inputs = np.asarray([index[c] for c in bundle["columns"]], dtype=np.int64)
        self.mean_at = index[mean_name]
        self.std_at = index[std_name]
        self.client = client
        self.stream = f"predictions:{version}"
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
        self.published = 0
        self.dropped = 0
        self.errors = 0
        self.metrics = metrics

    def submit(self, symbols: Sequence[str], ts: Sequence[float], rows: np.ndarray) -> None:
        """Queue a batch for prediction (never blocks the caller)."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait((list(symbols), list(ts), rows))

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Next-value predictions of the rows; NaN where the model's window is not full yet."""
        mean, std = rows[:, self.mean_at], rows[:, self.std_at]
        out = np.full(len(rows), np.nan)
        ready = np.isfinite(mean) & (std > 0)
        if ready.any():
            inputs = np.nan_to_num(rows[ready][:, self.inputs], nan=0.0)
            out[ready] = mean[ready] + self.model.predict(inputs) * std[ready]
        return out

    def publish(self, symbols: Sequence[str], ts: Sequence[float], predictions: np.ndarray) -> int:
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for symbol, stamp, value in zip(symbols, ts, predictions.tolist(), strict=True):
            if math.isfinite(value):
                fields = {"symbol": symbol, "ts": repr(stamp), "prediction": repr(value)}
                pipe.xadd(self.stream, fields, maxlen=STREAM_MAXLEN, approximate=True)
                count += 1
        if count:
            pipe.execute()
        return count

    async def run(self) -> None:
        """Predict and publish queued batches until cancelled.

        Whatever is queued is predicted together, in a worker thread, so the model never holds
        up the event loop that turns messages into features.
        """
        import redis

        while True:
            batches = [await self.queue.get()]
            while not self.queue.empty():
                batches.append(self.queue.get_nowait())
            symbols = [s for batch in batches for s in batch[0]]
            ts = [t for batch in batches for t in batch[1]]
            rows = np.concatenate([batch[2] for batch in batches])
            try:
                published = await asyncio.to_thread(self._predict_and_publish, symbols, ts, rows)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.errors += 1
                continue
            self.published += published
            if self.metrics is not None:
                self.metrics.predictions.inc(published)

    def _predict_and_publish(self, symbols: list[str], ts: list[float], rows: np.ndarray) -> int:
        return self.publish(symbols, ts, self.predict(rows))
