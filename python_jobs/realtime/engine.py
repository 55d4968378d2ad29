"""``RealTimeFeatureEngine``: the features of ``features_hist``, one point at a time.

For a series fed point by point, ``update(key, ts, value)`` returns after each point the
columns that ``features_hist`` holds for that series and date, under the same names and with
the same values (NULL as ``None``): lags, diffs, pct changes, rolling mean/std/min/max/median/
quartiles/IQR, z-scores, deviations, outlier flags, drawdown/drawup, trend slope, lag-1
autocorrelation, and the Python job's left matrix profile and isolation-forest score; plus the
market indicators of :mod:`python_jobs.realtime.indicators`. ``update_draw`` feeds a whole
lottery draw and adds the lottery-domain columns (:mod:`python_jobs.realtime.domain`).

Windows, lags, diffs, pct changes, frequency windows and the matrix-profile length are the dbt
vars of ``dbt_project.yml`` (``python_jobs.definitions``). Every series' state lives in shared
arrays updated by one compiled kernel (:mod:`python_jobs.realtime.kernel`), so the cost of an
update depends on the windows only, not on the history, and ``update_many`` updates a batch of
points of many series in one call. The two history-wide columns (matrix profile, isolation
forest) are optional (``history_features``): they keep the whole series.

A point with the same timestamp as its series' newest one replaces it (``on_same_ts="replace"``,
the setting ``online.on_same_ts``): the current bar of a market feed updates until it closes,
and every column is recomputed as if only the new value had ever been seen, as talipp's
``update`` does. The kernel keeps, per series, what its newest point overwrote, so a
replacement costs one more pass over the series' state row, never a replay. With ``"drop"``
such a point raises :class:`OrderError` (``duplicate``). ``update_draw`` never replaces: a
draw's lottery-domain state has no undo, so a second draw on the same date is refused.

``max_keys`` bounds the series held: a new key beyond it takes the slot of the least recently
updated one, whose state starts again from empty. The state is saved and restored as data only
(:meth:`RealTimeFeatureEngine.to_state`, written and checked by :mod:`python_jobs.realtime.state`).
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from python_jobs import settings
from python_jobs.realtime import kernel
from python_jobs.realtime.domain import DOMAIN_ARRAYS, LotteryDomain, domain_columns
from python_jobs.realtime.history import SeriesHistory, subsequence_count
from python_jobs.realtime.indicators import STATE_SIZE
from python_jobs.realtime.layout import FeatureLayout, layout

Timestamp = str | dt.date | dt.datetime | np.datetime64 | int | float
#: What a point with the same timestamp as its series' newest one does (``online.on_same_ts``).
SAME_TS_MODES = ("replace", "drop")


class OrderError(ValueError):
    """A point is not after the series' newest one: ``reason`` is ``duplicate`` or ``out_of_order``."""

    def __init__(self, key: str, ts: float, last: float) -> None:
        self.reason = "duplicate" if ts == last else "out_of_order"
        super().__init__(f"{key}: point at {ts} is {self.reason.replace('_', ' ')} (newest {last})")


def to_epoch(ts: Timestamp) -> float:
    """Epoch seconds of an ISO-8601 string, a date (midnight UTC), a datetime or a number.

    Naive datetimes and strings without an offset are taken as UTC.
    """
    if isinstance(ts, (bool, np.bool_)):
        raise TypeError("a timestamp cannot be a boolean")
    if isinstance(ts, np.datetime64):
        ts = ts.astype("datetime64[us]").item()
    if isinstance(ts, numbers.Real):
        value = float(ts)
        if not math.isfinite(value):
            raise ValueError(f"timestamp {ts!r} is not finite")
        return value
    if isinstance(ts, str):
        ts = dt.datetime.fromisoformat(ts.strip())
    if isinstance(ts, dt.datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=dt.UTC)
        return ts.timestamp()
    if isinstance(ts, dt.date):
        return dt.datetime(ts.year, ts.month, ts.day, tzinfo=dt.UTC).timestamp()
    raise TypeError(f"timestamp {ts!r} is not an ISO-8601 string, date, datetime or epoch seconds")


class RealTimeFeatureEngine:
    """Incremental ``features_hist`` columns and market indicators per series key.

    Parameters
    ----------
    overrides : str or mapping, optional
        dbt ``--vars`` overrides of the feature definitions (as ``definitions.load`` takes them).
    history_features : bool
        Also compute ``hist_y_mp_left_m{m}`` and ``hist_y_iforest_score``, which keep the whole
        series (default True). A market-data service turns them off to keep memory and cost
        per update bounded.
    capacity : int
        Series slots allocated up front (grown by doubling, never past ``max_keys``).
    max_keys : int, optional
        Most series held. When a new key arrives and ``max_keys`` are held, the least recently
        updated key is evicted: its slot is reused and reset, its history and (with the last
        position of its lottery) its lottery state dropped, :attr:`evicted` counts it and
        :attr:`on_evict` is called with it. None (the default) holds every key seen.
    on_same_ts : {"replace", "drop"}, optional
        A point with the same timestamp as its series' newest one replaces it (``replace``)
        or raises :class:`OrderError` (``drop``). Default: the setting ``online.on_same_ts``.

    Attributes
    ----------
    evicted : int
        Keys evicted so far.
    replaced : int
        Points that replaced their series' newest one so far.
    on_evict : callable, optional
        Called with each evicted key (an intake forgets the key's ordering state with it).

    Examples
    --------
    >>> engine = RealTimeFeatureEngine(history_features=False)
    >>> for day, y in enumerate([3.0, 5.0, 4.0], start=1):
    ...     features = engine.update("loto6:N1", f"2024-01-0{day}", y)
    >>> features["hist_y_lag1"], features["hist_y_roll_mean_w3"]
    (5.0, 4.0)
    """

    def __init__(
        self,
        overrides: str | Mapping[str, Any] | None = None,
        *,
        history_features: bool = True,
        capacity: int = 64,
        max_keys: int | None = None,
        on_same_ts: str | None = None,
    ) -> None:
        on_same_ts = settings.get().online.on_same_ts if on_same_ts is None else on_same_ts
        if on_same_ts not in SAME_TS_MODES:
            raise ValueError(f"on_same_ts must be one of {', '.join(SAME_TS_MODES)}, got {on_same_ts!r}")
        if max_keys is not None and (
            isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1
        ):
            raise ValueError(f"max_keys must be a positive integer or None, got {max_keys!r}")
        self.layout: FeatureLayout = layout(overrides)
        self.history_features = history_features
        self.max_keys = max_keys
        self.on_same_ts = on_same_ts
        self.evicted = 0
        self.replaced = 0
        self.on_evict: Callable[[str], None] | None = None
        self._arrays = self.layout.kernel_arrays
        # key -> slot, least recently updated first: the front is the next key evicted.
        self._slots: OrderedDict[str, int] = OrderedDict()
        self._keys: list[str] = []  # the key of each slot in use
        self._histories: dict[int, SeriesHistory] = {}
        self._domains: dict[str, LotteryDomain] = {}
        self._allocate(self._bounded(max(1, capacity)))

    # -- state ------------------------------------------------------------------------------

    @cached_property
    def state_arrays(self) -> dict[str, tuple[type, tuple[int, ...], float]]:
        """Per-series kernel state: name -> (dtype, shape of one series' row, value when empty)."""
        return {
            "ring": (np.float64, (self.layout.history,), 0.0),
            "head": (np.int64, (), -1),
            "count": (np.int64, (), 0),
            "run_max": (np.float64, (), 0.0),
            "run_min": (np.float64, (), 0.0),
            "sorted": (np.float64, (sum(self.layout.state_windows),), 0.0),
            "ind": (np.float64, (STATE_SIZE,), 0.0),
            "last_ts": (np.float64, (), -np.inf),
            # What the newest point overwrote: a point of the same timestamp replaces it.
            "undo": (np.float64, (kernel.undo_size(STATE_SIZE),), 0.0),
        }

    def _bounded(self, rows: int) -> int:
        return rows if self.max_keys is None else min(rows, self.max_keys)

    def _allocate(self, capacity: int) -> None:
        for name, (dtype, shape, empty) in self.state_arrays.items():
            setattr(self, f"_{name}", np.full((capacity, *shape), empty, dtype=dtype))

    def _grow(self) -> None:
        old = {name: getattr(self, f"_{name}") for name in self.state_arrays}
        self._allocate(self._bounded(2 * len(self._count)))
        for name, values in old.items():
            getattr(self, f"_{name}")[: len(values)] = values

    def _reset(self, slot: int) -> None:
        for name, (_, _, empty) in self.state_arrays.items():
            getattr(self, f"_{name}")[slot] = empty

    def slot(self, key: str) -> int:
        """The state row of ``key``, created on first use (evicting a key when ``max_keys`` are held)."""
        found = self._slots.get(key)
        if found is not None:
            return found
        if not isinstance(key, str) or not key:
            raise ValueError(f"series key must be a non-empty string, got {key!r}")
        if self.max_keys is not None and len(self._slots) >= self.max_keys:
            found = self._evict()
            self._keys[found] = key
        else:
            if len(self._keys) == len(self._count):
                self._grow()
            found = len(self._keys)
            self._keys.append(key)
        self._slots[key] = found
        if self.history_features:
            self._histories[found] = SeriesHistory(self.layout.defs.mp_window)
        return found

    def _evict(self) -> int:
        """Drop the least recently updated key; return its slot, reset to the empty state."""
        key, slot = self._slots.popitem(last=False)
        self._reset(slot)
        self._histories.pop(slot, None)
        loto = key.split(":", 1)[0]
        # A lottery's domain state is shared by its positions: it goes with the last of them.
        if loto in self._domains and not any(held.startswith(f"{loto}:") for held in self._slots):
            del self._domains[loto]
        self.evicted += 1
        if self.on_evict is not None:
            self.on_evict(key)
        return slot

    def _next_evicted_slot(self) -> int | None:
        """The slot a new key would take from the least recently updated one, if the engine is full."""
        if self.max_keys is None or len(self._slots) < self.max_keys:
            return None
        return self._slots[next(iter(self._slots))]

    @property
    def keys(self) -> list[str]:
        """Series keys held, least recently updated first."""
        return list(self._slots)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the columns ``update`` returns (without the lottery-domain ones)."""
        extra = self.history_names if self.history_features else ()
        return (*self.layout.names, *extra)

    @property
    def history_names(self) -> tuple[str, str]:
        return (f"hist_y_mp_left_m{self.layout.defs.mp_window}", "hist_y_iforest_score")

    def last_timestamp(self, key: str) -> float | None:
        slot = self._slots.get(key)
        return None if slot is None else float(self._last_ts[slot])

    # -- updates ----------------------------------------------------------------------------

    def update_many(self, keys: Sequence[str], ts: Sequence[float], values: Sequence[float]) -> np.ndarray:
        """Apply points in order (epoch seconds, finite values); one row of features per point.

        The columns are :attr:`FeatureLayout.names` (booleans as 0/1, NULL as NaN); the
        history-wide columns are not included. A point at its series' newest timestamp
        replaces the newest point when :attr:`on_same_ts` is ``replace`` (counted in
        :attr:`replaced`). Raises :class:`OrderError` for a point before its series' newest
        one, or at it under ``drop`` (the points before it are applied), and ValueError for a
        batch with a value that is not finite (nothing is applied).
        """
        values = np.asarray(values, dtype=float)
        if len(values) != len(keys):
            raise ValueError(f"{len(keys)} keys but {len(values)} values")
        if not np.isfinite(values).all():
            raise ValueError("feature values must be finite")
        slots = np.empty(len(keys), dtype=np.int64)
        replaces = np.zeros(len(keys), dtype=np.bool_)
        out = np.empty((len(keys), len(self.layout.names)))
        held, applied = self._slots, 0
        may_replace = self.on_same_ts == "replace"
        for i, (key, stamp) in enumerate(zip(keys, ts, strict=True)):
            slot = held.get(key)
            if slot is None:
                victim = self._next_evicted_slot()
                if victim is not None and (slots[applied:i] == victim).any():
                    # More keys in one batch than max_keys: the points of the key about to be
                    # evicted are applied before its slot is reused.
                    self._apply(slots, values, replaces, out, applied, i)
                    applied = i
                slot = self.slot(key)
            else:
                held.move_to_end(key)
            last = self._last_ts[slot]
            if not stamp > last:
                if not (may_replace and stamp == last):
                    self._apply(slots, values, replaces, out, applied, i)
                    raise OrderError(key, stamp, last)
                replaces[i] = True
                self.replaced += 1
            self._last_ts[slot] = stamp
            slots[i] = slot
        self._apply(slots, values, replaces, out, applied, len(keys))
        return out

    def _apply(
        self,
        slots: np.ndarray,
        values: np.ndarray,
        replaces: np.ndarray,
        out: np.ndarray,
        start: int,
        stop: int,
    ) -> None:
        """Run the kernel on points ``start:stop`` of a batch."""
        if start >= stop:
            return
        arrays = self._arrays
        kernel.update_batch(
            slots[start:stop], values[start:stop], replaces[start:stop], self._ring, self._head,
            self._count, self._run_max, self._run_min, self._sorted, self._ind, self._undo,
            arrays["lags"], arrays["diffs"], arrays["pcts"], arrays["windows"],
            arrays["window_columns"], arrays["fixed_index"], arrays["slots"],
            arrays["outlier_limits"], out[start:stop],
        )  # fmt: skip

    def update(self, key: str, ts: Timestamp, value: float) -> dict[str, float | bool | None]:
        """Add one point to series ``key``; return the series' features after it.

        Parameters
        ----------
        key : str
            Any series name: a symbol, or ``loto:unique_id`` such as ``loto6:N1``.
        ts : str, date, datetime, int or float
            ISO-8601 string, date, datetime or epoch seconds; after the series' newest point,
            or at it to replace that point (:attr:`on_same_ts` ``replace``).
        value : float
            A finite value.

        Returns
        -------
        dict
            Column name to value: floats, booleans for the outlier flags, ``None`` for NULL.

        Raises
        ------
        OrderError
            ``ts`` is before the series' newest point, or at it under ``drop`` (nothing changes).
        ValueError
            ``value`` is not a finite number.
        """
        stamp = to_epoch(ts)
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{key}: value {value!r} is not finite")
        replaced = self.replaced
        row = self.update_many([key], [stamp], [number])[0]
        features = self.as_dict(row)
        if self.history_features:
            history = self._histories[self._slots[key]]
            step = history.replace_last if self.replaced > replaced else history.update
            mp_left, score = step(number)
            for name, result in zip(self.history_names, (mp_left, score), strict=True):
                features[name] = None if math.isnan(result) else result
        return features

    def as_dict(self, row: np.ndarray) -> dict[str, float | bool | None]:
        """One output row of :meth:`update_many` as a dict with ``None`` and booleans."""
        features: dict[str, float | bool | None] = {}
        for name, result in zip(self.layout.names, row.tolist(), strict=True):
            features[name] = None if math.isnan(result) else result
        for name in self.layout.boolean_columns:
            if features[name] is not None:
                features[name] = features[name] == 1.0
        return features

    def update_draw(
        self, loto: str, ds: Timestamp, numbers: Mapping[str, float] | Sequence[float]
    ) -> dict[str, dict[str, float | bool | None]]:
        """Add a whole draw of lottery ``loto``: every position's features and domain columns.

        Parameters
        ----------
        loto : str
            The lottery (``loto6``, ``bingo5``, ...); each position is the series ``loto:uid``.
        ds : str, date, datetime or number
            The draw date.
        numbers : mapping or sequence
            ``unique_id -> y`` (``N1..Nk`` main numbers, ``B1..`` bonus numbers), or the main
            numbers alone in position order (``N1, N2, ...``).

        Returns
        -------
        dict
            ``unique_id`` to that position's columns (those of :meth:`update` and the
            lottery-domain ones).
        """
        if not isinstance(numbers, Mapping):
            numbers = {f"N{i}": y for i, y in enumerate(numbers, start=1)}
        positions = {uid: float(y) for uid, y in numbers.items()}
        stamp = to_epoch(ds)
        for uid in positions:
            last = self.last_timestamp(f"{loto}:{uid}")
            if last is not None and not stamp > last:
                raise OrderError(f"{loto}:{uid}", stamp, last)
        domain = self._domains.get(loto)
        if domain is None:
            domain = self._domains[loto] = LotteryDomain(self.layout.defs.freq_windows, loto)
        counts = domain.update(positions)
        out = {}
        for uid, y in positions.items():
            features = self.update(f"{loto}:{uid}", stamp, y)
            features.update(counts[uid])
            out[uid] = features
        return out

    def domain_names(self) -> tuple[str, ...]:
        return domain_columns(self.layout.defs.freq_windows)

    # -- warm start -------------------------------------------------------------------------

    def replay_draws(self, rows: Iterable[tuple[str, str, Any, float]]) -> int:
        """Feed rows ``(loto, unique_id, ds, y)`` sorted by loto and ds as whole draws; count them."""
        fed = 0
        current: tuple[str, Any] | None = None
        draw: dict[str, float] = {}
        for loto, uid, ds, y in rows:
            if current is not None and (loto, ds) != current:
                self.update_draw(current[0], current[1], draw)
                draw = {}
            current = (loto, ds)
            draw[uid] = float(y)
            fed += 1
        if current is not None:
            self.update_draw(current[0], current[1], draw)
        return fed

    def warm_start_from_postgres(
        self,
        url: str | None = None,
        lotos: Sequence[str] | None = None,
        *,
        market_loto: str | None = None,
    ) -> int:
        """Replay every row of ``stg_lottery__draws`` (optionally of ``lotos`` only).

        A lottery's rows are replayed as whole draws (keys ``loto:unique_id``). The rows of
        ``market_loto`` (default ``online.market_loto``), where the service stores the points
        of its stream, are replayed point by point under their ``unique_id``: the symbol, the
        key the live stream updates, so the stream continues the replayed series.

        The whole history is replayed, not a recent slice: gap, streak, drawdown, the matrix
        profile and the isolation forest depend on every earlier row, and a lottery's history
        is a few thousand draws. Returns the rows fed.
        """
        from psycopg import sql

        from python_jobs import config, db

        market = settings.get().online.market_loto if market_loto is None else market_loto
        query = sql.SQL("select loto, unique_id, ds, y from {}{} order by loto, ds, unique_id").format(
            db.qualified(config.STAGING_MODEL),
            sql.SQL(" where loto = any(%s)") if lotos else sql.SQL(""),
        )
        with db.connect(url or db.database_url()) as conn:
            rows = conn.execute(query, (list(lotos),) if lotos else ()).fetchall()
        points = [(uid, to_epoch(ds), float(y)) for loto, uid, ds, y in rows if loto == market]
        if self.history_features:
            for symbol, stamp, value in points:
                self.update(symbol, stamp, value)
        elif points:
            symbols, stamps, values = zip(*points, strict=True)
            self.update_many(symbols, stamps, values)
        return len(points) + self.replay_draws(row for row in rows if row[0] != market)

    # -- saved state ----------------------------------------------------------------------

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The engine as a JSON-ready header and plain arrays (no Python objects).

        Series rows are in eviction order (least recently updated first). Arrays: the kernel
        state (:attr:`state_arrays`); with ``history_features`` each series' history laid end
        to end (``history_n`` values per series, then its subsequence statistics); per lottery
        ``domain{i}_{name}`` (:data:`~python_jobs.realtime.domain.DOMAIN_ARRAYS`).
        :mod:`python_jobs.realtime.state` writes them and checks them before :meth:`from_state`.
        """
        order = np.fromiter(self._slots.values(), dtype=np.int64, count=len(self._slots))
        arrays = {name: getattr(self, f"_{name}")[order] for name in self.state_arrays}
        if self.history_features:
            arrays.update(self._history_arrays(order))
        lotteries = []
        for i, (loto, domain) in enumerate(self._domains.items()):
            lotteries.append({"loto": loto, "draws": domain.draws})
            arrays.update({f"domain{i}_{name}": values for name, values in domain.to_arrays().items()})
        header = {
            "version": self.layout.version,
            "defs": self.layout.defs.as_vars(),
            "history_features": self.history_features,
            "max_keys": self.max_keys,
            "keys": list(self._slots),
            "lotteries": lotteries,
        }
        return header, arrays

    def _history_arrays(self, order: np.ndarray) -> dict[str, np.ndarray]:
        parts = [self._histories[slot].to_arrays() for slot in order.tolist()]

        def joined(index: int, dtype: type) -> np.ndarray:
            return np.concatenate([part[index] for part in parts]) if parts else np.empty(0, dtype=dtype)

        return {
            "history_n": np.asarray([len(part[0]) for part in parts], dtype=np.int64).reshape(-1),
            "history_values": joined(0, np.float64),
            "history_means": joined(1, np.float64),
            "history_stds": joined(2, np.float64),
            "history_constant": joined(3, np.bool_),
        }

    @classmethod
    def from_state(
        cls, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *, max_keys: int | None = None
    ) -> RealTimeFeatureEngine:
        """The engine :meth:`to_state` described; the caller has checked every array and field.

        ``max_keys`` replaces the saved bound; when fewer keys are allowed than were saved,
        only the most recently updated ones are restored.
        """
        bound = header["max_keys"] if max_keys is None else max_keys
        keys = list(header["keys"])
        keep = len(keys) if bound is None else min(len(keys), bound)
        first = len(keys) - keep
        engine = cls(
            header["defs"], history_features=header["history_features"], capacity=keep, max_keys=bound
        )
        for name in engine.state_arrays:
            getattr(engine, f"_{name}")[:keep] = arrays[name][first:]
        engine._keys = keys[first:]
        engine._slots = OrderedDict((key, slot) for slot, key in enumerate(engine._keys))
        if engine.history_features:
            engine._restore_histories(arrays, first)
        for i, lottery in enumerate(header["lotteries"]):
            loto = lottery["loto"]
            # A lottery none of whose positions was kept goes, as on eviction.
            if first and not any(key.startswith(f"{loto}:") for key in engine._keys):
                continue
            own = {name: arrays[f"domain{i}_{name}"] for name in DOMAIN_ARRAYS}
            engine._domains[loto] = LotteryDomain.from_arrays(
                engine.layout.defs.freq_windows, loto, lottery["draws"], own
            )
        return engine

    def _restore_histories(self, arrays: Mapping[str, np.ndarray], first: int) -> None:
        m = self.layout.defs.mp_window
        counts = arrays["history_n"].tolist()
        value_at = sub_at = 0
        for row, n in enumerate(counts):
            held = subsequence_count(n, m)
            if row >= first:
                self._histories[row - first] = SeriesHistory.from_arrays(
                    m,
                    arrays["history_values"][value_at : value_at + n],
                    arrays["history_means"][sub_at : sub_at + held],
                    arrays["history_stds"][sub_at : sub_at + held],
                    arrays["history_constant"][sub_at : sub_at + held],
                )
            value_at, sub_at = value_at + n, sub_at + held
