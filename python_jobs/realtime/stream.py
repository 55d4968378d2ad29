"""``StreamingDataProcessor``: the WebSocket intake of the online service.

An asyncio client (``websockets``) reads JSON messages ``{"symbol", "ts", "price", "volume"}``
(or a JSON array of them in one frame; format in ``docs/FEED.md``, schema in
``docs/feed.schema.json``) and puts the valid ones on a bounded queue. When the queue is full
the reader waits, so it stops reading the socket and TCP flow control slows the sender:
backpressure, never unbounded memory. Every message is counted once, as accepted or as
dropped for one reason of :data:`DROP_REASONS`, so ``received == accepted + sum(drops)``:

- ``malformed``: not JSON, not an object, a missing or ill-typed field, a symbol that is empty,
  too long or not printable text, a ``ts`` that is not ISO-8601 or a number;
- ``non_finite``: ``price`` or ``volume`` NaN or infinite (``1e400`` and 400-digit integers too);
- ``duplicate``: the same ``ts`` as the symbol's newest accepted message, when ``on_same_ts``
  is ``drop``; with ``replace`` (the default) such a message is accepted as a :class:`Tick`
  whose ``replaces`` is true: the current bar updating, which replaces the symbol's newest
  point in the engine and in the raw table;
- ``out_of_order``: older than the symbol's newest accepted message;
- ``ts_out_of_range``: before ``ts_earliest`` or more than ``ts_max_ahead_s`` after now, so one
  absurd timestamp cannot hold a symbol's ordering state past every real message;
- ``oversized``: a frame over ``max_frame_bytes`` (the connection is closed with code 1009 and
  reopened; the frame counts as one message).

A frame that is a JSON array counts each element as a message; an empty array counts as one
malformed message, so every frame is counted at least once. Each reason's drops are logged
as a sample at most once per ``drop_log_interval_s``, with the number dropped since the last.

A lost connection is retried with exponential backoff (with jitter) until :meth:`stop`; the
``subscribe`` payload, when given, is sent on every connection. The per-symbol ordering state
survives a reconnect, so a feed that replays its last messages after resuming has them dropped
(the older ones as out of order; the newest, under ``replace``, replaces itself with the same
value) rather than applied twice; it holds at most ``max_symbols`` symbols, forgetting
the least recently updated one (counted in :attr:`evicted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import random
import reprlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import websockets

from python_jobs import settings
from python_jobs.log import get_logger
from python_jobs.realtime.messages import epoch_seconds, number

log = get_logger(__name__)

DROP_REASONS = ("malformed", "non_finite", "duplicate", "out_of_order", "ts_out_of_range", "oversized")

# Longest symbol accepted (characters); the store escapes what a Redis key cannot hold as is.
MAX_SYMBOL_CHARS = 64
# Characters of a dropped message shown in its log sample.
SAMPLE_CHARS = 200
# WebSocket close codes sent by the client when it refuses a frame (RFC 6455, section 7.4.1).
_CLOSE_TOO_BIG = 1009
_CLOSE_INVALID_DATA = 1007

_sample_repr = reprlib.Repr()
_sample_repr.maxlevel = 3
_sample_repr.maxdict = _sample_repr.maxlist = 8
_sample_repr.maxstring = _sample_repr.maxother = 80


@dataclass(frozen=True, slots=True)
class Tick:
    """One accepted message: symbol, epoch seconds, price, volume, and when it was received.

    ``replaces`` is true when the message has the same ``ts`` as its symbol's newest accepted
    one, which it replaces (``on_same_ts`` ``replace``): a consumer that stores the points
    overwrites the stored one.
    """

    symbol: str
    ts: float
    price: float
    volume: float
    received: float
    replaces: bool = False


def _sample(message: Any) -> str:
    """At most :data:`SAMPLE_CHARS` characters of a dropped message, for its log line."""
    if isinstance(message, (str, bytes)):
        text = repr(message[:SAMPLE_CHARS])
    else:
        try:
            text = _sample_repr.repr(message)
        except (ValueError, RecursionError):  # an integer past str()'s digit limit
            text = f"<{type(message).__name__}>"
    return text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 3] + "..."


def _online_limits() -> dict[str, float]:
    online = settings.get().online
    earliest = dt.datetime.combine(online.ts_earliest, dt.time(), tzinfo=dt.UTC)
    return {
        "max_frame_bytes": online.max_frame_bytes,
        "ts_earliest": earliest.timestamp(),
        "ts_max_ahead_s": online.ts_max_ahead_days * 86400.0,
        "max_symbols": online.max_symbols,
        "on_same_ts": online.on_same_ts,
    }


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
    max_frame_bytes : int, optional
        Largest frame read; a larger one is dropped as ``oversized`` and the connection reopened.
    ts_earliest : float, optional
        Earliest timestamp accepted, epoch seconds.
    ts_max_ahead_s : float, optional
        How far past the present a timestamp may be, seconds.
    max_symbols : int, optional
        Symbols whose ordering state is held (least recently updated forgotten past it).
    subscribe : str, optional
        JSON text sent on every connection, before reading (a feed's subscription request).
    drop_log_interval_s : float
        Least seconds between two logged samples of one drop reason.
    on_same_ts : {"replace", "drop"}, optional
        A message at its symbol's newest ``ts``: accepted as a replacing :class:`Tick`, or
        dropped as ``duplicate``.

    The limits left out (and ``on_same_ts``) are read from ``settings.get().online``.

    Attributes
    ----------
    replaced : int
        Messages accepted as replacing their symbol's newest point.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 10_000,
        backoff_min: float = 0.05,
        backoff_max: float = 2.0,
        metrics: Any = None,
        max_frame_bytes: int | None = None,
        ts_earliest: float | None = None,
        ts_max_ahead_s: float | None = None,
        max_symbols: int | None = None,
        subscribe: str | None = None,
        drop_log_interval_s: float = 10.0,
        on_same_ts: str | None = None,
    ) -> None:
        given = {
            "max_frame_bytes": max_frame_bytes,
            "ts_earliest": ts_earliest,
            "ts_max_ahead_s": ts_max_ahead_s,
            "max_symbols": max_symbols,
            "on_same_ts": on_same_ts,
        }
        if None in given.values():
            defaults = _online_limits()
            given = {name: defaults[name] if value is None else value for name, value in given.items()}
        if subscribe is not None:
            try:
                json.loads(subscribe)
            except ValueError as exc:
                raise ValueError(f"the subscribe payload is not JSON: {exc}") from None
        self.url = url
        self.queue: asyncio.Queue[Tick] = asyncio.Queue(maxsize=queue_size)
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.metrics = metrics
        self.max_frame_bytes = int(given["max_frame_bytes"])
        self.ts_earliest = float(given["ts_earliest"])
        self.ts_max_ahead_s = float(given["ts_max_ahead_s"])
        self.max_symbols = int(given["max_symbols"])
        if given["on_same_ts"] not in ("replace", "drop"):
            raise ValueError(f"on_same_ts must be replace or drop, got {given['on_same_ts']!r}")
        self.replace_same_ts = given["on_same_ts"] == "replace"
        self.subscribe = subscribe
        self.drop_log_interval_s = drop_log_interval_s
        self.received = 0
        self.accepted = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.connections = 0
        self.evicted = 0
        self.replaced = 0
        # Newest accepted ts per symbol, least recently updated first.
        self._last_ts: OrderedDict[str, float] = OrderedDict()
        self._stopping = asyncio.Event()
        self._clock = time.monotonic
        self._next_sample: dict[str, float] = {}
        self._sampled: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)

    # -- validation -------------------------------------------------------------------------

    def _drop(self, reason: str, message: Any = None) -> None:
        self.dropped[reason] += 1
        if self.metrics is not None:
            self.metrics.drops.labels(reason=reason).inc()
        now = self._clock()
        if now >= self._next_sample.get(reason, -math.inf):
            self._next_sample[reason] = now + self.drop_log_interval_s
            since, self._sampled[reason] = self.dropped[reason] - self._sampled[reason], self.dropped[reason]
            log.warning("feed message dropped", reason=reason, dropped=since, sample=_sample(message))

    def validate(self, message: Any, received: float, now: float | None = None) -> Tick | None:
        """A :class:`Tick`, or None after counting the reason it was dropped.

        ``now`` (epoch seconds, default the clock) bounds how far ahead ``ts`` may be.
        """
        if type(message) is not dict:
            self._drop("malformed", message)
            return None
        symbol = message.get("symbol")
        # isprintable() refuses control characters and lone surrogates (not encodable as UTF-8).
        if type(symbol) is not str or not 0 < len(symbol) <= MAX_SYMBOL_CHARS or not symbol.isprintable():
            self._drop("malformed", message)
            return None
        try:
            price = number(message.get("price"))
            volume = number(message.get("volume", 0.0))
            stamp = epoch_seconds(message.get("ts"))
        except ValueError:
            self._drop("malformed", message)
            return None
        if not (math.isfinite(price) and math.isfinite(volume)):
            self._drop("non_finite", message)
            return None
        if not self.ts_earliest <= stamp <= (time.time() if now is None else now) + self.ts_max_ahead_s:
            self._drop("ts_out_of_range", message)
            return None
        return self._in_order(symbol, stamp, price, volume, received, message)

    def _in_order(
        self, symbol: str, stamp: float, price: float, volume: float, received: float, message: Any
    ) -> Tick | None:
        last_ts = self._last_ts
        last = last_ts.get(symbol)
        replaces = False
        if last is not None:
            if stamp <= last:
                if stamp < last:
                    self._drop("out_of_order", message)
                    return None
                if not self.replace_same_ts:
                    self._drop("duplicate", message)
                    return None
                replaces = True
                self.replaced += 1
            last_ts.move_to_end(symbol)
        elif len(last_ts) >= self.max_symbols:
            last_ts.popitem(last=False)
            self.evicted += 1
        last_ts[symbol] = stamp
        self.accepted += 1
        return Tick(symbol, stamp, price, volume, received, replaces)

    def forget(self, symbol: str) -> None:
        """Drop ``symbol``'s ordering state (its next message is accepted whatever its ts)."""
        self._last_ts.pop(symbol, None)

    @property
    def symbols_held(self) -> int:
        """Symbols whose ordering state is held."""
        return len(self._last_ts)

    def parse_frame(self, frame: str | bytes) -> list[Tick]:
        """Validate one WebSocket frame (one message or a JSON array of them); never raises."""
        received = time.perf_counter()
        now = time.time()
        try:
            payload = json.loads(frame)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            self._count(1)
            self._drop("malformed", frame)
            return []
        messages = payload if type(payload) is list and payload else [payload]
        self._count(len(messages))
        ticks = []
        for message in messages:
            try:
                tick = self.validate(message, received, now)
            except Exception as exc:  # a message the checks above did not foresee: dropped, logged
                log.error("feed message unreadable", error=type(exc).__name__, sample=_sample(message))
                self._drop("malformed", message)
                continue
            if tick is not None:
                ticks.append(tick)
        return ticks

    def _count(self, messages: int) -> None:
        self.received += messages
        if self.metrics is not None:
            self.metrics.messages.inc(messages)

    # -- connection -------------------------------------------------------------------------

    async def run(self) -> None:
        """Read the feed until :meth:`stop`, reconnecting with backoff after any failure."""
        delay = self.backoff_min
        while not self._stopping.is_set():
            try:
                async with websockets.connect(
                    self.url, max_size=self.max_frame_bytes, open_timeout=2
                ) as socket:
                    self.connections += 1
                    if self.connections > 1 and self.metrics is not None:
                        self.metrics.reconnects.inc()
                    delay = self.backoff_min
                    if self.subscribe is not None:
                        await socket.send(self.subscribe)
                    await self._read_until_stopped(socket)
            except websockets.ConnectionClosed as exc:
                self._count_refused_frame(exc)
            except (TimeoutError, OSError, websockets.WebSocketException):
                pass
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay * (0.5 + random.random()))
            delay = min(self.backoff_max, delay * 2)

    def _count_refused_frame(self, closed: websockets.ConnectionClosed) -> None:
        """Count the frame this client closed the connection over: too big, or not UTF-8 text."""
        code = closed.sent.code if closed.sent is not None else None
        reason = {_CLOSE_TOO_BIG: "oversized", _CLOSE_INVALID_DATA: "malformed"}.get(code)
        if reason is not None:
            self._count(1)
            self._drop(reason, f"frame refused: {closed.sent.reason}")

    async def _read_until_stopped(self, socket: Any) -> None:
        """Read until the connection ends (its exception raised here) or :meth:`stop`."""
        reader = asyncio.ensure_future(self._read(socket))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            reader.cancel()
            # Always awaited, so its exception is raised here rather than reported as never retrieved.
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, socket: Any) -> None:
        queue, metrics = self.queue, self.metrics
        while True:
            for tick in self.parse_frame(await socket.recv()):
                await queue.put(tick)
            if metrics is not None:
                metrics.queue_depth.set(queue.qsize())

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
