"""Every point the online service accepts is stored in the raw table, once.

The service is built as ``realtime serve`` builds it (:func:`python_jobs.realtime.cli.build_service`)
under patched settings, with a Redis of the test's own and a schema of its own whose
``raw_lottery_draws.ds`` is a timestamp. In-process tests hand batches to the service and read
the table back; command-line tests run ``realtime serve`` against a ``realtime feed`` process,
kill it with SIGKILL mid-stream, or take the database away (:class:`PgProxy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

from python_jobs import config, settings
from python_jobs.cli import build_parser
from python_jobs.realtime import cli as realtime_cli
from python_jobs.realtime.feed import load_ticks, messages
from python_jobs.realtime.service import FeatureService
from python_jobs.realtime.sink import timestamp
from python_jobs.realtime.store import unescape
from python_jobs.realtime.stream import Tick
from python_jobs.tests.pg_proxy import PgProxy
from python_jobs.tests.redis_servers import OwnRedis, free_port
from python_jobs.tests.stream_points import raw_table, stored
from python_jobs.tests.test_realtime_service_ops import Feed, _until

UNREACHABLE_FEED = "ws://127.0.0.1:9"
BARS = config.RAW_DATA_DIR / "eurusd_h1.csv"
# The column that has a value from a series' first point: one Redis key per point.
EVERY_POINT = "hist_y_drawdown"


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def schema(pg_url: str, fresh_schema) -> str:
    name = fresh_schema("sink")
    raw_table(pg_url, name)
    return name


@contextlib.contextmanager
def patched(redis_url: str, **sections) -> Iterator[settings.Settings]:
    online = {"store_points": True, **sections.pop("online", {})}
    current = settings.load(overrides={"redis": {"url": redis_url}, "online": online, **sections})
    settings.patch(current)
    try:
        yield current
    finally:
        settings.patch(None)


def _service(feed: str = UNREACHABLE_FEED) -> FeatureService:
    args = build_parser().parse_args(
        ["realtime", "serve", "--feed", feed, "--no-predict", "--timeseries", EVERY_POINT]
    )
    return realtime_cli.build_service(args, args.feed)


def _ticks(rows: int, symbols: int = 2) -> list[Tick]:
    """The first ``rows`` bundled hourly bars as ``symbols`` interleaved series."""
    now = time.perf_counter()
    bars = load_ticks(BARS).head(rows)
    return [Tick(m["symbol"], m["ts"], m["price"], 0.0, now) for m in messages(bars, symbols)]


def _handle(service: FeatureService, ticks: list[Tick], size: int = 50) -> None:
    for start in range(0, len(ticks), size):
        service.handle(ticks[start : start + size])


def _as_points(frame) -> dict:
    return {(uid, ds): float(y) for uid, ds, y in zip(frame.unique_id, frame.ds, frame.y, strict=True)}


def _expected(ticks: list[Tick]) -> dict:
    return {(tick.symbol, timestamp(tick.ts)): tick.price for tick in ticks}


# -- in process -----------------------------------------------------------------------------------


def test_every_accepted_point_is_stored_once_with_its_time_and_price(pg_url, schema, own_redis):
    ticks = _ticks(300)
    # Times to the microsecond, and a symbol holding ':' (stored as sent, not escaped).
    ticks += [Tick("FX:EURUSD", 1.6e9 + i + i * 1e-6, 1.5 + i, 0.0, 0.0) for i in range(5)]
    with patched(own_redis.url, online={"store_batch": 64}):
        service = _service()
    _handle(service, ticks)
    assert service.sink.pending() == len(ticks)  # in the outbox, with their features
    service.flush_points()
    rows = stored(pg_url, schema)
    assert len(rows) == len(ticks) and service.sink.pending() == 0
    assert _as_points(rows) == _expected(ticks)
    assert rows.loc[rows.unique_id == "FX:EURUSD", "ds"].iloc[2].microsecond == 2
    assert rows.num.isna().all() and rows.co.isna().all()
    assert set(rows.source_file) == {"stream:default"} and set(rows.loto) == {"market"}
    assert service.unstored()["total"] == 0
    text = generate_latest(service.metrics.registry).decode()
    assert f"realtime_points_stored_total {float(len(ticks))}" in text
    assert "realtime_outbox_length 0.0" in text and "realtime_store_errors_total 0.0" in text


def test_the_loto_and_service_id_come_from_the_settings(pg_url, schema, own_redis):
    with patched(own_redis.url, online={"market_loto": "fx", "service_id": "east-1"}):
        service = _service()
    assert service.store.outbox_key == "feature:outbox:east-1"
    _handle(service, _ticks(10))
    service.flush_points()
    rows = stored(pg_url, schema, loto="fx")
    assert len(rows) == 20 and set(rows.source_file) == {"stream:east-1"}
    assert stored(pg_url, schema).empty


def test_store_points_off_writes_no_outbox(own_redis):
    with patched(own_redis.url, online={"store_points": False}):
        service = _service()
    _handle(service, _ticks(10))
    assert service.sink is None and service.unstored()["total"] == 0
    assert not own_redis.admin().exists("feature:outbox:default")


def test_replaying_the_feed_after_a_restart_duplicates_nothing(pg_url, schema, own_redis):
    ticks = _ticks(200)
    with patched(own_redis.url):
        first = _service()
        _handle(first, ticks)
        first.flush_points()
        before = stored(pg_url, schema)
        # A fresh engine (no warm start) accepts the whole feed again.
        second = _service()
        _handle(second, ticks, size=37)
        second.flush_points()
    after = stored(pg_url, schema)
    assert len(after) == len(ticks) == second.sink.counters.stored
    # Not one row rewritten: the same values leave loaded_at as it was.
    assert after.equals(before)


def test_a_replaced_bar_stores_its_final_value(pg_url, schema, own_redis):
    with patched(own_redis.url, online={"store_batch": 2}):
        service = _service()
    store, sink = service.store, service.sink
    rows = np.zeros((3, len(store.names)))
    # The same bar three times in one write, across two batches of the sink...
    store.write_batch(["A", "A", "A"], [3600.0, 7200.0, 7200.0], rows, prices=[1.0, 2.0, 3.0])
    assert sink.store_pending() == 3
    # ...and once more later.
    store.write_batch(["A"], [7200.0], rows[:1], prices=[4.0])
    assert sink.store_pending() == 1
    assert _as_points(stored(pg_url, schema)) == {
        ("A", timestamp(3600.0)): 1.0,
        ("A", timestamp(7200.0)): 4.0,
    }


def test_a_full_outbox_drops_its_oldest_points_and_counts_them(pg_url, schema, own_redis):
    with patched(own_redis.url, online={"outbox_max": 10}):
        service = _service()
    ticks = _ticks(15, symbols=1)
    _handle(service, ticks, size=4)
    assert service.sink.pending() == 10 and service.store.counters.outbox_trimmed == 5
    service.flush_points()
    assert _as_points(stored(pg_url, schema)) == _expected(ticks[5:])
    assert service.unstored() == {"waiting": 0, "trimmed": 5, "total": 5}
    assert "realtime_outbox_trimmed_total 5.0" in generate_latest(service.metrics.registry).decode()


def test_database_down_then_back_is_stored_by_itself_without_stalling_the_stream(pg_url, schema, own_redis):
    proxy = PgProxy(pg_url)
    proxy.up()

    async def scenario() -> FeatureService:
        async with Feed() as feed:
            with patched(own_redis.url, database={"url": proxy.url}, online={"store_interval_s": 0.05}):
                service = _service(f"ws://127.0.0.1:{feed.port}")
            running = asyncio.ensure_future(service.run(60))
            for ts in range(1, 6):
                feed.send("A", 3600.0 * ts)
            await _until(lambda: service.sink.counters.stored == 5)
            # A server that hangs: the sink's connection attempt waits in its thread...
            proxy.stall()
            for ts in range(6, 11):
                feed.send("A", 3600.0 * ts)
            await _until(lambda: service.sink.counters.errors >= 1 and proxy.held >= 1)
            for ts in range(11, 16):
                feed.send("A", 3600.0 * ts)
            # ...while every message still reaches Redis at once.
            await _until(lambda: service.store.counters.written == 15, timeout=1.0)
            await _until(lambda: service.sink.outbox_length == 10)
            assert len(stored(pg_url, schema)) == 5 and proxy.held >= 1
            proxy.up()
            # No new message: the outbox still reaches PostgreSQL.
            await _until(lambda: service.sink.counters.stored == 15, timeout=30)
            service.stop()
            await running
            return service

    try:
        service = asyncio.run(scenario())
    finally:
        proxy.down()
    assert sorted(stored(pg_url, schema).ds) == [timestamp(3600.0 * ts) for ts in range(1, 16)]
    assert service.unstored()["total"] == 0 and service.lost()["total"] == 0
    assert service.internal_errors == 0
    text = generate_latest(service.metrics.registry).decode()
    assert "realtime_points_stored_total 15.0" in text and "realtime_store_errors_total 0.0" not in text


# -- the command line -----------------------------------------------------------------------------


def _env(schema: str, redis_url: str, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "DBT_SCHEMA": schema,
        "LOTO_STORE_POINTS": "true",
    }


def _serve(
    feed_url: str, env: dict[str, str], *extra: str, seconds: str = "4"
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "python_jobs", *extra, "realtime", "serve", "--feed", feed_url]
    command += ["--duration", seconds, "--no-predict", "--metrics-port", "0", "--timeseries", EVERY_POINT]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=config.REPO_ROOT, env=env)


@contextlib.contextmanager
def _feed(path: Path, *extra: str) -> Iterator[str]:
    """A ``realtime feed`` process playing ``path`` once a client connects; its URL."""
    port = free_port()
    command = [sys.executable, "-m", "python_jobs", "realtime", "feed", "--file", str(path)]
    process = subprocess.Popen(
        [*command, "--port", str(port), *extra],
        cwd=config.REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _bars(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(BARS.read_text().splitlines()[: rows + 1]) + "\n")
    return path


def test_serve_exits_1_with_the_points_not_stored_and_the_next_run_stores_them(
    pg_url, schema, own_redis, tmp_path
):
    down = f"postgresql://feeder:pg-secret-pw@127.0.0.1:{free_port()}/nowhere"
    with _feed(_bars(tmp_path, 20)) as feed_url:
        result = _serve(feed_url, _env(schema, own_redis.url, down))
    assert result.returncode == 1, result.stderr
    assert "error: 20 accepted points not stored in PostgreSQL (20 waiting in the outbox" in result.stderr
    assert "never reached Redis" not in result.stderr and "Traceback" not in result.stderr
    assert "pg-secret-pw" not in result.stdout + result.stderr
    assert stored(pg_url, schema).empty
    # The next run (no feed at all) stores what the first one left, before anything else.
    again = _serve(UNREACHABLE_FEED, _env(schema, own_redis.url, pg_url), seconds="2")
    assert again.returncode == 0, again.stderr
    assert "20 points stored" in again.stdout
    assert len(stored(pg_url, schema)) == 20


def _points_in_redis(client, names_prefix: str) -> set[tuple[str, int]]:
    """(symbol, epoch ms) of every per-point key of the ``EVERY_POINT`` column."""
    found = set()
    for key in client.scan_iter(f"{names_prefix}*:{EVERY_POINT}:*", count=1000):
        symbol, _, stamp = key.decode()[len(names_prefix) :].split(":")
        found.add((unescape(symbol), int(stamp)))
    return found


def test_a_service_killed_mid_stream_then_restarted_stores_every_point_that_reached_redis_once(
    pg_url, schema, own_redis, tmp_path
):
    config_file = tmp_path / "sink.yaml"
    config_file.write_text("online:\n  store_interval_s: 0.1\n  store_batch: 100\n")
    env = _env(schema, own_redis.url, pg_url)
    command = [sys.executable, "-m", "python_jobs", "--config", str(config_file), "realtime", "serve"]
    command += ["--no-predict", "--metrics-port", "0", "--timeseries", EVERY_POINT, "--status-every", "0"]
    with _feed(_bars(tmp_path, 2000), "--symbols", "2", "--rate", "400") as feed_url:
        process = subprocess.Popen(
            [*command, "--feed", feed_url],
            cwd=config.REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while len(stored(pg_url, schema)) < 300:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    client = own_redis.admin()
    version = next(key for key in client.scan_iter("feature:names:*")).decode().rsplit(":", 1)[1]
    in_redis = _points_in_redis(client, f"feature:{version}:")
    left = client.xlen("feature:outbox:default")
    before = stored(pg_url, schema)
    assert 300 <= len(before) < len(in_redis) <= len(before) + left
    again = _serve(UNREACHABLE_FEED, env, "--config", str(config_file), seconds="2")
    assert again.returncode == 0, again.stderr
    rows = stored(pg_url, schema)
    keys = [(uid, round(_seconds(ds) * 1000)) for uid, ds in zip(rows.unique_id, rows.ds, strict=True)]
    assert len(keys) == len(set(keys)) and set(keys) == in_redis
    bars = load_ticks(BARS).head(2000)
    sent = {(m["symbol"], timestamp(m["ts"])): m["price"] for m in messages(bars, 2)}
    assert all(sent[point] == price for point, price in _as_points(rows).items())
    for symbol, group in rows.groupby("unique_id"):
        assert float(client.hget(f"feature:latest:{version}:{symbol}", "ts")) == _seconds(group.ds.max())


def _seconds(ds) -> float:
    """Epoch seconds of a naive UTC timestamp read from the table."""
    return (ds - timestamp(0.0)).total_seconds()
