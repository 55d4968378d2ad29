"""The WebSocket intake refuses what it cannot use, message by message, and keeps reading:
overflowing numbers, odd symbols, absurd or millisecond timestamps, prices as strings,
oversized and non-UTF-8 frames, a bounded ordering state, the subscription on every
connection, and a logged sample of each kind of drop."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import math
import time

import numpy as np
import pytest

from python_jobs.realtime.stream import DROP_REASONS, StreamingDataProcessor
from python_jobs.tests.ws_feed import ScriptedFeed, tick, until

NOW = 1_717_200_000.0  # 2024-06-01T00:00:00Z
DAY = 86400.0


def _processor(**kwargs) -> StreamingDataProcessor:
    limits = {"max_frame_bytes": 1 << 20, "ts_earliest": -2208988800.0, "ts_max_ahead_s": 7 * DAY}
    return StreamingDataProcessor("ws://127.0.0.1:9", **{"max_symbols": 1000, **limits, **kwargs})


def _check(processor: StreamingDataProcessor, message, now: float = NOW):
    return processor.validate(message, 0.0, now)


def _drops(processor: StreamingDataProcessor) -> dict[str, int]:
    return {reason: n for reason, n in processor.dropped.items() if n}


def _adds_up(processor: StreamingDataProcessor) -> bool:
    return processor.received == processor.accepted + sum(processor.dropped.values())


# -- numbers ---------------------------------------------------------------------------------


def test_overflowing_numbers_are_dropped_never_raised():
    processor = _processor()
    for field in ("price", "volume"):
        assert _check(processor, {"symbol": "A", "ts": NOW, "price": 1.0, field: 10**400}) is None
        assert _check(processor, {"symbol": "A", "ts": NOW, "price": 1.0, field: -(10**400)}) is None
    # Through JSON: a 401-digit integer and 1e400 (which json reads as infinity).
    assert processor.parse_frame('{"symbol": "A", "ts": 1717200000, "price": 1' + "0" * 400 + "}") == []
    assert processor.parse_frame('{"symbol": "A", "ts": 1717200000, "price": 1e400}') == []
    assert _drops(processor) == {"non_finite": 6}
    # A timestamp past any float is out of range, not an error either.
    assert processor.parse_frame('{"symbol": "A", "ts": 1' + "0" * 400 + ', "price": 1}') == []
    assert _drops(processor) == {"non_finite": 6, "ts_out_of_range": 1}
    assert processor.parse_frame(tick("A", NOW, 1.5))[0].price == 1.5


def test_prices_and_volumes_as_decimal_strings():
    processor = _processor()
    accepted = _check(processor, {"symbol": "A", "ts": NOW, "price": "150.5", "volume": "0.25"})
    assert (accepted.price, accepted.volume) == (150.5, 0.25)
    assert _check(processor, {"symbol": "B", "ts": NOW, "price": "-1.5e-3"}).price == -1.5e-3
    for text in ("abc", "", "1_000", " 1", "1.5.", "0x10", "١٢", "--1"):
        assert _check(processor, {"symbol": "C", "ts": NOW, "price": text}) is None, text
    assert _drops(processor) == {"malformed": 8}
    for text in ("NaN", "nan", "inf", "-Infinity", "1e400"):
        assert _check(processor, {"symbol": "C", "ts": NOW, "price": text}) is None, text
    assert _drops(processor) == {"malformed": 8, "non_finite": 5}
    for value in (True, None, [1.0], {"v": 1}):
        assert _check(processor, {"symbol": "C", "ts": NOW, "price": value}) is None
    assert _drops(processor) == {"malformed": 12, "non_finite": 5}


# -- symbols ---------------------------------------------------------------------------------


def test_symbols_with_colons_accepted_lone_surrogates_and_control_characters_refused():
    processor = _processor()
    assert (
        _check(processor, {"symbol": "BINANCE:BTCUSDT", "ts": NOW, "price": 1.0}).symbol == "BINANCE:BTCUSDT"
    )
    assert _check(processor, {"symbol": "S" * 64, "ts": NOW, "price": 1.0}) is not None
    assert processor.parse_frame(r'{"symbol": "\ud800", "ts": 1717200000, "price": 1}') == []
    assert processor.parse_frame(r'{"symbol": "A\udc00B", "ts": 1717200000, "price": 1}') == []
    for symbol in ("A\nB", "A\x00", "\x1b[31m", "A\x7f", "", "S" * 65, 7, None):
        assert _check(processor, {"symbol": symbol, "ts": NOW, "price": 1.0}) is None, symbol
    assert _drops(processor) == {"malformed": 10}
    # Every symbol accepted can be written as UTF-8.
    assert all(symbol.encode("utf-8") for symbol in processor._last_ts)


# -- timestamps ------------------------------------------------------------------------------


def test_an_absurd_timestamp_never_blocks_a_symbol():
    processor = _processor()
    for absurd in (1e300, math.inf, 10**40, -1e300, "9999-12-31T23:59:59"):
        assert _check(processor, {"symbol": "A", "ts": absurd, "price": 1.0}) is None
        # A real point after it is accepted.
        accepted = _check(processor, {"symbol": "A", "ts": NOW + len(processor._last_ts), "price": 1.0})
        processor.forget("A")
        assert accepted is not None
    assert _drops(processor) == {"ts_out_of_range": 5}
    assert _check(processor, {"symbol": "A", "ts": math.nan, "price": 1.0}) is None
    assert _drops(processor) == {"ts_out_of_range": 5, "malformed": 1}


def test_timestamp_window_is_the_constructor_s():
    processor = _processor()
    earliest = dt.datetime(1900, 1, 1, tzinfo=dt.UTC).timestamp()
    assert _check(processor, {"symbol": "A", "ts": earliest - 1, "price": 1.0}) is None
    assert _check(processor, {"symbol": "A", "ts": "1899-12-31T23:59:59Z", "price": 1.0}) is None
    assert _check(processor, {"symbol": "A", "ts": earliest, "price": 1.0}) is not None
    assert _check(processor, {"symbol": "A", "ts": NOW + 7 * DAY - 1, "price": 1.0}) is not None
    assert _check(processor, {"symbol": "B", "ts": NOW + 7 * DAY + 1, "price": 1.0}) is None
    assert _drops(processor) == {"ts_out_of_range": 3}
    narrow = StreamingDataProcessor(
        "ws://127.0.0.1:9", max_frame_bytes=4096, ts_earliest=NOW - DAY, ts_max_ahead_s=60.0, max_symbols=10
    )
    assert _check(narrow, {"symbol": "A", "ts": NOW - DAY - 1, "price": 1.0}) is None
    assert _check(narrow, {"symbol": "A", "ts": NOW + 61, "price": 1.0}) is None
    assert _check(narrow, {"symbol": "A", "ts": NOW + 59, "price": 1.0}) is not None
    # Without ``now`` the clock is read: a message stamped two days ahead of it is refused.
    assert narrow.validate({"symbol": "B", "ts": time.time() + 2 * DAY, "price": 1.0}, 0.0) is None
    assert _drops(narrow) == {"ts_out_of_range": 3}


@pytest.mark.parametrize(
    "stamp",
    [
        1717200000,
        1717200000.0,
        1717200000000,  # milliseconds
        1717200000000.0,
        1717200000000000,  # microseconds
        1717200000000000000,  # nanoseconds
        "2024-06-01T00:00:00",
        "2024-06-01 00:00:00",
        "2024-06-01T00:00:00Z",
        "2024-06-01T02:00:00+02:00",
        "2024-05-31T20:00:00.000000-04:00",
        "2024-06-01",
    ],
)
def test_epoch_units_by_magnitude_and_iso_strings(stamp):
    accepted = _check(_processor(), {"symbol": "A", "ts": stamp, "price": 1.0})
    assert accepted.ts == NOW


def test_sub_second_epoch_units_keep_their_fraction():
    processor = _processor()
    assert _check(processor, {"symbol": "A", "ts": 1717200000123, "price": 1.0}).ts == 1717200000.123
    assert _check(processor, {"symbol": "B", "ts": 1717200000123456789, "price": 1.0}).ts == pytest.approx(
        1717200000.123457, abs=1e-6
    )
    assert _check(processor, {"symbol": "C", "ts": -2208988800000, "price": 1.0}).ts == -2208988800.0


def test_timestamps_of_other_kinds_are_malformed():
    processor = _processor()
    for stamp in (True, None, [NOW], "yesterday", "1717200000", "2024-06-01T00:00:00" + " " * 100):
        assert _check(processor, {"symbol": "A", "ts": stamp, "price": 1.0}) is None, stamp
    assert _drops(processor) == {"malformed": 6}


# -- frames and counters ---------------------------------------------------------------------


def test_every_frame_counts_and_counts_add_up():
    processor = _processor()
    assert processor.parse_frame("[]") == []  # an empty array: one malformed message
    assert processor.received == 1 and _drops(processor) == {"malformed": 1}
    frame = json.dumps([{"symbol": "A", "ts": NOW + i, "price": 1.0} for i in range(3)] + [[1], "x"])
    assert len(processor.parse_frame(frame)) == 3
    assert processor.received == 6 and _drops(processor) == {"malformed": 3}
    assert processor.parse_frame("[" * 100_000) == [] and processor.received == 7
    assert processor.parse_frame(b"\xff\xfe\x00garbage") == [] and processor.received == 8
    assert _adds_up(processor)
    assert set(processor.counts()) == {"received", "accepted", *(f"dropped_{r}" for r in DROP_REASONS)}


def test_ordering_state_is_bounded_least_recently_updated_forgotten():
    processor = _processor(max_symbols=2)
    for symbol, stamp in (("A", 10), ("B", 10), ("A", 11), ("C", 10)):
        assert _check(processor, {"symbol": symbol, "ts": NOW + stamp, "price": 1.0}) is not None
    # B was the least recently updated: forgotten, so an older B is taken; A is still held.
    assert (processor.evicted, processor.symbols_held) == (1, 2)
    assert _check(processor, {"symbol": "A", "ts": NOW + 5, "price": 1.0}) is None
    assert _check(processor, {"symbol": "B", "ts": NOW + 5, "price": 1.0}) is not None
    assert processor.evicted == 2 and list(processor._last_ts) == ["C", "B"]
    processor.forget("B")
    processor.forget("never seen")
    assert processor.symbols_held == 1
    assert _check(processor, {"symbol": "B", "ts": NOW, "price": 1.0}) is not None
    assert _drops(processor) == {"out_of_order": 1}


def test_limits_left_out_come_from_the_settings():
    from python_jobs import settings

    settings.patch(
        settings.load(
            overrides={"online": {"ts_earliest": "2000-01-01", "ts_max_ahead_days": 1, "max_symbols": 3}}
        )
    )
    try:
        processor = StreamingDataProcessor("ws://127.0.0.1:9")
    finally:
        settings.patch(None)
    assert processor.ts_earliest == dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()
    assert (processor.ts_max_ahead_s, processor.max_symbols) == (DAY, 3)


def test_subscribe_payload_must_be_json():
    with pytest.raises(ValueError, match="subscribe payload is not JSON"):
        _processor(subscribe="{not json")


# -- drop logging ----------------------------------------------------------------------------


def test_drops_are_logged_as_a_rate_limited_sample(capsys):
    processor = _processor(drop_log_interval_s=10.0)
    clock = [100.0]
    processor._clock = lambda: clock[0]
    long_symbol = "X" * 5000
    for _ in range(3):
        processor.parse_frame(json.dumps({"symbol": long_symbol, "ts": NOW, "price": 1.0}))
    processor.parse_frame(tick("A", NOW, "NaN"))
    lines = [line for line in capsys.readouterr().err.splitlines() if "feed message dropped" in line]
    assert len(lines) == 2  # one per reason within 10 s
    assert "reason=malformed" in lines[0] and "dropped=1" in lines[0] and "XXXX" in lines[0]
    assert "reason=non_finite" in lines[1] and "'NaN'" in lines[1]
    assert all(len(line) < 600 for line in lines)
    clock[0] += 11.0
    processor.parse_frame("{oops")
    lines = [line for line in capsys.readouterr().err.splitlines() if "feed message dropped" in line]
    assert len(lines) == 1 and "dropped=3" in lines[0] and "{oops" in lines[0]


# -- over a real WebSocket -------------------------------------------------------------------


def _run_with_loop_errors(scenario) -> list[dict]:
    """Run ``scenario`` and return what the loop reported (e.g. a task exception never retrieved)."""
    reported: list[dict] = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        await scenario()
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(main())
    gc.collect()
    return reported


def test_oversized_frame_is_counted_and_the_connection_reopened(capsys):
    processor = StreamingDataProcessor(
        "", max_frame_bytes=4096, ts_earliest=0.0, ts_max_ahead_s=DAY, max_symbols=10, backoff_min=0.01
    )

    async def scenario():
        async with ScriptedFeed() as feed:
            processor.url = feed.url
            reader = asyncio.ensure_future(processor.run())
            await until(lambda: len(feed.sockets) == 1)
            await feed.send(tick("A", time.time(), 1.0))
            await feed.send(json.dumps({"symbol": "A", "ts": time.time(), "pad": "x" * 5000}))
            await until(lambda: len(feed.sockets) == 2)
            await feed.send(tick("A", time.time() + 1, 2.0))
            await until(lambda: processor.received == 3)
            processor.stop()
            await reader

    assert _run_with_loop_errors(scenario) == []
    assert processor.counts()["dropped_oversized"] == 1
    assert (processor.received, processor.accepted, processor.connections) == (3, 2, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "reason=oversized" in err


def test_frame_that_is_not_utf8_text_is_counted_and_the_connection_reopened():
    processor = _processor(backoff_min=0.01)

    async def scenario():
        async with ScriptedFeed() as feed:
            processor.url = feed.url
            reader = asyncio.ensure_future(processor.run())
            await until(lambda: len(feed.sockets) == 1)
            await feed.send(b'{"symbol": "\xff"}', text=True)
            await until(lambda: len(feed.sockets) == 2)
            await feed.send(tick("A", time.time(), 2.0))
            await until(lambda: processor.received == 2)
            processor.stop()
            await reader

    assert _run_with_loop_errors(scenario) == []
    assert processor.counts()["dropped_malformed"] == 1 and processor.accepted == 1


def test_subscribe_is_sent_on_every_connection():
    subscribe = json.dumps({"op": "subscribe", "args": ["trade:BTCUSDT"]})
    processor = _processor(backoff_min=0.01, subscribe=subscribe)

    async def scenario():
        async with ScriptedFeed() as feed:
            processor.url = feed.url
            reader = asyncio.ensure_future(processor.run())
            await until(lambda: len(feed.heard) == 1)
            await feed.send(tick("BINANCE:BTCUSDT", time.time(), 1.0))
            await until(lambda: processor.accepted == 1)
            await feed.drop()
            await until(lambda: len(feed.heard) == 2)
            await feed.send(tick("BINANCE:BTCUSDT", time.time() + 1, 2.0))
            await until(lambda: processor.accepted == 2)
            processor.stop()
            await reader
            return feed.heard, len(feed.sockets)

    heard, connections = asyncio.run(scenario())
    assert heard == [subscribe, subscribe] and connections == 2


def test_stop_while_reading_leaves_no_task_behind():
    processor = _processor(backoff_min=0.01)

    async def scenario():
        async with ScriptedFeed() as feed:
            processor.url = feed.url
            reader = asyncio.ensure_future(processor.run())
            await until(lambda: len(feed.sockets) == 1)
            processor.stop()
            await asyncio.wait_for(reader, timeout=5)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert pending == []

    assert _run_with_loop_errors(scenario) == []


def test_csv_feed_sends_a_backlog_in_frames_the_intake_takes_and_hears_the_subscription():
    import pandas as pd
    import websockets

    from python_jobs.realtime.feed import CsvFeed, messages

    rows = pd.DataFrame({"symbol": "EURUSD", "ts": NOW + np.arange(2500.0), "price": 1.08, "volume": 1.0})
    subscribe = json.dumps({"subscribe": ["EURUSD"]})
    processor = _processor(max_frame_bytes=150_000, subscribe=subscribe)

    async def scenario():
        # A rate no clock keeps up with: all 2,500 messages (200 kB as one frame) are due at once.
        feed = CsvFeed(messages(rows), rate=1e9)
        async with websockets.serve(feed._handler, "127.0.0.1", 0) as server:
            processor.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            reader = asyncio.ensure_future(processor.run())
            await asyncio.wait_for(feed.play(), timeout=10)
            await until(lambda: processor.received == 2500)
            processor.stop()
            await reader
        return feed

    feed = asyncio.run(scenario())
    assert (processor.accepted, processor.dropped["oversized"], processor.connections) == (2500, 0, 1)
    assert list(feed.heard) == [subscribe]
