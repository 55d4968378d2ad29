"""The online service: WebSocket feed -> engine -> Redis store -> predictions, with metrics.

Ticks come off the intake queue in batches (whatever is waiting, up to ``max_batch``): the
engine updates every symbol of the batch in one compiled call, the store writes the batch in
one Redis round trip, and the latency of each message, from the moment its frame was received
to the moment its features are in Redis, goes to the histogram. Batching is what lets the
service keep up with thousands of messages per second while the latency of each stays in
the milliseconds: under light load a batch is one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import deque
from typing import Any

import numpy as np

from python_jobs.realtime.engine import OrderError, RealTimeFeatureEngine
from python_jobs.realtime.metrics import ServiceMetrics
from python_jobs.realtime.store import RealTimeFeatureStore
from python_jobs.realtime.stream import StreamingDataProcessor, Tick

LATENCY_SAMPLE = 200_000


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
        Most ticks handled in one engine call and one Redis write.
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
    ) -> None:
        self.engine = engine
        self.store = store
        self.processor = processor
        self.metrics = metrics
        self.predictor = predictor
        self.max_batch = max_batch
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLE)
        self.batches = 0
        self._errors_seen = 0

    def handle(self, batch: list[Tick]) -> None:
        """Features of a batch of ticks, written to Redis; latencies recorded."""
        symbols = [tick.symbol for tick in batch]
        stamps = [tick.ts for tick in batch]
        try:
            rows = self.engine.update_many(symbols, stamps, [tick.price for tick in batch])
        except OrderError:
            # Only when the engine was warm-started past the feed: apply tick by tick.
            batch, rows = self._one_by_one(batch)
            symbols = [tick.symbol for tick in batch]
            stamps = [tick.ts for tick in batch]
        self.store.write_batch(symbols, stamps, rows)
        done = time.perf_counter()
        for tick in batch:
            latency = done - tick.received
            self.latencies.append(latency)
            self.metrics.latency.observe(latency)
        self.metrics.accepted.inc(len(batch))
        self._sync_store_metrics()
        if self.predictor is not None and len(batch):
            self.predictor.submit(symbols, stamps, rows)
        self.batches += 1

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

    def _sync_store_metrics(self) -> None:
        counters = self.store.counters
        if counters.errors > self._errors_seen:
            self.metrics.redis_errors.inc(counters.errors - self._errors_seen)
            self._errors_seen = counters.errors
        self.metrics.buffer_fill.set(self.store.buffer_fill)
        self.metrics.buffer_dropped.set(counters.buffer_dropped)

    async def consume(self) -> None:
        async for batch in self.processor.batches(self.max_batch):
            self.handle(batch)

    async def run(self, duration: float | None = None) -> None:
        """Run until ``duration`` seconds pass or the intake stops, then drain what was received."""
        # What exists now (modules, the engine's arrays) lives as long as the service: out of
        # the collector's sight, a full collection no longer walks it between two messages.
        gc.collect()
        gc.freeze()
        reader = asyncio.ensure_future(self.processor.run())
        tasks = [reader, asyncio.ensure_future(self.consume())]
        if self.predictor is not None:
            tasks.append(asyncio.ensure_future(self.predictor.run()))
        try:
            await asyncio.wait({reader}, timeout=duration)
        finally:
            self.processor.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.drain()

    def drain(self) -> None:
        """Handle what is still queued and flush the store's buffer (best effort)."""
        pending = []
        while not self.processor.queue.empty():
            pending.append(self.processor.queue.get_nowait())
        for start in range(0, len(pending), self.max_batch):
            self.handle(pending[start : start + self.max_batch])
        self.store.flush(timeout=2.0)
        self._sync_store_metrics()

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
