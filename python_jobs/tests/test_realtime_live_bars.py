"""Live bars: a point at its series' newest timestamp replaces that point (``on_same_ts``).

Every column after a replacement equals what an engine fed only the final value of each
timestamp returns, exactly (NaN equal to NaN): in batches over many symbols, point by point
with the history-wide columns, and after a save and restore. Under ``drop`` such a point is
refused as ``duplicate``, by the engine and by the intake, as before.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from python_jobs import settings
from python_jobs.errors import SettingsError
from python_jobs.realtime import state
from python_jobs.realtime.engine import OrderError, RealTimeFeatureEngine
from python_jobs.realtime.state import StateError, dump_engine, load_engine
from python_jobs.realtime.stream import StreamingDataProcessor
from python_jobs.tests.realtime_reference import eurusd_close


def _bars(n_steps: int, symbols: list[str], seed: int) -> list[tuple[str, float, float, bool]]:
    """``(symbol, ts, price, is_final)`` in feed order: each symbol's timestamps in order, each
    timestamp updated 1 to 5 times (the last update is its final value), symbols interleaved."""
    rng = np.random.default_rng(seed)
    queues = {}
    for k, symbol in enumerate(symbols):
        price = 100.0 + 10 * k
        points = []
        for step in range(n_steps):
            updates = int(rng.integers(1, 6))
            for u in range(updates):
                # Integer cents some of the time, so ties inside the sorted windows occur.
                price = round(price + rng.normal(0, 0.5), 2 if rng.random() < 0.5 else 6)
                points.append((symbol, 60.0 * step, price, u == updates - 1))
        queues[symbol] = points
    feed = []
    while any(queues.values()):
        symbol = symbols[int(rng.integers(len(symbols)))]
        if queues[symbol]:
            feed.append(queues[symbol].pop(0))
    return feed


def _assert_rows_equal(got: np.ndarray, want: np.ndarray, names: tuple[str, ...]) -> None:
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert same.all(), [names[i] for i in np.flatnonzero(~same.all(axis=0))]


def _final_rows(engine: RealTimeFeatureEngine, feed, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of every point of ``feed`` given in batches of ``batch``; which are final."""
    rows = []
    for start in range(0, len(feed), batch):
        part = feed[start : start + batch]
        rows.append(engine.update_many([p[0] for p in part], [p[1] for p in part], [p[2] for p in part]))
    return np.concatenate(rows), np.array([p[3] for p in feed])


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_replaced_points_equal_an_engine_fed_only_the_final_values(batch):
    symbols = [f"S{i}" for i in range(12)]
    feed = _bars(120, symbols, seed=batch)
    live = RealTimeFeatureEngine(history_features=False, on_same_ts="replace", max_keys=None)
    rows, final = _final_rows(live, feed, batch)
    finals = [p for p in feed if p[3]]
    fresh = RealTimeFeatureEngine(history_features=False, on_same_ts="drop")
    want = fresh.update_many([p[0] for p in finals], [p[1] for p in finals], [p[2] for p in finals])
    assert live.replaced == len(feed) - len(finals) > 1000
    _assert_rows_equal(rows[final], want, live.layout.names)
    # The state goes on as the fresh engine's does.
    after = [(s, 1e6, 100.0 + i) for i, s in enumerate(symbols)]
    _assert_rows_equal(
        live.update_many(*zip(*after, strict=True)),
        fresh.update_many(*zip(*after, strict=True)),
        live.layout.names,
    )


def test_each_update_of_a_bar_equals_an_engine_that_saw_only_that_value():
    feed = _bars(60, ["A"], seed=3)
    live = RealTimeFeatureEngine(history_features=False, on_same_ts="replace")
    closed: list[tuple[float, float]] = []
    for symbol, ts, price, final in feed:
        got = live.update_many([symbol], [ts], [price])
        reference = RealTimeFeatureEngine(history_features=False, on_same_ts="drop")
        points = [*closed, (ts, price)]
        want = reference.update_many(["A"] * len(points), [p[0] for p in points], [p[1] for p in points])
        _assert_rows_equal(got, want[-1:], live.layout.names)
        if final:
            closed.append((ts, price))


def test_history_columns_are_replaced_too():
    close = eurusd_close().to_numpy()[:400]
    rng = np.random.default_rng(5)
    live = RealTimeFeatureEngine(on_same_ts="replace")
    fresh = RealTimeFeatureEngine(on_same_ts="drop")
    for day, price in enumerate(close):
        for _ in range(int(rng.integers(0, 3))):
            live.update("EURUSD", float(day), price * (1 + rng.normal(0, 1e-3)))
        got = live.update("EURUSD", float(day), price)
        assert got == fresh.update("EURUSD", float(day), price), day
    assert got["hist_y_iforest_score"] is not None and live.replaced > 200


def test_a_restored_engine_replaces_the_newest_point_of_the_saved_one():
    close = eurusd_close().to_numpy()[:80]
    live = RealTimeFeatureEngine(history_features=False, on_same_ts="replace")
    fresh = RealTimeFeatureEngine(history_features=False, on_same_ts="drop")
    for day, price in enumerate(close[:-1]):
        live.update("EURUSD", float(day), price)
        fresh.update("EURUSD", float(day), price)
    live.update("EURUSD", 79.0, close[-1] + 1.0)  # the bar still open when the state is saved
    restored = load_engine(dump_engine(live), version=live.layout.version)
    assert restored.update("EURUSD", 79.0, close[-1]) == fresh.update("EURUSD", 79.0, close[-1])


def test_a_state_without_the_undo_rows_is_refused():
    engine = RealTimeFeatureEngine(history_features=False, on_same_ts="replace")
    engine.update("A", 1.0, 2.0)
    header, arrays = engine.to_state()
    del arrays["undo"]
    text = json.dumps({"format": state.FORMAT, "format_version": 1, **header})
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(text.encode(), dtype=np.uint8), **arrays)
    with pytest.raises(StateError, match="format version 1 is not 2"):
        load_engine(buffer.getvalue(), version=engine.layout.version)


def test_drop_refuses_the_same_timestamp_as_a_duplicate_and_changes_nothing():
    engine = RealTimeFeatureEngine(history_features=False, on_same_ts="drop")
    before = engine.update_many(["A", "A"], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(OrderError) as refused:
        engine.update_many(["A"], [2.0], [5.0])
    assert refused.value.reason == "duplicate" and engine.replaced == 0
    again = engine.update_many(["A"], [3.0], [3.0])
    fresh = RealTimeFeatureEngine(history_features=False, on_same_ts="drop")
    _assert_rows_equal(
        again, fresh.update_many(["A"] * 3, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])[-1:], engine.names
    )
    assert before.shape == (2, len(engine.names))


def test_older_points_and_same_date_draws_are_refused_in_replace_mode_too():
    engine = RealTimeFeatureEngine(history_features=False, on_same_ts="replace")
    engine.update("A", 5.0, 1.0)
    with pytest.raises(OrderError, match="out of order"):
        engine.update("A", 4.0, 1.0)
    engine.update_draw("loto6", "2024-01-01", {"N1": 1.0, "N2": 2.0})
    with pytest.raises(OrderError, match="duplicate"):
        engine.update_draw("loto6", "2024-01-01", {"N1": 3.0, "N2": 4.0})


def test_the_engine_and_the_intake_follow_the_setting():
    try:
        settings.patch(settings.load(overrides={"online": {"on_same_ts": "drop"}}))
        with pytest.raises(OrderError, match="duplicate"):
            RealTimeFeatureEngine(history_features=False).update_many(["A", "A"], [1.0, 1.0], [1.0, 2.0])
        assert not StreamingDataProcessor("ws://127.0.0.1:9").replace_same_ts
        settings.patch(settings.load())
        engine = RealTimeFeatureEngine(history_features=False)
        engine.update_many(["A", "A"], [1.0, 1.0], [1.0, 2.0])
        assert engine.replaced == 1 and StreamingDataProcessor("ws://127.0.0.1:9").replace_same_ts
    finally:
        settings.patch(None)
    with pytest.raises(SettingsError, match="on_same_ts"):
        settings.load(overrides={"online": {"on_same_ts": "sometimes"}})


def _frame(*points: tuple[float, float]) -> str:
    return json.dumps([{"symbol": "EURUSD", "ts": ts, "price": price} for ts, price in points])


def test_the_intake_marks_replacing_ticks_and_counts_duplicates_only_under_drop():
    frame = _frame((60.0, 1.0), (60.0, 1.1), (120.0, 1.2), (120.0, 1.3), (120.0, 1.25), (60.0, 9.0))
    replacing = StreamingDataProcessor("ws://127.0.0.1:9", ts_earliest=0.0, on_same_ts="replace")
    ticks = replacing.parse_frame(frame)
    assert [(t.ts, t.price, t.replaces) for t in ticks] == [
        (60.0, 1.0, False), (60.0, 1.1, True), (120.0, 1.2, False), (120.0, 1.3, True), (120.0, 1.25, True),
    ]  # fmt: skip
    assert replacing.replaced == 3 and replacing.dropped["duplicate"] == 0
    assert replacing.dropped["out_of_order"] == 1 and replacing.accepted == 5
    dropping = StreamingDataProcessor("ws://127.0.0.1:9", ts_earliest=0.0, on_same_ts="drop")
    ticks = dropping.parse_frame(frame)
    assert [(t.ts, t.price, t.replaces) for t in ticks] == [(60.0, 1.0, False), (120.0, 1.2, False)]
    assert dropping.dropped["duplicate"] == 3 and dropping.dropped["out_of_order"] == 1
    assert dropping.received == dropping.accepted + sum(dropping.dropped.values())
