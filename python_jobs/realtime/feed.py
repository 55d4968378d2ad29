"""A WebSocket feed that plays a CSV file at a fixed rate, for demos, tests and benchmarks.

``python -m python_jobs realtime feed --file seeds/raw/eurusd_h1.csv --rate 1000`` serves the
rows on ``ws://127.0.0.1:8765`` as ``{"symbol", "ts", "price", "volume"}`` messages, to every
connected client (a live feed: a client that reconnects gets the messages from then on).

The file's first column is the timestamp; the price is the ``Close`` (or ``price``) column and
the volume the ``Volume`` column when present; a ``symbol`` column names the series, else
``--symbol``. ``--symbols K`` plays the file as K symbols at once (each row once per symbol,
the price scaled slightly per symbol), so a benchmark can have 10,000 series. With ``--loop``
the file restarts after its last row, its timestamps shifted past the previous pass so that
every symbol's stream stays in order. Messages are paced on a 1 ms clock and sent in frames
of the messages due (a JSON array when more than one), at most ``frame_messages`` a frame:
after a stall the backlog goes out in several frames, each well under the intake's
``online.max_frame_bytes``, rather than one that the intake would refuse as oversized.
What a client sends (a subscription request) is kept in :attr:`CsvFeed.heard`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import websockets

DEFAULT_PORT = 8765
LOOPBACK = "127.0.0.1"
# Messages in one frame at most: about 100 bytes each, 100 kB a frame.
FRAME_MESSAGES = 1000


def load_ticks(path: Path, symbol: str = "EURUSD") -> pd.DataFrame:
    """symbol, ts (epoch seconds), price, volume from a CSV of bars or ticks."""
    frame = pd.read_csv(path)
    lower = {column.lower(): column for column in frame.columns}
    price = lower.get("close") or lower.get("price")
    if price is None:
        raise ValueError(f"{path}: no Close or price column (columns: {list(frame.columns)})")
    stamps = pd.to_datetime(frame.iloc[:, 0], utc=True)
    return pd.DataFrame(
        {
            "symbol": frame[lower["symbol"]].astype(str) if "symbol" in lower else symbol,
            "ts": ((stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=float),
            "price": frame[price].astype(float),
            "volume": frame[lower["volume"]].astype(float) if "volume" in lower else 0.0,
        }
    )


def messages(ticks: pd.DataFrame, symbols: int = 1, loop: bool = False) -> Iterator[dict[str, Any]]:
    """The feed's messages in order: each row once per symbol; forever with ``loop``."""
    span = float(ticks["ts"].max() - ticks["ts"].min()) + 3600.0
    names = ticks["symbol"].tolist()
    scale = 1.0 + 1e-4 * np.arange(symbols)
    shift = 0.0
    while True:
        for name, stamp, price, volume in zip(
            names, ticks["ts"].tolist(), ticks["price"].tolist(), ticks["volume"].tolist(), strict=True
        ):
            for k in range(symbols):
                yield {
                    "symbol": name if symbols == 1 else f"{name}{k}",
                    "ts": stamp + shift,
                    "price": price * float(scale[k]),
                    "volume": volume,
                }
        if not loop:
            return
        shift += span


class CsvFeed:
    """Serves :func:`messages` at ``rate`` per second to every connected client, at most
    ``frame_messages`` messages a frame."""

    def __init__(
        self,
        source: Iterator[dict[str, Any]],
        rate: float,
        *,
        wait_for_client: bool = True,
        duration: float | None = None,
        frame_messages: int = FRAME_MESSAGES,
    ) -> None:
        self.source = source
        self.rate = rate
        self.wait_for_client = wait_for_client
        self.duration = duration
        self.frame_messages = frame_messages
        self.clients: set[Any] = set()
        self.sent = 0
        # The last messages clients sent (subscription requests), for a demo to show.
        self.heard: deque[str | bytes] = deque(maxlen=100)
        self.finished = asyncio.Event()
        self._client_seen = asyncio.Event()

    async def _handler(self, socket: Any) -> None:
        self.clients.add(socket)
        self._client_seen.set()
        try:
            # Reading what the client sends also keeps its close frame from waiting unread.
            async for message in socket:
                self.heard.append(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.clients.discard(socket)

    async def _broadcast(self, frame: str) -> None:
        for socket in list(self.clients):
            try:
                await socket.send(frame)
            except websockets.ConnectionClosed:
                self.clients.discard(socket)

    async def play(self) -> None:
        """Send every message on schedule (for :attr:`duration` seconds at most, counted from the
        first client); then set :attr:`finished`."""
        if self.wait_for_client:
            await self._client_seen.wait()
        start = time.perf_counter()
        pending: list[dict[str, Any]] = []
        exhausted = False
        while not exhausted:
            elapsed = time.perf_counter() - start
            if self.duration is not None and elapsed >= self.duration:
                break
            due = int(elapsed * self.rate) - self.sent
            while len(pending) < due:
                item = next(self.source, None)
                if item is None:
                    exhausted = True
                    break
                pending.append(item)
            for first in range(0, len(pending), self.frame_messages):
                chunk = pending[first : first + self.frame_messages]
                self.sent += len(chunk)
                await self._broadcast(json.dumps(chunk[0] if len(chunk) == 1 else chunk))
            pending = []
            await asyncio.sleep(0.001)
        self.finished.set()

    async def serve(self, host: str = LOOPBACK, port: int = DEFAULT_PORT) -> None:
        """Listen on ``host:port`` and play the feed; close the connections when it ends."""
        async with websockets.serve(self._handler, host, port, max_size=2**24, compression=None):
            await self.play()
