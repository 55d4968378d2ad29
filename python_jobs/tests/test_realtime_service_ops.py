"""The online service as an operator runs it: the settings it reads, Redis refusing writes,
what it says on exit, and its command line.

In-process tests build the service with :func:`python_jobs.realtime.cli.build_service` under
patched settings; command-line tests run ``python -m python_jobs realtime serve`` against a
loopback feed (``realtime feed`` on a small CSV) and a Redis of the test's own
(:class:`~python_jobs.tests.redis_servers.OwnRedis`), and read its exit code and output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import websockets
from prometheus_client import generate_latest

from python_jobs import config, settings
from python_jobs.cli import build_parser
from python_jobs.realtime import cli as realtime_cli
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.service import FeatureService
from python_jobs.realtime.store import RealTimeFeatureStore, escape
from python_jobs.realtime.stream import Tick
from python_jobs.tests.redis_servers import OwnRedis, free_port, machine_redis

UNREACHABLE_FEED = "ws://127.0.0.1:9"


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


@contextlib.contextmanager
def patched(**sections) -> Iterator[settings.Settings]:
    """The settings of the files with ``sections`` applied, current for the block."""
    current = settings.load(overrides=sections)
    settings.patch(current)
    try:
        yield current
    finally:
        settings.patch(None)


def _service(*extra: str) -> FeatureService:
    """A service built as ``realtime serve`` builds it, from the current settings."""
    args = build_parser().parse_args(
        ["realtime", "serve", "--feed", UNREACHABLE_FEED, "--no-predict", *extra]
    )
    return realtime_cli.build_service(args, args.feed)


def _ticks(symbols: list[str], start: float = 1_700_000_000.0) -> list[Tick]:
    now = time.perf_counter()
    return [Tick(s, start + 60.0 * i, 1.1 + 0.01 * i, 1.0, now) for i, s in enumerate(symbols)]


# -- settings -------------------------------------------------------------------------------------


def test_the_service_writes_to_the_redis_of_the_settings(own_redis, monkeypatch):
    # REDIS_URL names another server: the settings object is what the service obeys.
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    targets = [own_redis.url] + [url for url in [machine_redis(15)] if url]
    for url in targets:
        prefix = f"t{uuid.uuid4().hex[:8]}"
        with patched(redis={"url": url, "key_prefix": prefix}):
            service = _service()
            service.handle(_ticks(["EURUSD"] * 3))
        client = redis.Redis.from_url(url)
        try:
            assert service.store.counters.written == 3 and service.store.buffer_fill == 0
            assert client.exists(service.store.latest_key("EURUSD"))
        finally:
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)


def test_every_key_starts_with_the_prefix_and_expires_after_ttl_s(own_redis, monkeypatch):
    from python_jobs.realtime import predict

    bundle = {"model": _LinearModel(), "columns": ["hist_y_lag1"], "window": 30, "rows": 0}
    monkeypatch.setattr(predict, "load_model", lambda *a, **k: bundle)
    with patched(redis={"url": own_redis.url, "key_prefix": "pfx-test", "ttl_s": 77}):
        args = build_parser().parse_args(["realtime", "serve", "--feed", UNREACHABLE_FEED])
        assert args.ttl == 77  # --ttl's default is redis.ttl_s
        service = realtime_cli.build_service(args, args.feed)
        close = np.linspace(1.0, 2.0, 40)
        ticks = [Tick("EUR:USD", 3600.0 * i, float(p), 1.0, time.perf_counter()) for i, p in enumerate(close)]
        service.handle(ticks)
        assert service.predictor.publish(["EUR:USD"], [1.0], np.array([0.5])) == 1
        service.store.save_state(service.engine)
    client = own_redis.admin()
    keys = [key.decode() for key in client.scan_iter("*")]
    store = service.store
    assert keys and all(key.startswith("pfx-test:") for key in keys)
    assert store.predictions_key in keys and store.state_key in keys and store.names_key in keys
    latest = store.latest_key("EUR:USD")
    # Kept without expiry on purpose: the stream of predictions, the saved state, the names and the
    # registry that decode a version's vectors, and the outbox of points not yet stored.
    lasting = (store.predictions_key, store.state_key, store.names_key, store.registry_key, store.outbox_key)
    expiring = [key for key in keys if key not in lasting]
    assert latest in expiring and len(expiring) > 40
    assert all(0 < client.ttl(key) <= 77 for key in expiring)


class _LinearModel:
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return inputs.sum(axis=1) * 0.0 + 0.5


def test_buffer_size_bounds_what_waits_for_redis():
    with patched(redis={"url": f"redis://127.0.0.1:{free_port()}/0"}, online={"buffer_size": 5}):
        service = _service()
        service.handle(_ticks([f"S{i}" for i in range(8)]))
    assert service.store.buffer_fill == 5
    assert service.store.counters.buffer_dropped == 3
    assert service.lost() == {"buffer_dropped": 3, "not_written": 5, "failed": 0, "total": 8}


def test_service_id_keeps_two_services_states_apart(own_redis):
    saved = {}
    for service_id, symbol in (("alpha", "A"), ("beta", "B")):
        with patched(redis={"url": own_redis.url}, online={"service_id": service_id}):
            service = _service()
            service.handle(_ticks([symbol] * 5))
            service.store.save_state(service.engine)
            saved[service_id] = service.store.state_key
    assert saved == {
        "alpha": f"feature:state:alpha:{service.store.version}",
        "beta": f"feature:state:beta:{service.store.version}",
    }
    for service_id, symbol in (("alpha", "A"), ("beta", "B")):
        with patched(redis={"url": own_redis.url}, online={"service_id": service_id}):
            assert _service().store.load_state().keys == [symbol]


def test_warm_start_from_redis_continues_the_saved_engine_or_refuses_in_one_line(own_redis):
    with patched(redis={"url": own_redis.url}):
        first = _service()
        first.handle(_ticks(["A", "B"]))
        first.store.save_state(first.engine)
        assert _service("--warm-start", "redis").engine.keys == ["A", "B"]
        own_redis.admin().set(first.store.state_key, b"\x80\x04K\x01.")  # a pickle
        with pytest.raises(realtime_cli.CommandError, match=r"cannot warm-start from feature:state:"):
            _service("--warm-start", "redis")


def _latest_vector(client: redis.Redis, store: RealTimeFeatureStore, symbol: str) -> np.ndarray:
    return np.frombuffer(client.hget(store.latest_key(symbol), "v"), dtype="<f8")


def test_the_registry_names_every_column_of_the_vectors_written(own_redis):
    """The names and the registry list exactly the columns of each latest vector, also when the
    engine comes back from a state saved with the history-wide columns on."""
    with patched(redis={"url": own_redis.url}):
        first = _service()
        saved = RealTimeFeatureEngine(history_features=True)
        saved.update("A", 1.0, 1.0)
        first.store.save_state(saved)
        for service in (first, _service("--warm-start", "redis")):
            service.handle(_ticks(["A", "B"], start=1_700_000_000.0 + len(service.engine.keys)))
            client = own_redis.admin()
            registry = json.loads(client.get(service.store.registry_key))
            names = json.loads(client.get(service.store.names_key))
            width = len(_latest_vector(client, service.store, "B"))
            assert registry["names"] == names == list(service.engine.layout.names)
            assert width == len(names) == len(service.store.names)
    # The service computes no history-wide columns, so it offers no option that would name them.
    with pytest.raises(SystemExit):
        build_parser().parse_args(["realtime", "serve", "--feed", UNREACHABLE_FEED, "--history-features"])


def test_warm_start_from_postgres_continues_the_live_key_of_each_symbol(own_redis, fresh_schema, pg_url):
    """The stream's points stored under online.market_loto are replayed under their symbol, so
    the first live tick continues that series (and a lottery's rows stay ``loto:unique_id``)."""
    from psycopg import sql

    from python_jobs import db

    schema = fresh_schema("warmmarket")
    prices = np.round(1.1 + 0.01 * np.sin(np.arange(41.0)), 5)  # exact as numeric
    stamps = 1_700_000_000.0 + 60.0 * np.arange(41)
    with db.connect(pg_url, autocommit=True) as conn:
        staged = sql.Identifier(schema, config.STAGING_MODEL)
        conn.execute(
            sql.SQL("create table {} (loto text, unique_id text, ds timestamp, y numeric)").format(staged)
        )
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("insert into {} values (%s, %s, to_timestamp(%s) at time zone 'UTC', %s)").format(
                    staged
                ),
                [
                    ("market", "EUR:USD", float(t), float(p))
                    for t, p in zip(stamps[:40], prices[:40], strict=True)
                ]
                + [("loto6", f"N{i}", 1_600_000_000.0, float(i)) for i in range(1, 7)],
            )
    with patched(redis={"url": own_redis.url}, online={"market_loto": "market"}):
        service = _service("--warm-start", "postgres")
        assert sorted(service.engine.keys) == ["EUR:USD", *(f"loto6:N{i}" for i in range(1, 7))]
        service.handle([Tick("EUR:USD", stamps[40], prices[40], 1.0, time.perf_counter())])
    reference = RealTimeFeatureEngine(history_features=False).update_many(["EUR:USD"] * 41, stamps, prices)[
        -1
    ]
    written = _latest_vector(own_redis.admin(), service.store, "EUR:USD")
    # The live tick is the 41st point of the replayed series: its 40-row window is full.
    assert np.isfinite(written[list(service.store.names).index("hist_y_roll_mean_w30")])
    np.testing.assert_allclose(written, reference, rtol=1e-12, equal_nan=True)


def test_max_symbols_bounds_engine_and_intake_and_is_exported(own_redis):
    with patched(redis={"url": own_redis.url}, online={"max_symbols": 3}):
        service = _service()
    assert service.engine.max_keys == 3 and service.processor.max_symbols == 3
    for i in range(5):
        service.handle(_ticks([f"S{i}"], start=1_700_000_000.0 + i))
    service._sync_symbol_metrics()
    text = generate_latest(service.metrics.registry).decode()
    assert "realtime_symbols 3.0" in text
    assert "realtime_symbols_evicted_total 2.0" in text
    assert 'realtime_drops_total{reason="oversized"} 0.0' in text  # every reason from the start


def test_intake_limits_come_from_the_settings(own_redis):
    online = {"max_frame_bytes": 4096, "ts_earliest": "2001-02-03", "ts_max_ahead_days": 2}
    with patched(redis={"url": own_redis.url}, online=online):
        processor = _service().processor
    assert processor.max_frame_bytes == 4096
    assert processor.ts_earliest == 981158400.0  # 2001-02-03T00:00:00Z
    assert processor.ts_max_ahead_s == 2 * 86400.0


# -- keys -----------------------------------------------------------------------------------------


def test_symbols_holding_colons_get_keys_of_their_own(own_redis):
    engine = RealTimeFeatureEngine(history_features=False)
    with patched(redis={"url": own_redis.url}):
        store = RealTimeFeatureStore(engine.names, engine.layout.version, own_redis.admin())
    assert store.feature_key("A:B", "rsi_14", 1.0) != store.feature_key("A", "B:rsi_14", 1.0)
    assert store.latest_key("A:B") != store.latest_key("A")
    assert store.split_feature_key(store.feature_key("A", "B:x", 2.5)) == ("A", "B:x", 2500)
    assert escape("50%:3A") == "50%25%3A3A"
    symbols = ["BINANCE:BTCUSDT", "loto6:N1", "A:B", "A", "50%:3A"] * 40
    stamps = [3600.0 * (i // 5) for i in range(200)]
    rows = engine.update_many(symbols, stamps, np.linspace(1.0, 3.0, 200))
    assert store.write_batch(symbols, stamps, rows)
    for symbol in set(symbols):
        last = max(i for i, s in enumerate(symbols) if s == symbol)
        assert store.latest(symbol)["ts"] == stamps[last]
        got = [np.nan if v is None else v for k, v in store.latest(symbol).items() if k != "ts"]
        np.testing.assert_array_equal(got, rows[last])
    found = {store.split_feature_key(k.decode())[0] for k in store.client.scan_iter(store.feature_pattern())}
    assert found == set(symbols)


# -- Redis refusing writes ------------------------------------------------------------------------


def _oom(admin: redis.Redis) -> None:
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)


def _readonly(admin: redis.Redis) -> None:
    admin.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))


def _noauth(admin: redis.Redis) -> None:
    # A password set now binds new connections only: close the service's.
    admin.config_set("requirepass", "now-required")
    admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")


def _heal(admin: redis.Redis) -> None:
    admin.config_set("maxmemory", 0)
    admin.execute_command("REPLICAOF", "NO", "ONE")
    admin.config_set("requirepass", "")


class Feed:
    """A loopback WebSocket server sending the frames put on its queue."""

    def __init__(self) -> None:
        self.port = free_port()
        self.frames: asyncio.Queue = asyncio.Queue()

    async def handler(self, sock) -> None:
        while True:
            frame = await self.frames.get()
            if frame is None:
                return
            await sock.send(frame)

    async def __aenter__(self):
        self.server = await websockets.serve(self.handler, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.frames.put_nowait(None)
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), timeout=5)

    def send(self, symbol: str, ts: float) -> None:
        self.frames.put_nowait(json.dumps({"symbol": symbol, "ts": ts, "price": 1.0 + ts / 1e5}))


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("fault", [_oom, _readonly, _noauth], ids=["oom", "readonly", "noauth"])
def test_redis_refusing_writes_is_counted_buffered_and_flushed_when_it_is_back(own_redis, fault):
    admin = own_redis.admin()

    async def scenario() -> FeatureService:
        async with Feed() as feed:
            with patched(redis={"url": own_redis.url}):
                service = _service()
            service.processor.url = f"ws://127.0.0.1:{feed.port}"
            running = asyncio.ensure_future(service.run(30))
            feed.send("A", 1.0)
            await _until(lambda: service.store.counters.written == 1)
            fault(admin)
            for ts in range(2, 12):
                feed.send("A", float(ts))
            # Consuming goes on: every message is handled, its update buffered.
            await _until(lambda: service.processor.accepted == 11 and service.store.buffer_fill == 10)
            assert service.store.counters.errors >= 1
            _heal(admin)
            # No new message: the buffer still reaches Redis.
            await _until(lambda: service.store.buffer_fill == 0)
            feed.send("A", 12.0)
            await _until(lambda: service.store.counters.written == 12)
            service.stop()
            await running
            return service

    service = asyncio.run(scenario())
    assert service.store.latest("A")["ts"] == 12.0
    assert service.lost()["total"] == 0 and service.internal_errors == 0
    text = generate_latest(service.metrics.registry).decode()
    errors = [line for line in text.splitlines() if line.startswith("realtime_redis_errors_total")]
    assert float(errors[0].split()[1]) >= 1


def test_an_unexpected_error_in_a_batch_is_counted_and_consuming_goes_on(own_redis):
    async def scenario() -> FeatureService:
        async with Feed() as feed:
            with patched(redis={"url": own_redis.url}):
                service = _service()
            service.processor.url = f"ws://127.0.0.1:{feed.port}"
            update_many = service.engine.update_many

            def fails_on_symbol_bad(keys, ts, values):
                if "BAD" in keys:
                    raise RuntimeError("a bug")
                return update_many(keys, ts, values)

            service.engine.update_many = fails_on_symbol_bad
            running = asyncio.ensure_future(service.run(30))
            feed.send("A", 1.0)
            await _until(lambda: service.store.counters.written == 1)
            feed.send("BAD", 1.0)
            await _until(lambda: service.internal_errors == 1)
            feed.send("A", 2.0)
            await _until(lambda: service.store.counters.written == 2)
            service.stop()
            await running
            return service

    service = asyncio.run(scenario())
    assert service.lost() == {"buffer_dropped": 0, "not_written": 0, "failed": 1, "total": 1}
    assert "realtime_internal_errors_total 1.0" in generate_latest(service.metrics.registry).decode()


def test_a_background_part_that_fails_is_counted_and_started_again(own_redis, monkeypatch):
    from python_jobs.realtime import service as service_module

    monkeypatch.setattr(service_module, "RESTART_SECONDS", 0.0)
    with patched(redis={"url": own_redis.url}):
        service = _service()
    calls = []

    async def publishes_once_redis_allows() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'")

    asyncio.run(service.keep_running("prediction pipeline", publishes_once_redis_allows))
    assert calls == [0, 1] and service.internal_errors == 1
    assert "realtime_internal_errors_total 1.0" in generate_latest(service.metrics.registry).decode()


# -- the command line -----------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "python_jobs", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=config.REPO_ROOT,
        env={**os.environ, **(env or {})},
    )


def _assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("option", "value", "word"),
    [("--ttl", "0", "--ttl"), ("--max-batch", "0", "--max-batch"), ("--metrics-port", "99999", "port")],
)
def test_bad_serve_arguments_are_one_line_and_exit_2(option, value, word):
    result = _cli("realtime", "serve", "--feed", UNREACHABLE_FEED, "--duration", "1", option, value)
    _assert_one_line_error(result, word)


def test_a_metrics_port_in_use_is_one_line_and_exit_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli(
            "realtime", "serve", "--feed", UNREACHABLE_FEED, "--duration", "1", "--metrics-port", str(port)
        )
    _assert_one_line_error(result, f"127.0.0.1:{port}")


def test_train_out_a_directory_is_one_line_and_exit_2(tmp_path):
    _assert_one_line_error(_cli("train", "--from-files", "--out", str(tmp_path)), "directory")


def test_serve_subscribe_sends_the_file_and_refuses_one_not_json(tmp_path):
    request = tmp_path / "subscribe.json"
    request.write_text('{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}')
    with patched(redis={"url": f"redis://127.0.0.1:{free_port()}/0"}):
        assert _service("--subscribe", str(request)).processor.subscribe == request.read_text()
    request.write_text("SUBSCRIBE btcusdt")
    result = _cli("realtime", "serve", "--feed", UNREACHABLE_FEED, "--subscribe", str(request))
    _assert_one_line_error(result, "is not JSON")


def test_serve_refuses_a_pickled_model_in_one_line(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "next_value.skops").write_bytes(b"\x80\x05N.")
    result = _cli(
        "realtime", "serve", "--feed", UNREACHABLE_FEED, "--duration", "1", "--metrics-port", "0",
        env={"LOTO_LOCAL_DIR": str(tmp_path), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
    )  # fmt: skip
    _assert_one_line_error(result, "pickle")


@pytest.fixture
def small_feed(tmp_path) -> Iterator[tuple[str, int]]:
    """A ``realtime feed`` process playing 20 rows of EUR/USD once a client connects."""
    source = config.RAW_DATA_DIR / "eurusd_h1.csv"
    lines = source.read_text().splitlines()[:21]
    path = tmp_path / "ticks.csv"
    path.write_text("\n".join(lines) + "\n")
    port = free_port()
    feed = subprocess.Popen(
        [sys.executable, "-m", "python_jobs", "realtime", "feed", "--file", str(path), "--port", str(port)],
        cwd=config.REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield f"ws://127.0.0.1:{port}", 20
    feed.terminate()
    feed.wait(timeout=10)


def _serve(feed_url: str, redis_url: str, *extra: str, seconds: str = "4") -> subprocess.CompletedProcess:
    return _cli(
        "realtime", "serve", "--feed", feed_url, "--duration", seconds, "--no-predict", "--metrics-port", "0",
        *extra, env={"REDIS_URL": redis_url},
    )  # fmt: skip


def _assert_clean_stderr(stderr: str) -> None:
    assert "Traceback" not in stderr and "never retrieved" not in stderr


def test_serve_exits_1_and_counts_what_never_reached_redis(small_feed):
    feed_url, rows = small_feed
    server = OwnRedis(password="right-pw")
    server.start()
    try:
        result = _serve(feed_url, f"redis://:wrong-pw@127.0.0.1:{server.port}/0")
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr
    assert f"error: {rows} updates never reached Redis" in result.stderr
    _assert_clean_stderr(result.stderr)
    assert "wrong-pw" not in result.stdout + result.stderr


def test_serve_exits_0_when_everything_was_written(small_feed, own_redis):
    feed_url, rows = small_feed
    result = _serve(feed_url, own_redis.url)
    assert result.returncode == 0, result.stderr
    assert f"accepted {rows}" in result.stdout
    _assert_clean_stderr(result.stderr)


def test_serve_never_prints_a_password_given_as_a_query_parameter(small_feed):
    server = OwnRedis(password="query-secret")
    server.start()
    try:
        result = _serve(small_feed[0], f"redis://127.0.0.1:{server.port}/0?password=query-secret")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert "query-secret" not in result.stdout + result.stderr
    assert "***" in result.stdout


def _config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "online.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_serve_stops_on_a_signal_with_its_report_and_a_status_line(
    small_feed, own_redis, tmp_path, stop_signal
):
    """Metrics on online.host:online.metrics_port; a status line each second; a signal stops it."""
    port = free_port()
    path = _config_file(tmp_path, f"online:\n  host: 127.0.0.2\n  metrics_port: {port}\n")
    command = [sys.executable, "-m", "python_jobs", "--config", path, "realtime", "serve"]
    command += ["--feed", small_feed[0], "--no-predict", "--status-every", "1"]
    process = subprocess.Popen(
        command,
        cwd=config.REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "REDIS_URL": own_redis.url},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("status:") for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            time.sleep(0.05)
        assert f"metrics on http://127.0.0.2:{port}/metrics" in "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.2:{port}/metrics", timeout=5) as response:
            assert b"realtime_messages_total" in response.read()
        process.send_signal(stop_signal)
        process.wait(timeout=30)
        reader.join(timeout=10)
        err = process.stderr.read()
    finally:
        process.kill()
    out = "".join(lines)
    assert process.returncode == 0, err
    assert "Online features" in out and "accepted 20" in out
    _assert_clean_stderr(err)
