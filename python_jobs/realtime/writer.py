"""``StoreWriter``: the online service's Redis writes, without the event loop waiting on them.

The consumer computes a batch's features, hands them to :meth:`StoreWriter.put` and goes back
to the intake at once; one task writes what has accumulated, in one script call, on a
:mod:`redis.asyncio` connection of its own, while the event loop goes on reading the feed.
A slow answer (a busy Redis, a round trip that waits for the CPU, a connection attempt that
waits out its timeout while Redis is unreachable) holds up only the updates it carries: the
intake keeps reading and the engine keeps computing, and the frames are stamped as they
arrive rather than when the loop gets back to them.

- Order: one write is in flight at a time, so updates reach Redis in the order they came (a
  symbol's latest hash is never overwritten by an older vector). What arrives during a write
  goes out together in the next (coalesced), up to ``max_write`` updates a call.
- Bounded: at most ``max_pending`` updates wait; past it :meth:`put` waits for room, which
  stops the consumer, fills the intake queue and slows the feed through TCP (backpressure).
  Nothing is dropped here.
- Same guarantees as a blocking write: the write is the store's own steps
  (:meth:`RealTimeFeatureStore.write_steps`), so the points reach the outbox in the same
  script call as their features, and while Redis refuses writes the updates go to the
  store's bounded buffer (the oldest dropped and counted) with the store's back-off. While
  the buffer holds updates the writer retries it when the back-off allows, even when no
  message arrives.
- Latency: ``written`` gets each group once Redis has acknowledged it (or the store has
  buffered it), so a message's latency runs from its frame's receipt to that answer.
- Shutdown: :meth:`finish` lets the writes under way end; a write interrupted anyway leaves
  its updates in the store's buffer and :meth:`take_all` hands over what never started, for
  the blocking final flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import redis
import redis.asyncio
from hiredis import pack_command

from python_jobs.realtime.store import FLUSH_CHUNK, WRITE_SCRIPT, RealTimeFeatureStore, Steps
from python_jobs.realtime.stream import Tick

#: Updates waiting for their write, at most, before :meth:`StoreWriter.put` waits for room.
MAX_PENDING = 10_000
#: What a blocking connection's settings become in a :mod:`redis.asyncio` connection.
_ASYNC_SETTINGS = (
    "host", "port", "path", "db", "username", "password", "credential_provider", "client_name",
    "socket_timeout", "socket_connect_timeout", "socket_keepalive", "protocol", "ssl_keyfile",
    "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data", "ssl_check_hostname",
    "ssl_min_version", "ssl_ciphers",
)  # fmt: skip


def async_twin(client: redis.Redis) -> redis.asyncio.Connection:
    """A :mod:`redis.asyncio` connection to the server ``client`` talks to (TCP, TLS or a unix
    socket, the embedded Redis included), with its database, credentials and timeouts."""
    pool = client.connection_pool
    kind = getattr(redis.asyncio.connection, pool.connection_class.__name__, redis.asyncio.Connection)
    given = pool.connection_kwargs
    return kind(**{name: given[name] for name in _ASYNC_SETTINGS if name in given})


class AsyncConnection:
    """One :mod:`redis.asyncio` connection, used directly (no pool, no client layer: a write
    costs its encoding and its round trip), that carries out a store's write steps.

    Commands are packed by hiredis (C), as the blocking client packs them; redis.asyncio
    packs in Python, about 0.1 ms for a write of ten symbols' keys.
    """

    def __init__(self, connection: redis.asyncio.Connection) -> None:
        self.connection = connection
        self._sha = hashlib.sha1(WRITE_SCRIPT.encode()).hexdigest()

    @classmethod
    def to(cls, store: RealTimeFeatureStore) -> AsyncConnection:
        """A connection of its own to the store's Redis (bound to the running event loop;
        it connects on its first call and again after an error)."""
        return cls(async_twin(store.client))

    async def call(self, *args: Any) -> Any:
        """One command and its reply; a connection left out of step (a lost socket, a
        timeout, a cancellation) is closed, so the next call starts on a fresh one."""
        try:
            await self.connection.send_packed_command(pack_command(args), check_health=False)
            return await self.connection.read_response()
        except redis.ResponseError:
            raise  # an error reply: the connection is in step
        except BaseException:
            await self.connection.disconnect(nowait=True)
            raise

    async def script(self, keys: list, args: list) -> Any:
        try:
            return await self.call("EVALSHA", self._sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await self.call("SCRIPT", "LOAD", WRITE_SCRIPT)
            return await self.call("EVALSHA", self._sha, len(keys), *keys, *args)

    async def run(self, steps: Steps) -> Any:
        """Carry out a store's ``steps``: each Redis call they yield is awaited here, its reply
        (or its error) handed back to them; what they return is returned."""
        try:
            call = next(steps)
            while True:
                kind, first, second = call
                try:
                    if kind == "mset":
                        reply = await self.call("MSET", *(part for pair in first.items() for part in pair))
                    else:
                        reply = await self.script(first, second)
                except Exception as exc:
                    call = steps.throw(exc)
                else:
                    call = steps.send(reply)
        except StopIteration as finished:
            return finished.value

    async def close(self) -> None:
        await self.connection.disconnect()


class StoreWriter:
    """Writes the updates :meth:`put` gives to the store, one coalesced call at a time.

    Parameters
    ----------
    store : RealTimeFeatureStore
        Where the updates go (its buffer, back-off and counters apply).
    written : callable
        Called with ``(ticks, rows)`` once Redis answered a write of them (or the store
        buffered them).
    failed : callable
        Called with ``(updates lost, error)`` when a write fails for a reason that is not
        Redis refusing it (those the store buffers).
    with_prices : bool
        Give the ticks' prices to the store, which appends the points to its outbox.
    max_pending : int
        Updates waiting at most before :meth:`put` waits for room.
    max_write : int
        Updates in one write at most.
    """

    def __init__(
        self,
        store: RealTimeFeatureStore,
        written: Callable[[list[Tick], np.ndarray], None],
        failed: Callable[[int, BaseException], None],
        *,
        with_prices: bool = False,
        max_pending: int = MAX_PENDING,
        max_write: int = FLUSH_CHUNK,
    ) -> None:
        if max_pending < 1 or max_write < 1:
            raise ValueError(f"max_pending and max_write must be positive, got {max_pending} and {max_write}")
        self.store = store
        self.written = written
        self.failed = failed
        self.with_prices = with_prices
        self.max_pending = max_pending
        self.max_write = max_write
        self._pending: deque[tuple[list[Tick], np.ndarray]] = deque()
        #: Updates waiting for their write, and those in the write under way.
        self.pending = 0
        self.writing = 0
        self._ready: asyncio.Event | None = None
        self._room: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        # Made for the running loop, so each event loop (one per asyncio.run) has its own.
        loop = asyncio.get_running_loop()
        if self._ready is None or self._room is None or self._loop is not loop:
            self._ready, self._room, self._loop = asyncio.Event(), asyncio.Event(), loop
        return self._ready, self._room

    async def put(self, ticks: list[Tick], rows: np.ndarray) -> None:
        """Queue one batch's updates for writing; waits while ``max_pending`` are waiting."""
        ready, room = self._events()
        try:
            while self.pending >= self.max_pending:
                room.clear()
                await room.wait()
        finally:
            # Queued even when cancelled while waiting (the shutdown): computed is never lost.
            self._pending.append((ticks, rows))
            self.pending += len(ticks)
            ready.set()

    def take_all(self) -> list[tuple[list[Tick], np.ndarray]]:
        """Every batch waiting (none of it written), emptied out of the writer."""
        taken = list(self._pending)
        self._pending.clear()
        self.pending = 0
        return taken

    def _take(self) -> tuple[list[Tick], np.ndarray]:
        """Whole batches from the head, up to ``max_write`` updates (one batch at least)."""
        parts = [self._pending.popleft()]
        size = len(parts[0][0])
        while self._pending and size + len(self._pending[0][0]) <= self.max_write:
            parts.append(self._pending.popleft())
            size += len(parts[-1][0])
        self.pending -= size
        self._events()[1].set()
        if len(parts) == 1:
            return parts[0]
        return [tick for ticks, _ in parts for tick in ticks], np.concatenate([rows for _, rows in parts])

    async def run(self) -> None:
        """Write what :meth:`put` gives until cancelled; retry the store's buffer when due."""
        connection = AsyncConnection.to(self.store)
        try:
            while True:
                await self._work()
                if self._pending:
                    await self._write(connection, *self._take())
                else:
                    await connection.run(self.store.flush_steps())
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _work(self) -> None:
        """Return when updates wait, or when the store's buffer holds some and a retry is due."""
        ready, _ = self._events()
        while not self._pending:
            ready.clear()
            if not self.store.buffer_fill:
                await ready.wait()
                continue
            delay = self.store.retry_in()
            if delay <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), delay)

    async def _write(self, connection: AsyncConnection, ticks: list[Tick], rows: np.ndarray) -> None:
        symbols, stamps = [tick.symbol for tick in ticks], [tick.ts for tick in ticks]
        prices = [tick.price for tick in ticks] if self.with_prices else None
        given = self.store.counters.updates
        self.writing = len(ticks)
        try:
            await connection.run(self.store.write_steps(symbols, stamps, rows, prices))
        except asyncio.CancelledError:
            # Interrupted at shutdown: the store keeps them for its final flush (a write that
            # reached Redis all the same is written again, with the same values), as it keeps
            # a write Redis refused.
            self.store.keep(symbols, stamps, rows, prices)
            self.written(ticks, rows)
            raise
        except Exception as exc:
            self.failed(max(0, len(ticks) - (self.store.counters.updates - given)), exc)
        else:
            self.written(ticks, rows)
        finally:
            self.writing = 0

    async def finish(self, timeout: float) -> bool:
        """Wait (``timeout`` seconds at most) until nothing waits and no write is under way;
        True when so. The caller then cancels :meth:`run`."""
        deadline = time.monotonic() + timeout
        while (self._pending or self.writing) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return not (self._pending or self.writing)
