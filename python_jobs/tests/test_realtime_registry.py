"""The registry key: a plain Redis client decodes a latest vector from it alone.

The reader below imports nothing of this project: it reads ``{prefix}:registry:{version}``,
finds the symbol's latest hash by the key pattern the registry gives, and unpacks ``v`` with
the registry's names, dtype and boolean columns. It must get what the engine computed.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import redis

from python_jobs import settings
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.indicators import INDICATOR_NAMES
from python_jobs.realtime.store import RealTimeFeatureStore
from python_jobs.tests.realtime_reference import eurusd_close
from python_jobs.tests.redis_servers import OwnRedis


@pytest.fixture(scope="module")
def server():
    own = OwnRedis()
    own.start()
    yield own
    own.stop()


def _decode_with_registry_only(client: redis.Redis, prefix: str, version: str, symbol: str) -> dict:
    """What any client does: the registry, then the latest hash it points to."""
    registry = json.loads(client.get(f"{prefix}:registry:{version}"))
    escaped = symbol
    for raw, written in registry["keys"]["symbol_escape"]:
        escaped = escaped.replace(raw, written)
    found = client.hgetall(registry["keys"]["latest"].format(symbol=escaped))
    vector = np.frombuffer(found[b"v"], dtype=registry["dtype"])
    out = {"ts": float(found[b"ts"])}
    for name, value in zip(registry["names"], vector.tolist(), strict=True):
        if math.isnan(value):
            out[name] = None
        elif name in registry["booleans"]:
            out[name] = value == 1.0
        else:
            out[name] = value
    return out


def test_a_plain_client_decodes_a_latest_vector_from_the_registry_key_alone(server):
    current = settings.load(overrides={"redis": {"key_prefix": "regtest"}})
    engine = RealTimeFeatureEngine(history_features=False, on_same_ts="replace")
    store = RealTimeFeatureStore(
        engine.names,
        engine.layout.version,
        redis.Redis(port=server.port),
        current=current,
        booleans=engine.layout.boolean_columns,
    )
    symbol = "OANDA:EUR_USD%"
    features = {}
    for hour, price in enumerate(eurusd_close().to_numpy()[:120]):
        stamp = 3600.0 * hour
        rows = engine.update_many([symbol], [stamp], [price])
        store.write_batch([symbol], [stamp], rows)
        features = engine.as_dict(rows[0])
    decoded = _decode_with_registry_only(
        redis.Redis(port=server.port), "regtest", engine.layout.version, symbol
    )
    assert decoded == {"ts": 3600.0 * 119, **features}
    outliers = engine.layout.boolean_columns
    assert all(isinstance(decoded[name], bool) for name in outliers), {n: decoded[n] for n in outliers}
    registry = json.loads(redis.Redis(port=server.port).get(store.registry_key))
    assert registry == store.registry() and registry["version"] == engine.layout.version
    assert registry["timeseries"] == list(INDICATOR_NAMES)
    assert redis.Redis(port=server.port).ttl(store.registry_key) == -1  # no expiry: it describes the version
