"""The online service: WebSocket feed -> engine -> Redis store -> predictions, with metrics.

Ticks come off the intake queue in batches (whatever is waiting, up to ``max_batch``): the
engine updates every symbol of the batch in one compiled call and hands the rows to the store
writer (:mod:`python_jobs.realtime.writer`), which writes what has accumulated in one Redis
round trip on an asyncio connection, so the event loop goes on reading the feed while Redis
answers. The latency of each message, from the moment its frame was received to the moment
Redis acknowledged its features, goes to the histogram. Batching is what lets the service
keep up with thousands of messages per second while the latency of each stays in the
milliseconds: under light load a batch is one message.

Nothing stops the consumer: a batch whose handling fails unexpectedly is logged and counted
(``realtime_internal_errors``, and its updates as lost), and the next batch is handled. While
the store holds updates Redis refused, the writer retries them (with the store's back-off) so
they reach Redis when it is back even if no message arrives. At shutdown the writes under way
end, then what is left (queued, waiting for the writer, buffered) is written with the
blocking client. :meth:`lost` says what never reached Redis; the command line turns it into
its exit code.

With a sink (:mod:`python_jobs.realtime.sink`), every accepted point also goes to the store's
outbox with its features, and a background task moves the outbox into PostgreSQL in a worker
thread (the event loop never waits for the database); at shutdown the outbox is flushed, and
:meth:`unstored` says what is still waiting in it or was dropped from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from python_jobs.log import get_logger
from python_jobs.realtime.engine import OrderError, RealTimeFeatureEngine
from python_jobs.realtime.metrics import ServiceMetrics
from python_jobs.realtime.sink import PointSink
from python_jobs.realtime.store import RealTimeFeatureStore
from python_jobs.realtime.stream import StreamingDataProcessor, Tick
from python_jobs.realtime.writer import StoreWriter
from python_jobs.redact import redact

log = get_logger(__name__)

LATENCY_SAMPLE = 200_000
# Seconds between two refreshes of the gauges that cost a walk over the symbols.
HOUSEKEEPING_SECONDS = 1.0
# Seconds before a background part that failed unexpectedly is started again.
RESTART_SECONDS = 1.0
# Seconds the shutdown waits for the outbox to reach PostgreSQL.
STORE_FLUSH_SECONDS = 5.0
# Seconds the shutdown waits for the Redis writes under way before it writes the rest itself.
WRITER_FINISH_SECONDS = 2.0


class FeatureService:
    """Runs the intake, the engine, the store and (optionally) the prediction pipeline.

    Parameters
    ----------
    engine, store, processor
        The parts (see their modules).
    metrics : ServiceMetrics
        Where the counters go.
    predictor : AsyncPredictionPipeline, optional
        Gets every batch after it reached Redis.
    max_batch : int
        Most ticks handled in one engine call, and in one Redis write.
    status_every : float, optional
        Seconds between two status lines (rate, drops, p99, buffer) given to ``status``;
        None for none.
    status : callable, optional
        Receives each status line; default ``print``.
    sink : PointSink, optional
        Stores every accepted point in PostgreSQL, through the store's outbox.
    """

    def __init__(
        self,
        engine: RealTimeFeatureEngine,
        store: RealTimeFeatureStore,
        processor: StreamingDataProcessor,
        metrics: ServiceMetrics,
        predictor: Any = None,
        *,
        max_batch: int = 1000,
        status_every: float | None = None,
        status: Callable[[str], None] | None = None,
        sink: PointSink | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, got {max_batch}")
        self.engine = engine
        self.store = store
        self.processor = processor
        self.metrics = metrics
        self.predictor = predictor
        self.max_batch = max_batch
        self.status_every = status_every
        self.status = status or (lambda line: print(line, flush=True))
        self.sink = sink
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLE)
        self.observed = 0
        self.batches = 0
        self.internal_errors = 0
        self.failed_updates = 0
        self._errors_seen = 0
        self._evicted_seen = 0
        self._sink_seen = (0, 0, 0)
        self.writer = StoreWriter(
            store, self._written, self._write_failed, with_prices=sink is not None, max_write=max_batch
        )

    # -- one batch --------------------------------------------------------------------------

    def handle(self, batch: list[Tick]) -> None:
        """Features of a batch of ticks, written to Redis with the blocking client (what the
        final drain does; :meth:`run` writes through :attr:`writer`); latencies recorded."""
        self._write_now(*self._compute(batch))

    def _compute(self, batch: list[Tick]) -> tuple[list[Tick], np.ndarray]:
        """The ticks applied (all but those the engine refused) and their feature rows."""
        try:
            prices = [tick.price for tick in batch]
            return batch, self.engine.update_many([t.symbol for t in batch], [t.ts for t in batch], prices)
        except OrderError:
            # Only when the engine was warm-started past the feed: apply tick by tick.
            return self._one_by_one(batch)

    def _write_now(self, batch: list[Tick], rows: np.ndarray) -> None:
        symbols = [tick.symbol for tick in batch]
        stamps = [tick.ts for tick in batch]
        prices = None if self.sink is None else [tick.price for tick in batch]
        self.store.write_batch(symbols, stamps, rows, prices)
        self._written(batch, rows)

    def _written(self, batch: list[Tick], rows: np.ndarray) -> None:
        """What follows a write Redis answered (or the store buffered): latencies, predictions."""
        self._record(batch)
        if self.predictor is not None and len(batch):
            self.predictor.submit([tick.symbol for tick in batch], [tick.ts for tick in batch], rows)
        self.batches += 1

    def _write_failed(self, lost: int, exc: BaseException) -> None:
        self.failed_updates += lost
        self._internal_error("write failed; consuming goes on", exc, messages=lost)

    def _record(self, batch: list[Tick]) -> None:
        done = time.perf_counter()
        for tick in batch:
            latency = done - tick.received
            self.latencies.append(latency)
            self.metrics.latency.observe(latency)
        self.observed += len(batch)
        self.metrics.accepted.inc(len(batch))
        self._sync_store_metrics()

    def _one_by_one(self, batch: list[Tick]) -> tuple[list[Tick], np.ndarray]:
        kept, rows = [], []
        for tick in batch:
            try:
                rows.append(self.engine.update_many([tick.symbol], [tick.ts], [tick.price])[0])
                kept.append(tick)
            except OrderError as exc:
                self.processor._drop(exc.reason)
                self.processor.accepted -= 1
        width = len(self.engine.layout.names)
        return kept, np.array(rows).reshape(len(rows), width)

    def handle_safely(self, batch: list[Tick], rows: np.ndarray | None = None) -> None:
        """:meth:`handle` (given the ``rows``, its write alone), with any unexpected failure
        logged and counted instead of raised."""
        given = self.store.counters.updates
        try:
            if rows is None:
                self.handle(batch)
            else:
                self._write_now(batch, rows)
        except Exception as exc:
            # The updates the store never received are lost; count them for the exit code.
            self.failed_updates += max(0, len(batch) - (self.store.counters.updates - given))
            self._internal_error("batch failed; consuming goes on", exc, messages=len(batch))

    def _internal_error(self, event: str, exc: BaseException, **fields: Any) -> None:
        """Count and log (one line, no traceback) a failure nothing else handles."""
        self.internal_errors += 1
        self.metrics.internal_errors.inc()
        log.error(event, error=redact(f"{type(exc).__name__}: {exc}"), **fields)

    def _sync_store_metrics(self) -> None:
        counters = self.store.counters
        if counters.errors > self._errors_seen:
            self.metrics.redis_errors.inc(counters.errors - self._errors_seen)
            self._errors_seen = counters.errors
        self.metrics.buffer_fill.set(self.store.buffer_fill)
        self.metrics.buffer_dropped.set(counters.buffer_dropped)

    def _sync_sink_metrics(self) -> None:
        if self.sink is None:
            return
        counters = (self.metrics.points_stored, self.metrics.store_errors, self.metrics.outbox_trimmed)
        now = (self.sink.counters.stored, self.sink.counters.errors, self.store.counters.outbox_trimmed)
        for counter, new, old in zip(counters, now, self._sink_seen, strict=True):
            if new > old:
                counter.inc(new - old)
        self._sink_seen = now
        self.metrics.outbox_length.set(self.sink.outbox_length)

    def _sync_symbol_metrics(self) -> None:
        self.metrics.symbols.set(len(self.engine.keys))
        evicted = self.engine.evicted
        if evicted > self._evicted_seen:
            self.metrics.symbols_evicted.inc(evicted - self._evicted_seen)
            self._evicted_seen = evicted

    # -- tasks ------------------------------------------------------------------------------

    async def consume(self) -> None:
        async for batch in self.processor.batches(self.max_batch):
            try:
                computed = self._compute(batch)
            except Exception as exc:
                self.failed_updates += len(batch)
                self._internal_error("batch failed; consuming goes on", exc, messages=len(batch))
                continue
            await self.writer.put(*computed)

    async def keep_running(self, name: str, task: Callable[[], Any]) -> None:
        """Run ``task()`` (a coroutine function); after an unexpected failure, count it, log
        it and start it again a second later, so no part of the service dies silently."""
        while True:
            try:
                await task()
                return
            except Exception as exc:
                self._internal_error(f"{name} failed; restarting it", exc)
                await asyncio.sleep(RESTART_SECONDS)

    async def store_points(self) -> None:
        """Move the outbox into PostgreSQL, in a worker thread, every ``interval`` seconds (at
        the back-off while the database refuses); what an earlier run left goes first."""
        while True:
            await asyncio.to_thread(self.sink.store_pending)
            self._sync_sink_metrics()
            await asyncio.sleep(self.sink.wait_s())

    async def housekeeping(self) -> None:
        """Refresh the symbol gauges every second; a status line every ``status_every`` seconds."""
        last_line = time.monotonic()
        seen = (self.processor.received, self.observed)
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            self._sync_symbol_metrics()
            now = time.monotonic()
            if self.status_every and now - last_line >= self.status_every:
                self.status(self.status_line(now - last_line, *seen))
                last_line, seen = now, (self.processor.received, self.observed)

    def status_line(self, seconds: float, received_before: int = 0, observed_before: int = 0) -> str:
        """Rate, drops, p99 and buffer since the counts given (one line)."""
        counts = self.processor.counts()
        drops = sum(v for k, v in counts.items() if k.startswith("dropped_"))
        recent = min(self.observed - observed_before, len(self.latencies))
        window = list(itertools.islice(reversed(self.latencies), recent))
        p99 = f"{np.percentile(window, 99) * 1e3:.3f} ms" if window else "-"
        rate = (counts["received"] - received_before) / max(seconds, 1e-9)
        return (
            f"status: {rate:,.0f} msg/s, accepted {counts['accepted']:,}, dropped {drops:,}, "
            f"p99 {p99}, buffer {self.store.buffer_fill:,}, redis errors {self.store.counters.errors:,}, "
            f"lost {self.lost()['total']:,}{self._stored_part()}"
        )

    def _stored_part(self) -> str:
        if self.sink is None:
            return ""
        return f", stored {self.sink.counters.stored:,}, outbox {self.sink.outbox_length:,}"

    async def run(self, duration: float | None = None) -> None:
        """Run until ``duration`` seconds pass, :meth:`stop`, or the intake stops; then drain."""
        # What exists now (modules, the engine's arrays) lives as long as the service: out of
        # the collector's sight, a full collection no longer walks it between two messages.
        gc.collect()
        gc.freeze()
        reader = asyncio.ensure_future(self.processor.run())
        writer = asyncio.ensure_future(self.keep_running("store writer", self.writer.run))
        parts = {"consumer": self.consume, "housekeeping": self.housekeeping}
        if self.predictor is not None:
            parts["prediction pipeline"] = self.predictor.run
        if self.sink is not None:
            parts["point sink"] = self.store_points
        tasks = [reader, *(asyncio.ensure_future(self.keep_running(n, t)) for n, t in parts.items())]
        try:
            await asyncio.wait({reader}, timeout=duration)
        finally:
            self.processor.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    try:
                        await task
                    except Exception as exc:
                        # The intake ended on an error: reported, never left unretrieved.
                        self._internal_error("feed reader failed", exc)
            # The writes under way end (a cancelled one would be sent again); the rest is drained.
            await self.writer.finish(WRITER_FINISH_SECONDS)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self.drain()
            self.flush_points()

    def stop(self) -> None:
        """Ask :meth:`run` to finish (what SIGTERM and Ctrl-C call): it drains and returns."""
        self.processor.stop()

    def drain(self, timeout: float = 2.0) -> None:
        """Write what the writer still holds, handle what is still queued, and flush the
        store's buffer (for ``timeout`` seconds at most), with the blocking client."""
        for batch, rows in self.writer.take_all():
            self.handle_safely(batch, rows)
        pending = []
        while not self.processor.queue.empty():
            pending.append(self.processor.queue.get_nowait())
        for start in range(0, len(pending), self.max_batch):
            self.handle_safely(pending[start : start + self.max_batch])
        self.store.flush(timeout=timeout)
        self._sync_store_metrics()
        self._sync_symbol_metrics()

    def flush_points(self, timeout: float = STORE_FLUSH_SECONDS) -> None:
        """Store what the outbox holds (for ``timeout`` seconds at most); then close the sink."""
        if self.sink is None:
            return
        self.sink.flush(timeout)
        self.sink.close()
        self._sync_sink_metrics()

    # -- results ----------------------------------------------------------------------------

    def lost(self) -> dict[str, int]:
        """Updates that did not reach Redis: dropped from the full buffer, still buffered, or
        in a batch that failed; and their total."""
        parts = {
            "buffer_dropped": self.store.counters.buffer_dropped,
            "not_written": self.store.buffer_fill + self.writer.pending,
            "failed": self.failed_updates,
        }
        return {**parts, "total": sum(parts.values())}

    def unstored(self) -> dict[str, int]:
        """Accepted points not in PostgreSQL: waiting in the outbox (a later run stores them),
        dropped from the full outbox, and their total; all 0 without a sink."""
        if self.sink is None:
            parts = {"waiting": 0, "trimmed": 0}
        else:
            waiting = self.sink.pending()
            parts = {
                "waiting": self.sink.outbox_length if waiting is None else waiting,
                "trimmed": self.store.counters.outbox_trimmed,
            }
        return {**parts, "total": sum(parts.values())}

    def latency_summary(self) -> dict[str, float]:
        """p50, p99 and max of the recorded latencies, in milliseconds."""
        if not self.latencies:
            return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan"), "count": 0}
        values = np.fromiter(self.latencies, dtype=float) * 1e3
        return {
            "p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99)),
            "max_ms": float(values.max()),
            "count": len(values),
        }
