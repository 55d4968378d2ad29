"""``StreamingDataProcessor``: the WebSocket intake of the online service.

An asyncio client (``websockets``) reads JSON messages ``{"symbol", "ts", "price", "volume"}``
(or a JSON array of them in one frame) and puts the valid ones on a bounded queue. When the
queue is full the reader waits, so it stops reading the socket and TCP flow control slows the
sender: backpressure, never unbounded memory. Every message is counted once, as accepted or
as dropped for one reason:

- ``malformed``: not JSON, not an object, a missing or ill-typed field, an unparseable ``ts``;
- ``non_finite``: ``price`` (or ``volume``) NaN or infinite;
- ``duplicate``: the same ``ts`` as the symbol's newest accepted message;
- ``out_of_order``: older than the symbol's newest accepted message.

A lost connection is retried with exponential backoff (with jitter) until :meth:`stop`; the
per-symbol ordering state survives a reconnect, so a feed that replays its last messages
after resuming has them dropped as duplicates rather than applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import websockets

from python_jobs.realtime.engine import to_epoch

DROP_REASONS = ("malformed", "non_finite", "duplicate", "out_of_order")


@dataclass(frozen=True, slots=True)
class Tick:
    """One accepted message: symbol, epoch seconds, price, volume, and when it was received."""

    symbol: str
    ts: float
    price: float
    volume: float
    received: float


class StreamingDataProcessor:
    """Reads a WebSocket feed into a bounded queue of validated :class:`Tick` s.

    Parameters
    ----------
    url : str
        ``ws://`` or ``wss://`` address of the feed.
    queue_size : int
        Messages the queue holds before the reader waits (backpressure).
    backoff_min, backoff_max : float
        Seconds between reconnection attempts: doubling from the first to the second.
    metrics : ServiceMetrics, optional
        Counters to update as messages arrive.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 10_000,
        backoff_min: float = 0.05,
        backoff_max: float = 2.0,
        metrics: Any = None,
    ) -> None:
        self.url = url
        self.queue: asyncio.Queue[Tick] = asyncio.Queue(maxsize=queue_size)
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.metrics = metrics
        self.received = 0
        self.accepted = 0
        self.dropped: Counter[str] = Counter()
        self.connections = 0
        self._last_ts: dict[str, float] = {}
        self._stopping = asyncio.Event()

    # -- validation -------------------------------------------------------------------------

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1
        if self.metrics is not None:
            self.metrics.drops.labels(reason=reason).inc()

    def validate(self, message: Any, received: float) -> Tick | None:
        """A :class:`Tick`, or None after counting the reason it was dropped."""
        if not isinstance(message, dict):
            self._drop("malformed")
            return None
        symbol, ts, price = message.get("symbol"), message.get("ts"), message.get("price")
        volume = message.get("volume", 0.0)
        if not isinstance(symbol, str) or not symbol or ":" in symbol or len(symbol) > 64:
            self._drop("malformed")
            return None
        numbers_ok = all(
            isinstance(value, (int, float)) and not isinstance(value, bool) for value in (price, volume)
        )
        if not numbers_ok:
            self._drop("malformed")
            return None
        try:
            stamp = to_epoch(ts)
        except (TypeError, ValueError, OverflowError):
            self._drop("malformed")
            return None
        if not (math.isfinite(price) and math.isfinite(volume)):
            self._drop("non_finite")
            return None
        last = self._last_ts.get(symbol)
        if last is not None and stamp <= last:
            self._drop("duplicate" if stamp == last else "out_of_order")
            return None
        self._last_ts[symbol] = stamp
        self.accepted += 1
        return Tick(symbol, stamp, float(price), float(volume), received)

    def parse_frame(self, frame: str | bytes) -> list[Tick]:
        """Validate one WebSocket frame (one message or a JSON array of them)."""
        received = time.perf_counter()
        try:
            payload = json.loads(frame)
        except (ValueError, UnicodeDecodeError, RecursionError):
            payload = None
            messages: list[Any] = [None]
        else:
            messages = payload if isinstance(payload, list) and payload else [payload]
        self.received += len(messages)
        if self.metrics is not None:
            self.metrics.messages.inc(len(messages))
        ticks = []
        for message in messages:
            tick = self.validate(message, received)
            if tick is not None:
                ticks.append(tick)
        return ticks

    # -- connection -------------------------------------------------------------------------

    async def run(self) -> None:
        """Read the feed until :meth:`stop`, reconnecting with backoff after any failure."""
        delay = self.backoff_min
        while not self._stopping.is_set():
            try:
                async with websockets.connect(self.url, max_size=2**24, open_timeout=2) as socket:
                    self.connections += 1
                    if self.connections > 1 and self.metrics is not None:
                        self.metrics.reconnects.inc()
                    delay = self.backoff_min
                    await self._read(socket)
            except (TimeoutError, OSError, websockets.WebSocketException):
                pass
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay * (0.5 + random.random()))
            delay = min(self.backoff_max, delay * 2)

    async def _read(self, socket: Any) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                receive = asyncio.ensure_future(socket.recv())
                done, _ = await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    receive.cancel()
                    return
                for tick in self.parse_frame(receive.result()):
                    await self.queue.put(tick)
                if self.metrics is not None:
                    self.metrics.queue_depth.set(self.queue.qsize())
        finally:
            stop.cancel()

    def stop(self) -> None:
        self._stopping.set()

    async def batches(self, max_batch: int = 1000):
        """Yield lists of queued ticks: waits for one, then takes what is already there."""
        while True:
            first = await self.queue.get()
            batch = [first]
            while len(batch) < max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            if self.metrics is not None:
                self.metrics.queue_depth.set(self.queue.qsize())
            yield batch

    def counts(self) -> dict[str, int]:
        """Received, accepted, and dropped by reason (received = accepted + drops)."""
        return {
            "received": self.received,
            "accepted": self.accepted,
            **{f"dropped_{r}": self.dropped[r] for r in DROP_REASONS},
        }
