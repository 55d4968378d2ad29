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
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from python_jobs import settings
from python_jobs.realtime.layout import layout
from python_jobs.realtime.materialize import GROUPS, ts_field
from python_jobs.realtime.store import ServingKeys, decode_latest

PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE = "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"
#: The event time of a value that was not found (Feast's answer too).
NO_TIMESTAMP = "1970-01-01T00:00:00Z"
#: Feature lists whose plan a catalog keeps (requests tend to repeat theirs).
PLANS_KEPT = 256
#: The group whose maximum age applies to the stream's columns.
STREAM_GROUP = "hist"


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


@dataclass(frozen=True)
class Catalog:
    """The features served, each with its group; the stream's column order and booleans."""

    groups: dict[str, str]
    stream_names: tuple[str, ...] = ()
    stream_booleans: frozenset[str] = frozenset()
    loaded_at: float = field(default_factory=time.monotonic)
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


async def read_catalog(client: Any, keys: ServingKeys) -> Catalog:
    """The catalog from Redis (one round trip)."""
    materialized, stream = await client.mget([keys.materialized_names, keys.names])
    return Catalog.from_json(materialized, stream)


@dataclass
class Source:
    """One entity's hashes as read: materialized fields (bytes) and the stream's point, if any."""

    fields: dict[bytes, bytes]
    stream_ts: float | None = None
    stream_values: list[float] | None = None


async def read_sources(
    client: Any, keys: ServingKeys, entities: Sequence[tuple[str, str]], market: str, catalog: Catalog
) -> list[Source]:
    """Both hashes of every entity, in one pipelined round trip."""
    pipe = client.pipeline(transaction=False)
    for loto, unique_id in entities:
        pipe.hgetall(keys.materialized(loto, unique_id))
        if loto == market and catalog.stream_names:
            pipe.hgetall(keys.latest(unique_id))
    replies = iter(await pipe.execute())
    sources = []
    for loto, _ in entities:
        source = Source(next(replies))
        if loto == market and catalog.stream_names:
            latest = decode_latest(next(replies), catalog.stream_names)
            if latest is not None:
                source.stream_ts, source.stream_values = latest
        sources.append(source)
    return sources


def _decode_all(texts: list[bytes]) -> list[Any]:
    # One parse for every value of an entity: each is a JSON text written by materialize.
    return json.loads(b"[" + b",".join(texts) + b"]") if texts else []


@dataclass(frozen=True)
class Plan:
    """How to read each feature of a request: hash field, group, stream column, boolean."""

    features: tuple[str, ...]
    fields: tuple[bytes, ...]
    groups: tuple[int, ...]
    stream_columns: tuple[int, ...]  # -1: the stream does not compute it
    booleans: tuple[bool, ...]


def plan(catalog: Catalog, features: Sequence[str]) -> Plan:
    """The :class:`Plan` of ``features`` (all known to ``catalog``)."""
    stream_index = {name: i for i, name in enumerate(catalog.stream_names)}
    return Plan(
        tuple(features),
        tuple(name.encode() for name in features),
        tuple(GROUPS.index(catalog.groups[name]) for name in features),
        tuple(stream_index.get(name, -1) for name in features),
        tuple(name in catalog.stream_booleans for name in features),
    )


@dataclass
class Columns:
    """The response's columns: per feature, the values, statuses and event times in entity order."""

    values: list[list[Any]]
    statuses: list[list[str]]
    event_timestamps: list[list[str]]


_TS_FIELDS = tuple(ts_field(group).encode() for group in GROUPS)
_STREAM_GROUP = GROUPS.index(STREAM_GROUP)


class _Times:
    """Event times as text (each converted once a request) and whether they are past their limit."""

    def __init__(self, max_age: Mapping[str, float | None], now: float) -> None:
        self.limits = [max_age[group] for group in GROUPS]
        self.now = now
        self._texts: dict[float, str] = {}

    def describe(self, ts: float | None, group: int) -> tuple[str, bool]:
        """``(ISO text, past the group's maximum age)`` of ``ts``."""
        if ts is None:
            return NO_TIMESTAMP, False
        text = self._texts.get(ts)
        if text is None:
            text = self._texts[ts] = iso(ts)
        limit = self.limits[group]
        return text, limit is not None and self.now - ts > limit


def assemble(
    sources: Sequence[Source],
    how: Plan,
    max_age: Mapping[str, float | None],
    now: float | None = None,
) -> Columns:
    """The response's columns: one per feature, values in entity order (see the module's rules)."""
    times = _Times(max_age, time.time() if now is None else now)
    n = len(sources)
    columns = Columns(
        [[None] * n for _ in how.fields],
        [[NOT_FOUND] * n for _ in how.fields],
        [[NO_TIMESTAMP] * n for _ in how.fields],
    )
    for e, source in enumerate(sources):
        _fill_entity(columns, e, source, how, times)
    return columns


def _fill_entity(columns: Columns, e: int, source: Source, how: Plan, times: _Times) -> None:
    """Entity ``e``'s values: from the stream where it wins, else from the materialized hash."""
    fields, stream = source.fields, source.stream_values
    stamps = [fields.get(field) for field in _TS_FIELDS]
    group_ts = [None if stamp is None else float(stamp) for stamp in stamps]
    described = [times.describe(ts, group) for group, ts in enumerate(group_ts)]
    hist_ts = group_ts[_STREAM_GROUP]
    newer = stream is not None and (hist_ts is None or source.stream_ts > hist_ts)
    stream_text, stream_stale = times.describe(source.stream_ts, _STREAM_GROUP)
    values, statuses, event_timestamps = columns.values, columns.statuses, columns.event_timestamps
    pending: list[int] = []
    texts: list[bytes] = []
    for f, key in enumerate(how.fields):
        column = how.stream_columns[f]
        if column >= 0 and stream is not None and (newer or key not in fields):
            value = stream[column]
            value = None if value != value else (bool(value) if how.booleans[f] else value)
            values[f][e] = value
            statuses[f][e] = OUTSIDE_MAX_AGE if stream_stale else (NULL_VALUE if value is None else PRESENT)
            event_timestamps[f][e] = stream_text
            continue
        text = fields.get(key)
        if text is not None and group_ts[how.groups[f]] is not None:
            pending.append(f)
            texts.append(text)
    for f, value in zip(pending, _decode_all(texts), strict=True):
        text, stale = described[how.groups[f]]
        values[f][e] = value
        statuses[f][e] = OUTSIDE_MAX_AGE if stale else (NULL_VALUE if value is None else PRESENT)
        event_timestamps[f][e] = text


def max_ages(current: settings.Settings) -> dict[str, float | None]:
    """Each group's maximum age from ``serving.max_age_*_s`` (None: no limit)."""
    serving = current.serving
    return {"hist": serving.max_age_hist_s, "stat": serving.max_age_stat_s, "futr": serving.max_age_futr_s}
