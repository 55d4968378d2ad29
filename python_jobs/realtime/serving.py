"""One feature vector per series: the materialized marts rows and the stream's newest point.

What the HTTP API (:mod:`python_jobs.realtime.api`) serves, kept apart from the web framework.
Each entity is a series, ``(loto, unique_id)``. Its values come from two hashes, read for a
whole request in one Redis round trip (a pipeline):

- the materialized hash (:mod:`python_jobs.realtime.materialize`): the ``hist_*``, ``stat_*``,
  ``futr_*`` columns and ``target_ds`` of its latest marts rows, each group with its event time;
- the online service's latest hash (:mod:`python_jobs.realtime.store`), for the series of the
  stream's lottery (``online.market_loto``, ``market`` by default; the symbol is the
  ``unique_id``): the engine's columns after its newest point, event time that point's time.

Precedence: a column the stream computes (the ``hist_*`` columns of the engine and the market
indicators) comes from the stream when the stream's point is newer than the materialized
``features_hist`` row, or when the series has no materialized row; otherwise from the
materialized row, so a served vector equals the training row of its date. The columns only the
marts hold (lottery-domain and Python-job ``hist_*`` columns, ``stat_*``, ``futr_*``) always
come from the materialized row, with their own event times.

Statuses, per value: ``NOT_FOUND`` (neither hash holds the feature for the series: an unknown
series, or a stream-only column of a series with no stream), ``OUTSIDE_MAX_AGE`` (its event time
is older than its group's ``serving.max_age_*_s``; the value is still returned), else
``NULL_VALUE`` (NULL) or ``PRESENT``.

How it stays fast (one entity with every feature costs a fraction of a millisecond of CPU):
the materialized hash is read whole (HGETALL: HMGET of some 300 names costs more to send than
to answer) and taken in the plan's field order in one pass; its values are JSON text as
:func:`~python_jobs.realtime.materialize.encode` wrote them and go into the response as they
are, never decoded; the precedence and statuses are numpy operations over the (entities x
features) grid; and the response is one ``bytes % tuple`` into a template kept per feature
list and entity count (:class:`Plan`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from python_jobs import settings
from python_jobs.realtime.layout import layout
from python_jobs.realtime.materialize import GROUPS, ts_field
from python_jobs.realtime.store import ServingKeys, decode_latest

PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE = "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"
#: The event time of a value that was not found (Feast's answer too).
NO_TIMESTAMP = "1970-01-01T00:00:00Z"
#: Feature lists whose plan a catalog keeps (requests tend to repeat theirs).
PLANS_KEPT = 256
#: Entity counts whose response template a plan keeps.
TEMPLATES_KEPT = 8
#: The group whose maximum age applies to the stream's columns.
STREAM_GROUP = "hist"

_NULL = b"null"
_STATUS = {name: name.encode() for name in (PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE)}
_NO_TIMESTAMP = NO_TIMESTAMP.encode()
_TS_FIELDS = tuple(ts_field(group).encode() for group in GROUPS)
_STREAM_GROUP = GROUPS.index(STREAM_GROUP)


class UnknownFeatures(ValueError):
    """Feature names that neither the marts nor the stream provide."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        shown = ", ".join(self.names[:10]) + (" ..." if len(self.names) > 10 else "")
        super().__init__(f"unknown features ({len(self.names)}): {shown}")


def stream_loto(current: settings.Settings) -> str:
    """The ``loto`` under which the online service's symbols are series (``online.market_loto``)."""
    return current.online.market_loto


def iso(ts: float) -> str:
    """ISO-8601 UTC text of epoch seconds, ``Z`` for UTC.

    >>> iso(1704499200.0), iso(1704499200.25)
    ('2024-01-06T00:00:00Z', '2024-01-06T00:00:00.250000Z')
    """
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=4096)
def _iso_bytes(ts: float) -> bytes:
    # Event times repeat from request to request (a series' rows change once a draw).
    return iso(ts).encode()


# -- the catalog and the plan of a feature list ---------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """The features served, each with its group; the stream's column order and booleans."""

    groups: dict[str, str]
    stream_names: tuple[str, ...] = ()
    stream_booleans: frozenset[str] = frozenset()
    _plans: dict[tuple[str, ...], Plan] = field(default_factory=dict, compare=False, repr=False)

    @property
    def names(self) -> list[str]:
        """Every feature: the marts' in group order, then the stream-only ones."""
        return list(self.groups)

    @classmethod
    def from_json(cls, materialized: bytes | None, stream: bytes | None) -> Catalog:
        """The catalog of the names keys' texts (either may be missing)."""
        groups: dict[str, str] = {}
        per_group = json.loads(materialized) if materialized else {}
        for group in GROUPS:
            for name in per_group.get(group, ()):
                groups[name] = group
        stream_names = tuple(json.loads(stream)) if stream else ()
        for name in stream_names:
            groups.setdefault(name, STREAM_GROUP)
        return cls(groups, stream_names, frozenset(layout().boolean_columns) & set(stream_names))

    def plan(self, features: Sequence[str]) -> Plan:
        """The :class:`Plan` of ``features`` (all known), kept for the next request like it."""
        key = tuple(features)
        found = self._plans.get(key)
        if found is None:
            if len(self._plans) >= PLANS_KEPT:
                self._plans.clear()
            found = self._plans[key] = plan(self, key)
        return found

    def check(self, features: Sequence[str]) -> None:
        """Raise :class:`UnknownFeatures` for names not served."""
        unknown = [name for name in dict.fromkeys(features) if name not in self.groups]
        if unknown:
            raise UnknownFeatures(unknown)


async def read_catalog_texts(client: Any, keys: ServingKeys) -> tuple[bytes | None, bytes | None]:
    """The names keys' texts (materialized, stream), in one round trip: what a catalog is made of."""
    materialized, stream = await client.mget([keys.materialized_names, keys.names])
    return materialized, stream


async def read_catalog(client: Any, keys: ServingKeys) -> Catalog:
    """The catalog from Redis (one round trip)."""
    return Catalog.from_json(*await read_catalog_texts(client, keys))


@dataclass(frozen=True)
class Plan:
    """How to read each feature of a request: hash field, group, stream column (-1: none).

    ``fields`` is what is taken from the materialized hash: the groups' event times, then the
    features. The response templates (one per entity count) are kept here too.
    """

    features: tuple[str, ...]
    fields: tuple[bytes, ...]
    groups: np.ndarray
    stream_columns: np.ndarray
    stream_booleans: np.ndarray  # per feature the stream computes, whether it is a boolean
    _templates: dict[int, bytes] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def from_stream(self) -> np.ndarray:
        """Whether the stream computes each feature."""
        return self.stream_columns >= 0

    @functools.cached_property
    def streamed(self) -> np.ndarray:
        """Positions of the features the stream computes."""
        return np.flatnonzero(self.from_stream)

    @functools.cached_property
    def stream_take(self) -> np.ndarray:
        """Their columns in the stream's vector."""
        return self.stream_columns[self.streamed]

    def template(self, entities: int) -> bytes:
        """The response with ``%b`` for each value, status and event time, feature after feature."""
        found = self._templates.get(entities)
        if found is None:
            if len(self._templates) >= TEMPLATES_KEPT:
                self._templates.clear()
            found = self._templates[entities] = _template(self.features, entities)
        return found


def plan(catalog: Catalog, features: Sequence[str]) -> Plan:
    """The :class:`Plan` of ``features`` (all known to ``catalog``)."""
    stream_index = {name: i for i, name in enumerate(catalog.stream_names)}
    return Plan(
        tuple(features),
        (*_TS_FIELDS, *(name.encode() for name in features)),
        np.array([GROUPS.index(catalog.groups[name]) for name in features], dtype=np.intp),
        np.array([stream_index.get(name, -1) for name in features], dtype=np.intp),
        np.array([name in catalog.stream_booleans for name in features if name in stream_index], dtype=bool),
    )


def _template(features: Sequence[str], entities: int) -> bytes:
    """Feast's response shape with a ``%b`` slot per value, status and event time."""

    def slots(quote: bytes) -> bytes:
        return b",".join([quote + b"%b" + quote] * entities)

    result = b'{"values":[%s],"statuses":[%s],"event_timestamps":[%s]}' % (
        slots(b""),
        slots(b'"'),
        slots(b'"'),
    )
    names = json.dumps(list(features), separators=(",", ":")).encode().replace(b"%", b"%%")
    return b'{"metadata":{"feature_names":%s},"results":[%s]}' % (names, b",".join([result] * len(features)))


# -- reading Redis ---------------------------------------------------------------------------------


@dataclass
class Sources:
    """What a request read: per entity, the materialized fields in the plan's order (bytes or
    None: the groups' event times, then the features) and the stream's point (time, values), if any."""

    materialized: list[list[bytes | None]]
    streams: list[tuple[float, list[float]] | None]


async def read_sources(
    client: Any,
    keys: ServingKeys,
    entities: Sequence[tuple[str, str]],
    market: str,
    catalog: Catalog,
    how: Plan,
) -> Sources:
    """Both hashes of every entity, in one pipelined round trip."""
    streamed = [loto == market and bool(catalog.stream_names) for loto, _ in entities]
    pipe = client.pipeline(transaction=False)
    for (loto, unique_id), has_stream in zip(entities, streamed, strict=True):
        pipe.hgetall(keys.materialized(loto, unique_id))
        if has_stream:
            pipe.hgetall(keys.latest(unique_id))
    replies = iter(await pipe.execute())
    materialized, streams = [], []
    for has_stream in streamed:
        materialized.append(list(map(next(replies).get, how.fields)))
        streams.append(decode_latest(next(replies), catalog.stream_names) if has_stream else None)
    return Sources(materialized, streams)


# -- the response ----------------------------------------------------------------------------------


def response_body(
    sources: Sources, how: Plan, max_age: Mapping[str, float | None], now: float | None = None
) -> bytes:
    """The response's JSON: one result per feature, values in entity order (see the module's rules)."""
    now = time.time() if now is None else now
    grid = np.array(sources.materialized, dtype=object).reshape(len(sources.materialized), len(how.fields))
    marts = _MartsGrid.of(grid, how, max_age, now)
    stream = _StreamGrid.of(sources.streams, how, marts.present, marts.group_ts, max_age, now)
    values = np.where(marts.found, marts.values, _NULL)
    values[stream.used] = stream.values[stream.used]
    stamps = np.where(stream.used, stream.stamps, marts.stamps)
    stale = np.where(stream.used, stream.stale, marts.stale)
    found = marts.found | stream.used
    statuses = np.full(values.shape, _STATUS[PRESENT], dtype=object)
    statuses[values == _NULL] = _STATUS[NULL_VALUE]
    statuses[stale] = _STATUS[OUTSIDE_MAX_AGE]
    statuses[~found] = _STATUS[NOT_FOUND]
    stamps[~found] = _NO_TIMESTAMP
    # Feature-major, as the template reads them: each feature's values, statuses, event times.
    slots = np.stack([values.T, statuses.T, stamps.T], axis=1)
    return how.template(len(grid)) % tuple(slots.ravel().tolist())


def _ages(group_ts: np.ndarray, max_age: Mapping[str, float | None], now: float) -> np.ndarray:
    """Whether each event time (entities x groups, NaN: none) is past its group's maximum age."""
    limits = np.array([np.inf if max_age[group] is None else max_age[group] for group in GROUPS])
    with np.errstate(invalid="ignore"):
        return (now - group_ts) > limits


@dataclass
class _MartsGrid:
    """The materialized side, entities x features: values as stored, where each was found."""

    values: np.ndarray
    present: np.ndarray
    found: np.ndarray
    group_ts: np.ndarray
    stamps: np.ndarray
    stale: np.ndarray

    @classmethod
    def of(cls, grid: np.ndarray, how: Plan, max_age: Mapping[str, float | None], now: float) -> _MartsGrid:
        times = grid[:, : len(GROUPS)]
        values = grid[:, len(GROUPS) :]
        group_ts = np.array([[np.nan if t is None else float(t) for t in row] for row in times], dtype=float)
        group_ts = group_ts.reshape(len(grid), len(GROUPS))
        texts = np.array(
            [[_NO_TIMESTAMP if t != t else _iso_bytes(t) for t in row] for row in group_ts.tolist()],
            dtype=object,
        ).reshape(group_ts.shape)
        present = values.astype(bool)  # None (no such field) is false, every stored text true
        dated = ~np.isnan(group_ts)
        return cls(
            values=values,
            present=present,
            found=present & dated[:, how.groups],
            group_ts=group_ts,
            stamps=texts[:, how.groups],
            stale=_ages(group_ts, max_age, now)[:, how.groups],
        )


@dataclass
class _StreamGrid:
    """The stream's side, entities x features: its values as JSON text, where it wins.

    Only the columns the plan takes from the stream are turned into text.
    """

    used: np.ndarray
    values: np.ndarray
    stamps: np.ndarray  # entities x 1
    stale: np.ndarray  # entities x 1

    @classmethod
    def of(
        cls,
        streams: Sequence[tuple[float, list[float]] | None],
        how: Plan,
        present: np.ndarray,
        group_ts: np.ndarray,
        max_age: Mapping[str, float | None],
        now: float,
    ) -> _StreamGrid:
        shape = present.shape
        has = np.array([point is not None for point in streams], dtype=bool)
        if not has.any() or not len(how.streamed):
            nothing = np.zeros(shape, dtype=bool)
            return cls(
                nothing, np.empty(shape, dtype=object), np.empty((len(streams), 1), object), nothing[:, :1]
            )
        ts = np.array([np.nan if point is None else point[0] for point in streams], dtype=float)
        hist_ts = group_ts[:, _STREAM_GROUP]
        with np.errstate(invalid="ignore"):
            newer = has & (np.isnan(hist_ts) | (ts > hist_ts))
        used = how.from_stream[None, :] & has[:, None] & (newer[:, None] | ~present)
        values = np.full(shape, _NULL, dtype=object)
        for e, point in enumerate(streams):
            if point is not None:
                values[e, how.streamed] = _stream_texts(
                    np.asarray(point[1])[how.stream_take], how.stream_booleans
                )
        stamps = np.array([_NO_TIMESTAMP if t != t else _iso_bytes(t) for t in ts.tolist()], dtype=object)
        limits = np.full((len(streams), len(GROUPS)), np.nan)
        limits[:, _STREAM_GROUP] = ts
        stale = _ages(limits, max_age, now)[:, _STREAM_GROUP]
        return cls(used=used, values=values, stamps=stamps[:, None], stale=stale[:, None])


def _stream_texts(numbers: np.ndarray, booleans: np.ndarray) -> np.ndarray:
    """Stream values as JSON texts: numbers as Python writes them, booleans, null for NaN and inf."""
    texts = np.array(",".join(map(repr, numbers.tolist())).encode().split(b","), dtype=object)
    if booleans.any():
        texts[booleans] = np.where(numbers[booleans] != 0, b"true", b"false")
    texts[~np.isfinite(numbers)] = _NULL
    return texts


def max_ages(current: settings.Settings) -> dict[str, float | None]:
    """Each group's maximum age from ``serving.max_age_*_s`` (None: no limit)."""
    serving = current.serving
    return {"hist": serving.max_age_hist_s, "stat": serving.max_age_stat_s, "futr": serving.max_age_futr_s}
