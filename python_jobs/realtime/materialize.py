"""``materialize``: each series' latest marts rows into the online store, written only when changed.

For every series (``loto``, ``unique_id``) of ``features_hist``, one Redis hash
(:meth:`~python_jobs.realtime.store.ServingKeys.materialized`) holds:

- every ``hist_*`` column of its latest ``features_hist`` row (the Python job's per-row columns
  included), event time that row's ``ds``;
- every ``stat_*`` column of its ``features_stat`` row (the latest snapshot), event time its
  ``stat_as_of`` where the mart has one, else ``stat_series_end_date``, else the ``ds`` above;
- every ``futr_*`` column of its next step, the first ``features_futr`` row with ``ds`` after
  the latest one, and that ``ds`` as ``target_ds``; event time the latest ``ds`` (the time the
  step was projected from), as the training set reads it;
- ``_version`` (the feature-set version), ``_ts_hist``/``_ts_stat``/``_ts_futr`` (epoch
  seconds) and ``_fingerprint``.

Every value is JSON text, readable by any Redis client: numbers, ``true``/``false``, dates and
times as ISO-8601 strings, ``null`` for NULL (and for NaN, which JSON cannot hold).

Incremental: the fingerprint is a hash of every field written. A run reads the stored
fingerprints (one round trip) and rewrites only the series whose fingerprint differs: a second
run over unchanged marts writes nothing; a corrected or new draw rewrites its series alone.

No expiry: ``redis.ttl_s`` is the lifetime of the stream's keys, which every tick rewrites. A
hash here is rewritten only when its series changes (a lottery draws twice a week), so a TTL
would delete unchanged series between runs; how old a served value may be is the API's to
enforce at read, from the hash's event times (``serving.max_age_{group}_s``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
from psycopg import sql

from python_jobs import config, db, settings
from python_jobs.log import get_logger
from python_jobs.realtime.layout import layout
from python_jobs.realtime.store import ServingKeys, connect

log = get_logger(__name__)

#: The feature groups, each with its own event time and maximum age.
GROUPS = ("hist", "stat", "futr")
#: The marts read, with the prefix of the columns each one gives.
MARTS = {"hist": "features_hist", "stat": "features_stat", "futr": "features_futr"}
#: Hash fields that are not features (features start with hist_, stat_, futr_ or target_).
VERSION_FIELD = "_version"
FINGERPRINT_FIELD = "_fingerprint"
#: The next step's date, served in the futr group.
TARGET_DS = "target_ds"
#: Series per Redis pipeline when writing.
WRITE_CHUNK = 500


class MaterializeError(RuntimeError):
    """A mart is missing: the message names it and what to run."""


def ts_field(group: str) -> str:
    """The hash field holding ``group``'s event time."""
    return f"_ts_{group}"


@dataclass(frozen=True)
class MaterializeResult:
    """What a run did: series read from the marts, written (changed or new), left as they were."""

    series: int
    written: int
    unchanged: int
    version: str
    seconds: float


# -- values ------------------------------------------------------------------------------------


def epoch(value: dt.date | dt.datetime) -> float:
    """Epoch seconds of a date (midnight UTC) or a datetime (naive taken as UTC)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()


def encode(value: Any) -> str:
    """A mart value as JSON text; NULL, NaN and infinities as ``null``.

    >>> [encode(v) for v in (1.5, True, 3, None, float("nan"), dt.date(2024, 1, 6), "N1")]
    ['1.5', 'true', '3', 'null', 'null', '"2024-01-06"', '"N1"']
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, decimal.Decimal)):
        number = float(value)
        return repr(number) if math.isfinite(number) else "null"
    if isinstance(value, (dt.date, dt.datetime)):
        return json.dumps(value.isoformat())
    return json.dumps(str(value))


# -- reading the marts -------------------------------------------------------------------------


def _where(loto: str | None) -> tuple[sql.Composable, tuple[Any, ...]]:
    if loto is None:
        return sql.SQL(""), ()
    return sql.SQL(" where {} = %s").format(sql.Identifier("loto")), (loto,)


@dataclass(frozen=True)
class MartRows:
    """What one run read: the columns of each mart and the rows materialized, per group."""

    columns: dict[str, list[str]]
    rows: dict[str, list[dict[str, Any]]]


def _rows(
    conn: psycopg.Connection, query: sql.Composable, params: tuple[Any, ...]
) -> tuple[list[str], list[dict[str, Any]]]:
    cursor = conn.execute(query, params)
    names = [column.name for column in cursor.description or ()]
    return names, [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _latest_hist(conn: psycopg.Connection, loto: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """The latest features_hist row of each series. The latest ds per series comes from one
    aggregate, and only those rows are read whole (a sort of every row by series and ds, as
    ``distinct on`` needs, took 2 s on a million rows)."""
    where, params = _where(loto)
    query = sql.SQL(
        "with latest as (select loto, unique_id, max(ds) as ds from {hist}{where} group by 1, 2) "
        "select hist.* from {hist} as hist join latest using (loto, unique_id, ds) "
        "order by hist.loto, hist.unique_id"
    ).format(hist=db.qualified(MARTS["hist"]), where=where)
    return _rows(conn, query, params)


def _stat(conn: psycopg.Connection, loto: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    where, params = _where(loto)
    return _rows(conn, sql.SQL("select * from {}{}").format(db.qualified(MARTS["stat"]), where), params)


def _next_futr(
    conn: psycopg.Connection, hist: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """The first features_futr row after each series' latest features_hist ds (``hist``)."""
    query = sql.SQL(
        "with latest as (select * from unnest(%s::text[], %s::text[], %s::timestamp[]) "
        "as latest (loto, unique_id, latest_ds)), "
        "next as (select futr.loto, futr.unique_id, min(futr.ds) as ds from {futr} as futr "
        "join latest on latest.loto = futr.loto and latest.unique_id = futr.unique_id "
        "and futr.ds > latest.latest_ds group by 1, 2) "
        "select futr.* from {futr} as futr join next using (loto, unique_id, ds) "
        "order by futr.loto, futr.unique_id"
    ).format(futr=db.qualified(MARTS["futr"]))
    params = tuple([row[name] for row in hist] for name in ("loto", "unique_id", "ds"))
    return _rows(conn, query, params)


def read_marts(url: str | None = None, loto: str | None = None) -> MartRows:
    """The rows materialized, per group: latest hist row, stat row, next futr row of each series.

    Raises
    ------
    MaterializeError
        A mart does not exist.
    """
    with db.connect(url) as conn:
        for mart in MARTS.values():
            if not db.table_exists(conn, mart):
                raise MaterializeError(
                    f"{config.target_schema()}.{mart} does not exist: run `make demo` first"
                )
        hist = _latest_hist(conn, loto)
        read = {"hist": hist, "stat": _stat(conn, loto), "futr": _next_futr(conn, hist[1])}
    return MartRows({g: names for g, (names, _) in read.items()}, {g: rows for g, (_, rows) in read.items()})


# -- building the hashes -----------------------------------------------------------------------


def _features(row: Mapping[str, Any], prefix: str) -> dict[str, str]:
    return {name: encode(value) for name, value in row.items() if name.startswith(prefix)}


def _stat_time(row: Mapping[str, Any], hist_ds: float) -> float:
    for name in ("stat_as_of", "stat_series_end_date"):
        if row.get(name) is not None:
            return epoch(row[name])
    return hist_ds


def build_hashes(marts: MartRows, version: str) -> dict[tuple[str, str], dict[str, str]]:
    """One hash (field -> JSON text) per series of the hist rows, fingerprint included."""
    rows = marts.rows
    stat = {(row["loto"], row["unique_id"]): row for row in rows["stat"]}
    futr = {(row["loto"], row["unique_id"]): row for row in rows["futr"]}
    hashes: dict[tuple[str, str], dict[str, str]] = {}
    for hist in rows["hist"]:
        series = (hist["loto"], hist["unique_id"])
        ds = epoch(hist["ds"])
        fields = {VERSION_FIELD: version, ts_field("hist"): repr(ds), **_features(hist, "hist_")}
        if series in stat:
            fields[ts_field("stat")] = repr(_stat_time(stat[series], ds))
            fields.update(_features(stat[series], "stat_"))
        if series in futr:
            fields[ts_field("futr")] = repr(ds)
            fields.update(_features(futr[series], "futr_"))
            fields[TARGET_DS] = encode(futr[series]["ds"])
        fields[FINGERPRINT_FIELD] = fingerprint(fields)
        hashes[series] = fields
    return hashes


def fingerprint(fields: Mapping[str, str]) -> str:
    """A hash of every field but the fingerprint itself, in name order."""
    digest = hashlib.sha1()
    for name in sorted(fields):
        if name != FINGERPRINT_FIELD:
            digest.update(f"{name}\x00{fields[name]}\x00".encode())
    return digest.hexdigest()[:16]


def group_names(marts: MartRows) -> dict[str, list[str]]:
    """The feature names per group, in the marts' column order."""
    names = {
        group: [name for name in marts.columns[group] if name.startswith(f"{group}_")] for group in GROUPS
    }
    names["futr"].append(TARGET_DS)
    return names


# -- writing -----------------------------------------------------------------------------------


def stored_fingerprints(client: redis.Redis, keys: Sequence[str]) -> list[str | None]:
    """The fingerprint of each key's hash (None where there is none), in one round trip."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, FINGERPRINT_FIELD)
    return [None if found is None else found.decode() for found in pipe.execute()]


def write_hashes(client: redis.Redis, items: Iterable[tuple[str, Mapping[str, str]]]) -> int:
    """Replace each key's hash with its fields (MULTI/EXEC per chunk); the number written."""
    written = 0
    pipe = client.pipeline(transaction=True)
    for key, fields in items:
        # A column dropped from the marts must not linger: the hash is replaced, not merged.
        pipe.delete(key)
        pipe.hset(key, mapping=dict(fields))
        written += 1
        if written % WRITE_CHUNK == 0:
            pipe.execute()
    pipe.execute()
    return written


def materialize(
    loto: str | None = None,
    *,
    url: str | None = None,
    client: redis.Redis | None = None,
    current: settings.Settings | None = None,
) -> MaterializeResult:
    """Write the series' latest marts rows whose fingerprint changed; what was done.

    Parameters
    ----------
    loto : str, optional
        Only the series of this lottery (default: every series).
    url : str, optional
        PostgreSQL URL (default: the settings' database).
    client : redis.Redis, optional
        Redis client (default: the settings' ``redis.url``, else the embedded Redis).
    current : Settings, optional
        Read for ``redis.key_prefix`` (default :func:`python_jobs.settings.get`).
    """
    start = time.perf_counter()
    current = current or settings.get()
    version = layout().version
    keys = ServingKeys(current.redis.key_prefix, version)
    marts = read_marts(url, loto)
    hashes = build_hashes(marts, version)
    if client is None:
        client, _ = connect(current=current)
    ordered = [(keys.materialized(*series), fields) for series, fields in hashes.items()]
    stored = stored_fingerprints(client, [key for key, _ in ordered])
    changed = [
        (key, fields)
        for (key, fields), old in zip(ordered, stored, strict=True)
        if old != fields[FINGERPRINT_FIELD]
    ]
    written = write_hashes(client, changed)
    if hashes:
        client.set(keys.materialized_names, json.dumps(group_names(marts)))
    result = MaterializeResult(
        len(hashes), written, len(hashes) - written, version, time.perf_counter() - start
    )
    log.info("materialize.done", loto=loto or "all", series=result.series, written=written)
    return result
