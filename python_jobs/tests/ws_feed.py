"""A WebSocket feed for intake tests: a local server (127.0.0.1, a free port) that sends the
frames a test gives it on the newest connection and records what clients send it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import websockets


class ScriptedFeed:
    """``async with ScriptedFeed() as feed``: ``await feed.send(frame)``, ``await feed.drop()``."""

    def __init__(self) -> None:
        self.sockets: list[Any] = []
        self.heard: list[str | bytes] = []
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handler(self, socket: Any) -> None:
        self.sockets.append(socket)
        try:
            async for message in socket:
                self.heard.append(message)
        except websockets.ConnectionClosed:
            pass

    async def send(self, frame: str | bytes, *, text: bool | None = None) -> None:
        """Send on the newest connection (bytes as a text frame with ``text=True``, unchecked)."""
        await self.sockets[-1].send(frame, text=text)

    async def drop(self) -> None:
        await self.sockets[-1].close()

    async def __aenter__(self) -> ScriptedFeed:
        self.server = await websockets.serve(self._handler, "127.0.0.1", 0, max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), timeout=5)


async def until(condition, timeout: float = 10.0) -> None:
    """Wait (polling) until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.002)


def tick(symbol: str, ts: Any, price: Any, volume: Any = 1.0) -> str:
    return json.dumps({"symbol": symbol, "ts": ts, "price": price, "volume": volume})
