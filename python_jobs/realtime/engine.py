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
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from python_jobs.realtime import kernel
from python_jobs.realtime.domain import LotteryDomain, domain_columns
from python_jobs.realtime.history import SeriesHistory
from python_jobs.realtime.indicators import STATE_SIZE
from python_jobs.realtime.layout import FeatureLayout, layout

Timestamp = str | dt.date | dt.datetime | np.datetime64 | int | float


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
        Series slots allocated up front (grown by doubling).

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
    ) -> None:
        self.layout: FeatureLayout = layout(overrides)
        self.history_features = history_features
        self._arrays = self.layout.kernel_arrays
        self._slots: dict[str, int] = {}
        self._keys: list[str] = []
        self._histories: dict[int, SeriesHistory] = {}
        self._domains: dict[str, LotteryDomain] = {}
        self._allocate(max(1, capacity))

    # -- state ------------------------------------------------------------------------------

    def _allocate(self, capacity: int) -> None:
        history = self.layout.history
        sorted_width = sum(self.layout.state_windows)
        self._ring = np.zeros((capacity, history))
        self._head = np.full(capacity, -1, dtype=np.int64)
        self._count = np.zeros(capacity, dtype=np.int64)
        self._run_max = np.zeros(capacity)
        self._run_min = np.zeros(capacity)
        self._sorted = np.zeros((capacity, sorted_width))
        self._ind = np.zeros((capacity, STATE_SIZE))
        self._last_ts = np.full(capacity, -np.inf)

    _STATE_ARRAYS = ("_ring", "_head", "_count", "_run_max", "_run_min", "_sorted", "_ind", "_last_ts")

    def _grow(self) -> None:
        old = {name: getattr(self, name) for name in self._STATE_ARRAYS}
        self._allocate(2 * len(self._count))
        for name, values in old.items():
            getattr(self, name)[: len(values)] = values

    def slot(self, key: str) -> int:
        """The state row of ``key``, created on first use."""
        found = self._slots.get(key)
        if found is not None:
            return found
        if not isinstance(key, str) or not key:
            raise ValueError(f"series key must be a non-empty string, got {key!r}")
        if len(self._keys) == len(self._count):
            self._grow()
        found = len(self._keys)
        self._slots[key] = found
        self._keys.append(key)
        if self.history_features:
            self._histories[found] = SeriesHistory(self.layout.defs.mp_window)
        return found

    @property
    def keys(self) -> list[str]:
        """Series keys seen so far, in order of first appearance."""
        return list(self._keys)

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
        history-wide columns are not included. Raises :class:`OrderError` for a point that is
        not after its series' newest one (the points before it are applied).
        """
        slots = np.empty(len(keys), dtype=np.int64)
        for i, (key, stamp) in enumerate(zip(keys, ts, strict=True)):
            slot = self.slot(key)
            last = self._last_ts[slot]
            if not stamp > last:
                if i:
                    self._apply(slots[:i], np.asarray(values[:i], dtype=float))
                raise OrderError(key, stamp, last)
            self._last_ts[slot] = stamp
            slots[i] = slot
        return self._apply(slots, np.asarray(values, dtype=float))

    def _apply(self, slots: np.ndarray, values: np.ndarray) -> np.ndarray:
        if not np.isfinite(values).all():
            raise ValueError("feature values must be finite")
        out = np.empty((len(slots), len(self.layout.names)))
        arrays = self._arrays
        kernel.update_batch(
            slots, values, self._ring, self._head, self._count, self._run_max, self._run_min,
            self._sorted, self._ind, arrays["lags"], arrays["diffs"], arrays["pcts"],
            arrays["windows"], arrays["window_columns"], arrays["fixed_index"], arrays["slots"],
            arrays["outlier_limits"], out,
        )  # fmt: skip
        return out

    def update(self, key: str, ts: Timestamp, value: float) -> dict[str, float | bool | None]:
        """Add one point to series ``key``; return the series' features after it.

        Parameters
        ----------
        key : str
            Any series name: a symbol, or ``loto:unique_id`` such as ``loto6:N1``.
        ts : str, date, datetime, int or float
            ISO-8601 string, date, datetime or epoch seconds; after the series' newest point.
        value : float
            A finite value.

        Returns
        -------
        dict
            Column name to value: floats, booleans for the outlier flags, ``None`` for NULL.

        Raises
        ------
        OrderError
            ``ts`` is not after the series' newest point (nothing changes).
        ValueError
            ``value`` is not a finite number.
        """
        stamp = to_epoch(ts)
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{key}: value {value!r} is not finite")
        row = self.update_many([key], [stamp], [number])[0]
        features = self.as_dict(row)
        if self.history_features:
            mp_left, score = self._histories[self._slots[key]].update(number)
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

    def warm_start_from_postgres(self, url: str | None = None, lotos: Sequence[str] | None = None) -> int:
        """Replay every draw of ``stg_lottery__draws`` (optionally of ``lotos`` only).

        The whole history is replayed, not a recent slice: gap, streak, drawdown, the matrix
        profile and the isolation forest depend on every earlier row, and a lottery's history
        is a few thousand draws. Returns the rows fed.
        """
        from psycopg import sql

        from python_jobs import config, db

        query = sql.SQL("select loto, unique_id, ds, y from {}{} order by loto, ds, unique_id").format(
            db.qualified(config.STAGING_MODEL),
            sql.SQL(" where loto = any(%s)") if lotos else sql.SQL(""),
        )
        with db.connect(url or db.database_url()) as conn:
            rows = conn.execute(query, (list(lotos),) if lotos else ()).fetchall()
        return self.replay_draws(rows)

    # -- pickling ---------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        used = len(self._keys)
        state = {name: getattr(self, name)[:used].copy() for name in self._STATE_ARRAYS}
        state.update(
            defs=self.layout.defs.as_vars(),
            history_features=self.history_features,
            keys=list(self._keys),
            histories=self._histories,
            domains=self._domains,
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["defs"], history_features=state["history_features"], capacity=len(state["keys"]))
        for name in self._STATE_ARRAYS:
            getattr(self, name)[: len(state[name])] = state[name]
        self._keys = list(state["keys"])
        self._slots = {key: i for i, key in enumerate(self._keys)}
        self._histories = state["histories"]
        self._domains = state["domains"]
