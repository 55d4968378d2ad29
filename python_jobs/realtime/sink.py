"""``PointSink``: every point the online service accepted, stored in the raw table.

The service appends each accepted point to an outbox stream in Redis in the same script call
that writes its features (:class:`~python_jobs.realtime.store.RealTimeFeatureStore`, key
``{prefix}:outbox:{service_id}``), so a point is in the outbox exactly when its features are in
Redis. The sink reads the outbox from its head, up to ``online.store_batch`` points at a time,
writes them to ``raw_lottery_draws`` in one transaction (COPY into a temporary table, then an
upsert), and deletes from the outbox only what was committed. Delivery is at least once:

- a service killed (even ``kill -9``) between the commit and the delete leaves the points in the
  outbox; the next run stores them again, which changes nothing, because the upsert is keyed on
  ``(loto, unique_id, ds)`` and rewrites a row only when its value differs;
- the database down: the points wait in the outbox (bounded by ``online.outbox_max``, the
  oldest dropped and counted), and the sink retries with a back-off until it is back.

A row is ``loto`` = ``online.market_loto``, ``unique_id`` = the symbol as sent, ``ds`` = the
tick's time as a naive UTC timestamp (microseconds), ``y`` = the price, ``num`` and ``co``
NULL, ``source_file`` = ``stream:{service_id}``. The last accepted value of a timestamp is the
one stored: the intake accepts a second value for a timestamp only as a replacement of a live
bar, and the stored value must be the one the online features were last computed from (a
restarted service replaying its feed stores the same values, so nothing changes).

Every call here blocks (Redis and PostgreSQL, synchronously): the service runs it in a worker
thread, never on its event loop. One lock serialises the calls, so the final flush at shutdown
waits for a pass still running in its thread rather than writing beside it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
from psycopg import sql

from python_jobs import config, db
from python_jobs.ingest.load import ensure_tables
from python_jobs.log import get_logger
from python_jobs.redact import redact

log = get_logger(__name__)

#: Seconds a connection attempt may take, so a database that does not answer (rather than
#: refusing) cannot hold the shutdown's flush past its timeout.
CONNECT_TIMEOUT_S = 5
#: First and longest wait after a failed pass; doubled after each failure.
RETRY_MIN_SECONDS = 0.25
RETRY_MAX_SECONDS = 10.0
#: Most batches one pass stores before it hands back (so the metrics move during a backlog).
PASS_BATCHES = 20
_EPOCH = dt.datetime(1970, 1, 1)
_STAGE = "_stream_points"


class SinkError(RuntimeError):
    """The raw table cannot take the points (for a reason a retry does not fix by itself)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One accepted point: its outbox entry id, symbol, epoch seconds and price."""

    entry: bytes
    symbol: str
    ts: float
    price: float


@dataclass
class SinkCounters:
    """What the sink did: points stored (committed and deleted from the outbox), batches,
    failed passes, and the last error's kind."""

    stored: int = 0
    batches: int = 0
    errors: int = 0
    last_error: str = ""


def timestamp(ts: float) -> dt.datetime:
    """The naive UTC timestamp, to the microsecond, of epoch seconds ``ts``.

    >>> timestamp(1492592400.25)
    datetime.datetime(2017, 4, 19, 9, 0, 0, 250000)
    """
    return _EPOCH + dt.timedelta(microseconds=round(ts * 1e6))


def latest_per_key(points: Sequence[Point]) -> list[Point]:
    """One point per (symbol, timestamp): the last given (a replaced bar's final value).

    An upsert cannot touch one row twice in a statement, and the last accepted value is the
    one the online features were computed from.
    """
    kept: dict[tuple[str, dt.datetime], Point] = {}
    for point in points:
        kept[(point.symbol, timestamp(point.ts))] = point
    return list(kept.values())


def parse_entry(entry: bytes, fields: dict[bytes, bytes]) -> Point | None:
    """The point of one outbox entry, or None for an entry that holds no valid point."""
    try:
        point = Point(entry, fields[b"s"].decode("utf-8"), float(fields[b"t"]), float(fields[b"p"]))
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
    if not (math.isfinite(point.ts) and math.isfinite(point.price)):
        return None
    return point


class PointSink:
    """Moves the points of an outbox stream in Redis into the raw table of PostgreSQL.

    Parameters
    ----------
    client : redis.Redis
        The Redis holding the outbox.
    outbox_key : str
        The stream (:attr:`RealTimeFeatureStore.outbox_key`).
    loto : str
        The ``loto`` of every row (``online.market_loto``).
    source : str
        The ``source_file`` of every row (``stream:{service_id}``).
    batch : int
        Most points per transaction (``online.store_batch``).
    interval : float
        Seconds between two passes while the database takes the points
        (``online.store_interval_s``).
    url : str, optional
        The database (``database.url``); default the embedded server (started on first use,
        in the worker thread).
    schema : str, optional
        Schema of the raw table (``database.dbt_schema``); default the settings'.
    """

    def __init__(
        self,
        client: redis.Redis,
        outbox_key: str,
        *,
        loto: str,
        source: str,
        batch: int,
        interval: float,
        url: str | None = None,
        schema: str | None = None,
    ) -> None:
        if batch < 1 or not interval > 0:
            raise ValueError(f"batch and interval must be positive, got {batch} and {interval}")
        self.client = client
        self.outbox_key = outbox_key
        self.loto = loto
        self.source = source
        self.batch = batch
        self.interval = interval
        self.url = url
        self.schema = schema or config.target_schema()
        self.counters = SinkCounters()
        self.outbox_length = 0
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._delay = RETRY_MIN_SECONDS
        self._failing = False

    # -- one pass -------------------------------------------------------------------------

    def store_pending(self, max_batches: int = PASS_BATCHES) -> int:
        """Store the outbox's points, a batch per transaction, until it is empty (or
        ``max_batches`` batches); return the points stored. A failure is logged (once per
        outage), counted, and ends the pass: the points stay in the outbox."""
        stored = 0
        with self._lock:
            try:
                for _ in range(max_batches):
                    done, more = self._store_batch()
                    stored += done
                    if not more:
                        break
            except (psycopg.Error, redis.RedisError, OSError, SinkError, db.DatabaseError) as exc:
                self._failed(exc)
            else:
                self._recovered()
        self.pending()
        return stored

    def _store_batch(self) -> tuple[int, bool]:
        """One batch from the outbox's head to the table; (points stored, whether more may wait)."""
        found = self.client.xrange(self.outbox_key, count=self.batch)
        if not found:
            return 0, False
        points = [point for entry, fields in found if (point := parse_entry(entry, fields)) is not None]
        if points:
            self._write(latest_per_key(points))
        # Deleted only after the commit: a crash before this line stores them again, harmlessly.
        self.client.xdel(self.outbox_key, *(entry for entry, _ in found))
        self.counters.stored += len(points)
        self.counters.batches += 1
        return len(points), len(found) == self.batch

    def _write(self, points: Sequence[Point]) -> None:
        conn = self._connection()
        try:
            with conn.transaction():
                with conn.cursor().copy(
                    sql.SQL("copy {} (unique_id, ds, y) from stdin").format(sql.Identifier(_STAGE))
                ) as copy:
                    for point in points:
                        copy.write_row((point.symbol, timestamp(point.ts), repr(point.price)))
                conn.execute(self._upsert, {"loto": self.loto, "source": self.source})
        except BaseException:
            self._close()
            raise

    @property
    def _upsert(self) -> sql.Composed:
        return sql.SQL(
            "insert into {draws} as target (loto, unique_id, ds, y, num, co, source_file) "
            "select %(loto)s, unique_id, ds, y, null, null, %(source)s from {stage} "
            "on conflict (loto, unique_id, ds) do update "
            "set y = excluded.y, source_file = excluded.source_file, loaded_at = now() "
            "where target.y is distinct from excluded.y"
        ).format(draws=db.qualified(config.RAW_DRAWS_TABLE, self.schema), stage=sql.Identifier(_STAGE))

    def _connection(self) -> psycopg.Connection:
        """The open connection, or a new one with the raw table checked (and made if missing)."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        url = self.url or db.database_url()
        conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, application_name="loto_features_sink")
        try:
            with conn.transaction():
                db.ensure_schema(conn, self.schema)
                ensure_tables(conn)
                self._check_grain(conn)
                conn.execute(
                    sql.SQL(
                        "create temporary table {} (unique_id text, ds timestamp, y numeric) "
                        "on commit delete rows"
                    ).format(sql.Identifier(_STAGE))
                )
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _check_grain(self, conn: psycopg.Connection) -> None:
        """Refuse a raw table whose ``ds`` is a date: intraday points would collapse onto days."""
        row = conn.execute(
            "select data_type from information_schema.columns "
            "where table_schema = %s and table_name = %s and column_name = 'ds'",
            (self.schema, config.RAW_DRAWS_TABLE),
        ).fetchone()
        if row is None or not str(row[0]).startswith("timestamp"):
            kind = "missing" if row is None else row[0]
            raise SinkError(
                f"{self.schema}.{config.RAW_DRAWS_TABLE}.ds is {kind}, not a timestamp: "
                "points with a time of day cannot be stored in it"
            )

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            # Once per outage, not once per pass: the counters say how often.
            log.warning(
                "storing points failed; they wait in the outbox",
                outbox=self.outbox_key,
                error=redact(f"{type(exc).__name__}: {exc}"),
            )
            self._failing = True
        else:
            self._delay = min(RETRY_MAX_SECONDS, self._delay * 2)
        self.counters.errors += 1
        self.counters.last_error = type(exc).__name__
        self._close()

    def _recovered(self) -> None:
        if self._failing:
            log.info("storing points resumed", outbox=self.outbox_key, errors=self.counters.errors)
        self._failing = False
        self._delay = RETRY_MIN_SECONDS

    # -- scheduling and shutdown ----------------------------------------------------------

    def wait_s(self) -> float:
        """Seconds before the next pass: the interval, or the back-off after a failure."""
        return self._delay if self._failing else self.interval

    def pending(self) -> int | None:
        """Points in the outbox now, or None when Redis does not answer."""
        try:
            self.outbox_length = int(self.client.xlen(self.outbox_key))
        except (redis.RedisError, OSError):
            return None
        return self.outbox_length

    def flush(self, timeout: float) -> bool:
        """Store until the outbox is empty or ``timeout`` seconds pass; True when it is empty."""
        deadline = time.monotonic() + timeout
        while True:
            self.store_pending()
            if self.pending() == 0:
                return True
            if time.monotonic() + self.wait_s() > deadline:
                return False
            time.sleep(self.wait_s())

    def close(self) -> None:
        """Close the database connection (after the last pass)."""
        with self._lock:
            self._close()

    def describe(self) -> dict[str, Any]:
        """Counters and the outbox length, for the end-of-run report."""
        return {
            "stored": self.counters.stored,
            "errors": self.counters.errors,
            "outbox": self.outbox_length,
        }
