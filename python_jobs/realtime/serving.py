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


def _stream_wins(source: Source) -> bool:
    if source.stream_ts is None:
        return False
    hist_ts = source.fields.get(ts_field("hist").encode())
    return hist_ts is None or source.stream_ts > float(hist_ts)


def _decode_all(texts: list[bytes]) -> list[Any]:
    # One parse for every value of a request: each is a JSON text written by materialize.
    return json.loads(b"[" + b",".join(texts) + b"]") if texts else []


@dataclass
class Column:
    """One feature's values, statuses and event times over the request's entities."""

    values: list[Any]
    statuses: list[str]
    event_timestamps: list[str]


def assemble(
    sources: Sequence[Source],
    features: Sequence[str],
    catalog: Catalog,
    max_age: Mapping[str, float | None],
    now: float | None = None,
) -> list[Column]:
    """The response's columns: one per feature, values in entity order (see the module's rules)."""
    now = time.time() if now is None else now
    stream_index = {name: i for i, name in enumerate(catalog.stream_names)}
    columns = [
        Column([None] * len(sources), [NOT_FOUND] * len(sources), [NO_TIMESTAMP] * len(sources))
        for _ in features
    ]
    stamps: dict[float, str] = {}
    for e, source in enumerate(sources):
        stream = _stream_wins(source)
        pending: list[tuple[int, float]] = []
        texts: list[bytes] = []
        for f, name in enumerate(features):
            group = catalog.groups[name]
            if (
                name in stream_index
                and (stream or name.encode() not in source.fields)
                and source.stream_values
            ):
                value = source.stream_values[stream_index[name]]
                value = (
                    None if value != value else (bool(value) if name in catalog.stream_booleans else value)
                )
                _set(columns[f], e, value, source.stream_ts, max_age[group], now, stamps)
                continue
            text = source.fields.get(name.encode())
            ts = source.fields.get(ts_field(group).encode())
            if text is not None and ts is not None:
                pending.append((f, float(ts)))
                texts.append(text)
        for (f, ts), value in zip(pending, _decode_all(texts), strict=True):
            _set(columns[f], e, value, ts, max_age[catalog.groups[features[f]]], now, stamps)
    return columns


def _set(
    column: Column, e: int, value: Any, ts: float, limit: float | None, now: float, stamps: dict
) -> None:
    column.values[e] = value
    if limit is not None and now - ts > limit:
        column.statuses[e] = OUTSIDE_MAX_AGE
    else:
        column.statuses[e] = NULL_VALUE if value is None else PRESENT
    text = stamps.get(ts)
    if text is None:
        text = stamps[ts] = iso(ts)
    column.event_timestamps[e] = text


def max_ages(current: settings.Settings) -> dict[str, float | None]:
    """Each group's maximum age from ``serving.max_age_*_s`` (None: no limit)."""
    serving = current.serving
    return {"hist": serving.max_age_hist_s, "stat": serving.max_age_stat_s, "futr": serving.max_age_futr_s}
