"""Serving: ``materialize`` into Redis and ``POST /get-online-features``, on the bundled data.

The served vectors are compared, column by column, with the marts rows they came from (read
here with SQL of their own) and with the training set of the same series and date.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from python_jobs import config, db, settings
from python_jobs.realtime import api, serving
from python_jobs.realtime.layout import layout
from python_jobs.realtime.materialize import materialize
from python_jobs.realtime.store import RealTimeFeatureStore, ServingKeys, connect
from python_jobs.tests.redis_servers import free_port

pytestmark = pytest.mark.dbt

ENDPOINT = "/get-online-features"


def _settings(schema: str, prefix: str, **serving_keys: Any) -> settings.Settings:
    env = {**os.environ, "DBT_SCHEMA": schema}
    return settings.load(env=env, overrides={"redis": {"key_prefix": prefix}, "serving": serving_keys})


@pytest.fixture(scope="module")
def served(demo_schema: str) -> Iterator[dict[str, Any]]:
    """The demo marts materialized under a key prefix of this module; the settings in force."""
    current = _settings(demo_schema, f"t-serving-{uuid.uuid4().hex[:8]}")
    settings.patch(current)
    try:
        client, _ = connect(current=current)
        first = materialize(client=client, current=current)
        yield {"current": current, "client": client, "first": first, "schema": demo_schema}
        for key in client.scan_iter(f"{current.redis.key_prefix}:*"):
            client.delete(key)
    finally:
        settings.patch(None)


def _app(current: settings.Settings, client: Any = None) -> TestClient:
    return TestClient(api.create_app(current, client))


def _marts(schema: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Each series' latest features_hist row, features_stat row and next features_futr row."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    with db.connect() as conn:

        def read(query: sql.Composable) -> list[dict[str, Any]]:
            cursor = conn.execute(query)
            names = [c.name for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        def table(name: str) -> sql.Composable:
            return sql.Identifier(schema, name)

        hist = read(
            sql.SQL(
                "select * from {} as h where ds = (select max(ds) from {} as m "
                "where m.loto = h.loto and m.unique_id = h.unique_id)"
            ).format(table("features_hist"), table("features_hist"))
        )
        for row in hist:
            rows[(row["loto"], row["unique_id"])] = {k: v for k, v in row.items() if k.startswith("hist_")}
            rows[(row["loto"], row["unique_id"])]["_ds"] = row["ds"]
        for row in read(sql.SQL("select * from {}").format(table("features_stat"))):
            rows[(row["loto"], row["unique_id"])].update(
                {k: v for k, v in row.items() if k.startswith("stat_")}
            )
        for row in read(sql.SQL("select * from {} order by ds").format(table("features_futr"))):
            series = rows[(row["loto"], row["unique_id"])]
            if row["ds"] > series["_ds"] and "target_ds" not in series:
                series.update({k: v for k, v in row.items() if k.startswith("futr_")})
                series["target_ds"] = row["ds"]
    return rows


def _as_served(value: Any) -> Any:
    """A database value as JSON gives it back: NaN as null, dates as ISO text."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _vectors(response: dict[str, Any]) -> list[dict[str, tuple[Any, str, str]]]:
    names = response["metadata"]["feature_names"]
    count = len(response["results"][0]["values"]) if names else 0
    return [
        {
            name: (result["values"][e], result["statuses"][e], result["event_timestamps"][e])
            for name, result in zip(names, response["results"], strict=True)
        }
        for e in range(count)
    ]


def _request(series: list[tuple[str, str]], features: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"entities": {"loto": [s[0] for s in series], "unique_id": [s[1] for s in series]}}
    if features is not None:
        body["features"] = features
    return body


# -- materialize -------------------------------------------------------------------------------


def _copy_marts(source: str, target: str) -> None:
    """Copies of the marts with their keys (materialize reads each series' latest row by key)."""
    with db.connect(autocommit=True) as conn:
        for mart in ("features_hist", "features_stat", "features_futr"):
            copy, original = sql.Identifier(target, mart), sql.Identifier(source, mart)
            conn.execute(sql.SQL("create table {} (like {} including all)").format(copy, original))
            conn.execute(sql.SQL("insert into {} select * from {}").format(copy, original))


def test_materialize_writes_only_changed_series(served, fresh_schema):
    schema = fresh_schema("serving_inc")
    _copy_marts(served["schema"], schema)
    current = _settings(schema, f"t-serving-inc-{uuid.uuid4().hex[:8]}")
    client = served["client"]
    settings.patch(current)
    try:
        first = materialize(client=client, current=current)
        assert first.written == first.series == len(_marts(schema)) > 2
        again = materialize(client=client, current=current)
        assert (again.written, again.unchanged) == (0, first.series)
        # A corrected draw (the latest row of one series) and a new draw (another series).
        with db.connect(autocommit=True) as conn:
            hist = sql.Identifier(schema, "features_hist")
            conn.execute(
                sql.SQL(
                    "update {} set hist_y_lag1 = hist_y_lag1 + 1 where loto = 'loto6' and unique_id = 'N1' "
                    "and ds = (select max(ds) from {} where loto = 'loto6' and unique_id = 'N1')"
                ).format(hist, hist)
            )
            conn.execute(
                sql.SQL(
                    "update {} set ds = ds + interval '7 days' where loto = 'bingo5' and unique_id = 'N1' "
                    "and ds = (select max(ds) from {} where loto = 'bingo5' and unique_id = 'N1')"
                ).format(hist, hist)
            )
        changed = materialize(client=client, current=current)
        assert (changed.written, changed.unchanged) == (2, first.series - 2)
        with _app(current) as app:
            got = _vectors(app.post(ENDPOINT, json=_request([("loto6", "N1")], ["hist_y_lag1"])).json())
        assert got[0]["hist_y_lag1"][0] == _marts(schema)[("loto6", "N1")]["hist_y_lag1"]
        assert materialize(loto="loto6", client=client, current=current).written == 0
    finally:
        settings.patch(served["current"])
        for key in client.scan_iter(f"{current.redis.key_prefix}:*"):
            client.delete(key)


def test_materialized_hashes_do_not_expire_with_the_streams_ttl(served):
    """redis.ttl_s bounds the stream's keys; a materialized hash, rewritten only when its series
    changes, lives until the next change (the API bounds its age at read)."""
    prefix = f"t-serving-ttl-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DBT_SCHEMA": served["schema"]}
    current = settings.load(env=env, overrides={"redis": {"key_prefix": prefix, "ttl_s": 5}})
    client = served["client"]
    try:
        assert materialize(client=client, current=current).written > 0
        keys = ServingKeys(prefix, layout().version)
        materialized = [*client.scan_iter(keys.materialized("*", "*")), keys.materialized_names]
        assert len(materialized) > 2 and all(client.ttl(key) == -1 for key in materialized)
        store = RealTimeFeatureStore(
            ("hist_y_lag1",), layout().version, client, current=current, outbox=False
        )
        store.write_batch(["EURUSD"], [1.0], np.array([[1.0]]))
        assert 0 < client.ttl(store.latest_key("EURUSD")) <= 5
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def test_materialized_hash_is_plain_json_text(served):
    current, client = served["current"], served["client"]
    keys = ServingKeys(current.redis.key_prefix, layout().version)
    fields = client.hgetall(keys.materialized("loto6", "N1"))
    decoded = {k.decode(): json.loads(v) for k, v in fields.items() if not k.startswith(b"_")}
    expected = _marts(served["schema"])[("loto6", "N1")]
    assert decoded["hist_y_lag1"] == expected["hist_y_lag1"]
    assert decoded["target_ds"] == expected["target_ds"].isoformat()
    assert fields[b"_version"].decode() == layout().version


# -- the served vector -------------------------------------------------------------------------


def test_served_vectors_equal_the_marts_rows(served):
    marts = _marts(served["schema"])
    series = sorted(marts)
    with _app(served["current"]) as app:
        response = app.post(ENDPOINT, json=_request(series))
    assert response.status_code == 200
    vectors = _vectors(response.json())
    names = set(response.json()["metadata"]["feature_names"])
    for key, vector in zip(series, vectors, strict=True):
        expected = {k: v for k, v in marts[key].items() if not k.startswith("_")}
        assert set(expected) <= names
        for name, value in expected.items():
            served_value, status, _ = vector[name]
            assert served_value == _as_served(value), (key, name)
            assert status == ("NULL_VALUE" if _as_served(value) is None else "PRESENT"), (key, name)
        ds = marts[key]["_ds"]
        assert vector["hist_y_lag1"][2].startswith(ds.isoformat()[:10])
    statuses = {vector[name][1] for vector in vectors for name in vector}
    assert {"PRESENT", "NULL_VALUE"} <= statuses


def test_max_age_per_group_is_enforced_at_read(served):
    current = _settings(served["schema"], served["current"].redis.key_prefix, max_age_hist_s=3600)
    features = ["hist_y_lag1", "stat_y_global_mean", "futr_ds_month", "target_ds"]
    with _app(current) as app:
        old = _vectors(app.post(ENDPOINT, json=_request([("loto6", "N1")], features)).json())[0]
    with _app(served["current"]) as app:
        fresh = _vectors(app.post(ENDPOINT, json=_request([("loto6", "N1")], features)).json())[0]
    # The bundled draws are older than an hour: returned, but never as PRESENT.
    assert old["hist_y_lag1"][1] == "OUTSIDE_MAX_AGE"
    assert old["hist_y_lag1"][0] == fresh["hist_y_lag1"][0] is not None
    assert fresh["hist_y_lag1"][1] == "PRESENT"
    for name in features[1:]:
        assert old[name] == fresh[name] and old[name][1] == "PRESENT"
    aged = _settings(served["schema"], served["current"].redis.key_prefix, max_age_stat_s=1, max_age_futr_s=1)
    with _app(aged) as app:
        got = _vectors(app.post(ENDPOINT, json=_request([("loto6", "N1")], features)).json())[0]
    assert [got[name][1] for name in features] == ["PRESENT", *["OUTSIDE_MAX_AGE"] * 3]


def test_unknown_series_are_not_found(served):
    with _app(served["current"]) as app:
        response = app.post(ENDPOINT, json=_request([("loto6", "N1"), ("loto6", "no-such"), ("nope", "N1")]))
    assert response.status_code == 200
    vectors = _vectors(response.json())
    assert {status for _, status, _ in vectors[1].values()} == {"NOT_FOUND"}
    assert {value for value, _, _ in vectors[2].values()} == {None}
    assert {stamp for _, _, stamp in vectors[2].values()} == {serving.NO_TIMESTAMP}
    assert "NOT_FOUND" not in {status for _, status, _ in vectors[0].values()}


def test_stream_point_newer_than_the_marts_row_wins(served):
    """Per-event columns come from the stream when its point is newer; the others never do."""
    current, client = served["current"], served["client"]
    market, symbol = current.online.market_loto, f"SYM:{uuid.uuid4().hex[:6]}"
    keys = ServingKeys(current.redis.key_prefix, layout().version)
    marked = 1_700_000_000.0
    client.hset(
        keys.materialized(market, symbol),
        mapping={"_ts_hist": repr(marked), "hist_y_lag1": "1.5", "hist_y_gap": "4", "_version": keys.version},
    )
    names = layout().names
    store = RealTimeFeatureStore(names, keys.version, client, current=current, timeseries=[])
    vector = np.full(len(names), np.nan)
    vector[names.index("hist_y_lag1")] = 2.5
    vector[names.index("sma_5")] = 7.0
    vector[names.index(layout().boolean_columns[0])] = 1.0
    features = ["hist_y_lag1", "hist_y_gap", "sma_5", "rsi_14", layout().boolean_columns[0]]
    outcomes = {}
    for label, stream_ts in (("newer", marked + 60), ("older", marked - 60)):
        assert store.write_batch([symbol], [stream_ts], vector[None, :])
        with _app(current) as app:
            response = app.post(ENDPOINT, json=_request([(market, symbol)], features))
        outcomes[label] = _vectors(response.json())[0]
    newer, older = outcomes["newer"], outcomes["older"]
    assert newer["hist_y_lag1"][:2] == (2.5, "PRESENT") and newer["hist_y_lag1"][2] == serving.iso(
        marked + 60
    )
    assert older["hist_y_lag1"][:2] == (1.5, "PRESENT") and older["hist_y_lag1"][2] == serving.iso(marked)
    for got in (newer, older):
        assert got["hist_y_gap"][:3] == (4, "PRESENT", serving.iso(marked))  # only the marts hold it
        assert got["sma_5"][:2] == (7.0, "PRESENT")  # only the stream computes it
        assert got["rsi_14"][:2] == (None, "NULL_VALUE")
    assert newer[layout().boolean_columns[0]][0] is True
    # A lottery series has no stream: its stream-only columns are not found.
    with _app(current) as app:
        lottery = _vectors(app.post(ENDPOINT, json=_request([("loto6", "N1")], ["sma_5"])).json())[0]
    assert lottery["sma_5"][1] == "NOT_FOUND"
    client.delete(keys.materialized(market, symbol), keys.latest(symbol))


def test_served_vector_equals_the_training_row(served):
    """For each series at its latest ds, the served vector is the training set's row."""
    try:
        from python_jobs import training_set
        from python_jobs.training.entities import TrainingSetError
    except ImportError as exc:  # pragma: no cover - the training set module ships with serving
        pytest.skip(f"python_jobs.training_set is not importable: {exc}")
    import pandas as pd

    marts = _marts(served["schema"])
    series = sorted(marts)
    entities = pd.DataFrame(
        {
            "loto": [s[0] for s in series],
            "unique_id": [s[1] for s in series],
            "ds": [pd.Timestamp(marts[s]["_ds"]) for s in series],
        }
    )
    try:
        rows = training_set(entities)
    except TrainingSetError as exc:
        if "does not exist" not in str(exc):
            raise
        pytest.skip(f"the training set's marts are not built by this tree's models: {exc}")
    with _app(served["current"]) as app:
        response = app.post(ENDPOINT, json=_request(series))
    vectors = _vectors(response.json())
    columns = [c for c in rows.columns if c.startswith(("hist_", "stat_", "futr_")) or c == "target_ds"]
    for position, vector in enumerate(vectors):
        row = rows.iloc[position]
        for column in columns:
            if column not in vector:
                # Only the training set's snapshot date may be missing where features_stat has none.
                assert column == "stat_as_of", column
                continue
            _assert_same(vector[column][0], row[column], (series[position], column))


def _assert_same(served_value: Any, trained: Any, where: Any) -> None:
    import pandas as pd

    if served_value is None:
        assert trained is None or pd.isna(trained), where
    elif isinstance(served_value, str) and not isinstance(trained, str):
        assert pd.Timestamp(served_value) == pd.Timestamp(trained), where
    elif isinstance(served_value, bool):
        assert bool(trained) is served_value, where
    elif isinstance(served_value, (int, float)):
        assert float(served_value) == float(trained), where
    else:
        assert served_value == trained, where


def _reference_value(
    name: str,
    group: str,
    stored: dict[str, str],
    point: tuple[float, dict[str, float]] | None,
    max_age: dict[str, float | None],
    now: float,
) -> tuple[Any, str, str]:
    """One value as the module's rules say, one feature and one series at a time."""

    def status(value: Any, ts: float, limit: float | None) -> str:
        if limit is not None and now - ts > limit:
            return "OUTSIDE_MAX_AGE"
        return "NULL_VALUE" if value is None else "PRESENT"

    hist_ts = float(stored["_ts_hist"]) if "_ts_hist" in stored else None
    if (
        point is not None
        and name in point[1]
        and (name not in stored or hist_ts is None or point[0] > hist_ts)
    ):
        number = point[1][name]
        value = (
            None
            if not math.isfinite(number)
            else (bool(number) if name in layout().boolean_columns else number)
        )
        return value, status(value, point[0], max_age["hist"]), serving.iso(point[0])
    if name in stored and f"_ts_{group}" in stored:
        ts = float(stored[f"_ts_{group}"])
        value = json.loads(stored[name])
        return value, status(value, ts, max_age[group]), serving.iso(ts)
    return None, "NOT_FOUND", serving.NO_TIMESTAMP


def test_every_precedence_and_status_case_equals_a_per_value_reference():
    """Random hashes (fields, event times, NULLs, NaN, booleans, stale groups, stream older or
    newer, no stream, unknown series) served for many entities at once, checked value by value."""
    from python_jobs.realtime.materialize import encode

    rng = np.random.default_rng(7)
    prefix = f"t-serving-ref-{uuid.uuid4().hex[:8]}"
    current = _settings(
        os.environ.get("DBT_SCHEMA", "public"), prefix, max_age_hist_s=600, max_age_stat_s=600
    )
    client, _ = connect(current=current)
    keys = ServingKeys(prefix, layout().version)
    market, now = current.online.market_loto, time.time()
    names = list(layout().names)
    groups = {
        "hist": [*names[: len(names) // 2], "hist_marts_only"],
        "stat": ["stat_a", "stat_b", "stat_c"],
        "futr": ["futr_a", "target_ds"],
    }
    store = RealTimeFeatureStore(names, keys.version, client, current=current, timeseries=[])
    client.set(keys.names, json.dumps(names))
    client.set(keys.materialized_names, json.dumps(groups))
    series, hashes, points = [], {}, {}
    try:
        for k in range(16):
            symbol = f"S{k}"
            stored: dict[str, str] = {}
            for group, group_names in groups.items():
                if rng.random() < 0.8:
                    stored[f"_ts_{group}"] = repr(now - float(rng.choice([60.0, 3600.0])))
                for name in group_names:
                    if rng.random() < 0.85:
                        kind = rng.integers(5)
                        value = [float(rng.normal()), None, int(rng.integers(9)), bool(rng.integers(2))][
                            kind % 4
                        ]
                        stored[name] = encode(dt.date(2026, 1, 2) if name == "target_ds" else value)
            if k % 5 != 4:
                client.hset(keys.materialized(market, symbol), mapping=stored)
            else:
                stored = {}
            if k % 3 != 2:
                vector = rng.normal(size=len(names))
                vector[rng.random(len(names)) < 0.2] = np.nan
                vector[rng.integers(len(names))] = np.inf
                for column in layout().boolean_columns:
                    vector[names.index(column)] = float(rng.integers(2))
                stamp = now - float(rng.choice([30.0, 1800.0, 7200.0]))
                assert store.write_batch([symbol], [stamp], vector[None, :])
                points[symbol] = (stamp, dict(zip(names, vector.tolist(), strict=True)))
            series.append((market, symbol))
            hashes[symbol] = stored
        series += [("loto6", "no-such"), (market, "no-such")]
        with _app(current) as app:
            response = app.post(ENDPOINT, json=_request(series))
        assert response.status_code == 200
        vectors = _vectors(response.json())
        group_of = {name: group for group, group_names in groups.items() for name in group_names}
        group_of.update({name: "hist" for name in names if name not in group_of})
        assert list(vectors[0]) == [*group_of]
        max_age = serving.max_ages(current)
        seen = set()
        for (_, symbol), vector in zip(series, vectors, strict=True):
            for name, got in vector.items():
                expected = _reference_value(
                    name, group_of[name], hashes.get(symbol, {}), points.get(symbol), max_age, now
                )
                assert got == expected, (symbol, name)
                seen.add(got[1])
        assert seen == {"PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"}
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


# -- the HTTP surface --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ('{"entities": ', 422, "malformed JSON"),
        ("[]", 422, "invalid request"),
        ('{"entities": {"loto": ["loto6"]}}', 422, "unique_id"),
        ('{"entities": {"loto": ["loto6", "loto6"], "unique_id": ["N1"]}}', 422, "2 values"),
        ('{"entities": {"loto": ["loto6"], "unique_id": ["N1"], "symbol": ["x"]}}', 422, "symbol"),
        ('{"entities": {"loto": ["loto6"], "unique_id": ["N1"]}, "features": ["no_such"]}', 400, "no_such"),
        ('{"entities": {"loto": [1], "unique_id": ["N1"]}}', 422, "loto"),
        (
            '{"entities": {"loto": ["a", "a", "a"], "unique_id": ["1", "2", "3"]}}',
            422,
            "serving.max_entities",
        ),
    ],
)
def test_bad_requests_get_a_4xx_with_one_line(served, body, status, says):
    current = _settings(served["schema"], served["current"].redis.key_prefix, max_entities=2)
    with _app(current) as app:
        response = app.post(ENDPOINT, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and says in detail
    assert "Traceback" not in response.text


def test_openapi_describes_the_endpoints(served):
    with _app(served["current"]) as app:
        spec = app.get("/openapi.json").json()
        docs = app.get("/docs")
        health = app.get("/health")
    request = spec["components"]["schemas"]["GetOnlineFeaturesRequest"]
    assert set(request["properties"]) == {"entities", "features"}
    assert "/get-online-features" in spec["paths"] and "/health" in spec["paths"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert health.status_code == 200 and health.json()["redis"] == "up"
    assert health.json()["features"] > 200


def test_a_burst_waits_for_a_redis_connection(served):
    """More requests at once than connections: each waits for one, none fails."""
    import asyncio

    state = api.ServingState(served["current"])
    state.open()

    async def burst() -> list[int]:
        catalog, names = await state.features(None)
        entities, how = [("loto6", "N1")], catalog.plan(names)
        reads = [
            serving.read_sources(state.client, state.keys, entities, "market", catalog, how)
            for _ in range(300)
        ]
        try:
            found = await asyncio.gather(*reads)
            return [sum(value is not None for value in sources.materialized[0]) for sources in found]
        finally:
            await state.close()

    sizes = asyncio.run(burst())
    assert len(sizes) == 300 and min(sizes) > 200


def test_a_body_over_the_limit_is_a_413_with_one_line():
    current = _settings(os.environ.get("DBT_SCHEMA", "public"), f"t-serving-big-{uuid.uuid4().hex[:8]}")
    ids = json.dumps(["x" * 1000] * (api.MAX_BODY_BYTES // 1000))
    body = f'{{"entities": {{"loto": [], "unique_id": {ids}}}}}'
    with _app(current) as app:
        response = app.post(ENDPOINT, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "\n" not in response.json()["detail"] and "bytes" in response.json()["detail"]


def test_the_server_socket_answers_without_waiting_for_acks():
    """Connections accepted on :func:`api.bind`'s socket have TCP_NODELAY (asyncio sets it only
    when the socket says TCP), so a response written in two parts is not held 40 ms."""
    import asyncio
    import socket

    async def accepted_nodelay() -> int:
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=api.bind("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0


def test_redis_down_is_a_503_not_a_500(served):
    env = {**os.environ, "DBT_SCHEMA": served["schema"]}
    down = settings.load(env=env, overrides={"redis": {"url": f"redis://127.0.0.1:{free_port()}/0"}})
    with _app(down) as app:
        response = app.post(ENDPOINT, json=_request([("loto6", "N1")]))
        health = app.get("/health")
    assert response.status_code == 503 and "online store" in response.json()["detail"]
    assert health.status_code == 503 and health.json()["redis"] == "down"


# -- the commands ------------------------------------------------------------------------------


def _command(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "python_jobs", *args],
        cwd=config.REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_materialize_without_marts_is_one_line(fresh_schema):
    schema = fresh_schema("serving_empty")
    process = _command("materialize", env={"DBT_SCHEMA": schema})
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2, (out, err)
    assert err.strip().count("\n") == 0 and "features_hist does not exist" in err


def test_api_command_serves_on_a_real_uvicorn(served):
    """``realtime api --port 0`` answers over HTTP; a port in use is refused in one line."""
    import httpx2 as httpx

    env = {"DBT_SCHEMA": served["schema"]}
    url = settings.secret(served["current"].redis.url)
    if url:
        env["REDIS_URL"] = url
    config_file = config.REPO_ROOT / ".local" / f"serving-{uuid.uuid4().hex[:8]}.yaml"
    config_file.parent.mkdir(exist_ok=True)
    config_file.write_text(f"redis:\n  key_prefix: {served['current'].redis.key_prefix}\n", encoding="utf-8")
    process = _command("--config", str(config_file), "realtime", "api", "--port", "0", env=env)
    try:
        line = process.stdout.readline()
        assert line.startswith("feature API on http://127.0.0.1:"), line + process.stderr.read()
        base = line.split()[3]
        port = int(base.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.post(f"{base}{ENDPOINT}", json=_request([("loto6", "N1")], ["hist_y_lag1"]))
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["results"][0]["statuses"] == ["PRESENT"]
        taken = _command("realtime", "api", "--port", str(port), env=env)
        _, err = taken.communicate(timeout=60)
        assert taken.returncode == 2 and err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err
    finally:
        process.terminate()
        process.wait(timeout=30)
        config_file.unlink()


def test_materialize_reports_on_redis_it_cannot_reach(served):
    port = free_port()
    process = _command(
        "materialize", env={"DBT_SCHEMA": served["schema"], "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2 and err.count("\n") == 1 and "cannot write to Redis" in err, (out, err)
