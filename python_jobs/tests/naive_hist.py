"""Slow, obviously-correct reference for the SQL columns of features_hist.

Every value is computed from the rows it may see, one row at a time: the window of w rows is
sliced out of the series and handed to NumPy or pandas; the lottery counts walk the draws
one by one. Nothing here shares code or formulas with the dbt model (prefix sums, sparse
tables, centred-sum identities).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from python_jobs import config, definitions
from python_jobs.features import rolling_spec

# The feature definitions of dbt_project.yml (python_jobs/definitions.py).
DEFS = definitions.load()

# The single window of the outlier, trend, autocorrelation and carry-over columns.
OUTLIER_WINDOW = DEFS.stat_window


def _window(values: np.ndarray, end: int, width: int) -> np.ndarray | None:
    """The ``width`` values ending at index ``end`` (inclusive), or None if there are fewer."""
    if end + 1 < width:
        return None
    return values[end + 1 - width : end + 1]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation as pandas ``Series.corr`` gives it: NaN if either side is constant."""
    if np.isnan(x).any() or np.isnan(y).any():
        return np.nan
    dx = x - x.mean()
    dy = y - y.mean()
    denominator = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    if denominator == 0:
        return np.nan
    return float((dx * dy).sum() / denominator)


def rolling_column(y: np.ndarray, w: int, reference) -> np.ndarray:
    """``reference`` of the ``w`` values ending at each row; NaN until ``w`` rows exist."""
    out = np.full(len(y), np.nan)
    if len(y) >= w:
        out[w - 1 :] = reference(np.lib.stride_tricks.sliding_window_view(y, w))
    return out


def series_features(
    y: np.ndarray,
    co: np.ndarray,
    *,
    lags: Sequence[int] = DEFS.lags,
    windows: Sequence[int] = DEFS.windows,
    diffs: Sequence[int] = DEFS.diffs,
    pct_changes: Sequence[int] = DEFS.pct_changes,
    with_job_statistics: bool = False,
) -> dict[str, np.ndarray]:
    """The per-series columns of one series (``y`` and ``co`` in ds order, co NaN where NULL).

    Notes
    -----
    Reference: the pandas definitions documented in the features_hist YAML (``shift``,
    ``diff``) and, window by window, the ``reference`` of every rolling statistic of
    :mod:`python_jobs.features.rolling_spec` computed in SQL (those that read the Python job's
    columns are added by :func:`features_hist`; ``with_job_statistics`` adds them here); the
    slope is
    ``numpy.polyfit(range(w), window, 1)``; the autocorrelation is pandas
    ``Series.autocorr(1)`` of the ``w``-row window (the ``w - 1`` pairs inside it), ``w`` the
    dbt var ``stat_window``.
    """
    n = len(y)
    out: dict[str, np.ndarray] = {}

    def column(fn) -> np.ndarray:
        return np.array([fn(i) for i in range(n)], dtype=float)

    def lagged(k: int) -> np.ndarray:
        return column(lambda i: y[i - k] if i >= k else np.nan)

    for k in lags:
        out[f"hist_y_lag{k}"] = lagged(k)
    for stat in rolling_spec.STATISTICS:
        if not with_job_statistics and (stat.engine != "sql" or stat.reads_python_job):
            continue
        for w in stat.windows_in(windows):
            out[stat.column(w)] = rolling_column(y, w, stat.reference)
    for k in diffs:
        out[f"hist_y_diff{k}"] = y - lagged(k)
    for k in pct_changes:
        previous = lagged(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"hist_y_pct_change{k}"] = np.where(previous != 0, (y - previous) / previous, np.nan)

    w = OUTLIER_WINDOW
    mean = column(lambda i: np.nan if (win := _window(y, i, w)) is None else np.mean(win))
    std = column(lambda i: np.nan if (win := _window(y, i, w)) is None else np.std(win, ddof=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = np.where(std > 0, (y - mean) / std, np.nan)
    is_outlier = np.abs(zscore) > DEFS.outlier_z_threshold
    out[f"hist_y_is_outlier_z_w{w}"] = np.where(np.isnan(zscore), np.nan, is_outlier)

    running_max = np.maximum.accumulate(y)
    running_min = np.minimum.accumulate(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["hist_y_drawdown"] = np.where(running_max != 0, y / running_max - 1, np.nan)
        out["hist_y_drawup"] = np.where(running_min != 0, y / running_min - 1, np.nan)

    out[f"hist_y_trend_slope_w{w}"] = column(
        lambda i: np.nan if (win := _window(y, i, w)) is None else np.polyfit(np.arange(w), win, 1)[0]
    )

    def autocorr(i: int) -> float:
        win = _window(y, i, w)
        return np.nan if win is None else _pearson(win[1:], win[:-1])

    out[f"hist_y_roll_autocorr1_w{w}"] = column(autocorr)

    def co_corr(i: int) -> float:
        win = _window(y, i, w)
        return np.nan if win is None else _pearson(win, _window(co, i, w))

    out["hist_co"] = co.astype(float)
    out[f"hist_y_co_corr_w{w}"] = column(co_corr)
    return out


def lottery_features(draws: pd.DataFrame, *, freq_windows: Sequence[int] = DEFS.freq_windows) -> pd.DataFrame:
    """The lottery-level columns for every row of ``draws`` (loto, unique_id, ds, y).

    Notes
    -----
    Reference: the documented definitions, walked draw by draw. A draw's main numbers are the values
    at positions N1..Nk (a multiset: numbers3/4 may repeat a digit); gap, frequency and streak
    look at the draws of the same lottery before (and for the streak, ending with) this one.
    """
    rows = []
    for loto, lottery in draws.groupby("loto", sort=False):
        dates = sorted(lottery["ds"].unique())
        is_main = lottery["unique_id"].str.fullmatch(r"N[0-9]+")
        main = {ds: Counter() for ds in dates}
        for ds, value in zip(lottery.loc[is_main, "ds"], lottery.loc[is_main, "y"], strict=True):
            main[ds][value] += 1
        position = {ds: i for i, ds in enumerate(dates)}
        for row in lottery.itertuples(index=False):
            d = position[row.ds]
            value = row.y
            gap = next((d - e for e in range(d - 1, -1, -1) if main[dates[e]][value] > 0), None)
            streak = 0
            while d - streak >= 0 and main[dates[d - streak]][value] > 0:
                streak += 1
            numbers = sorted(main[row.ds].elements())
            digits = Counter(abs(number) % 10 for number in numbers)
            record = {
                "loto": loto,
                "unique_id": row.unique_id,
                "ds": row.ds,
                "hist_y_gap": np.nan if gap is None else gap,
                "hist_y_streak": streak,
                "hist_draw_sum": sum(numbers) if numbers else np.nan,
                "hist_draw_odd_count": sum(1 for number in numbers if number % 2 != 0) if numbers else np.nan,
                "hist_draw_consecutive_pairs": (
                    sum(1 for a, b in itertools.pairwise(numbers) if b - a == 1) if numbers else np.nan
                ),
                "hist_draw_same_last_digit": (
                    sum(count for count in digits.values() if count > 1) if numbers else np.nan
                ),
            }
            for n in freq_windows:
                record[f"hist_y_freq_w{n}"] = sum(main[dates[e]][value] for e in range(max(0, d - n), d))
            rows.append(record)
    return pd.DataFrame(rows)


def lotteries() -> set[str]:
    """The lotteries of the ``loto_positions`` seed: the only lotos with lottery-level columns."""
    return set(pd.read_csv(config.SEEDS_DIR / "loto_positions.csv")["loto"])


def features_hist(draws: pd.DataFrame, quartiles: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every SQL column of features_hist for ``draws`` (loto, unique_id, ds, y, co).

    ``quartiles`` (loto, unique_id, ds, hist_y_roll_q25_w{w}, hist_y_roll_q75_w{w}) stands for
    py_features_hist; without it the IQR columns are NaN, as in the mart before the job ran.
    The result is indexed by (loto, unique_id, ds); booleans are 0/1 floats with NaN for NULL.
    """
    draws = draws.sort_values(["loto", "unique_id", "ds"]).reset_index(drop=True)
    parts = []
    for (loto, unique_id), series in draws.groupby(["loto", "unique_id"], sort=False):
        y = series["y"].to_numpy(dtype=float)
        co = pd.to_numeric(series["co"], errors="coerce").to_numpy(dtype=float)
        frame = pd.DataFrame(series_features(y, co))
        frame.insert(0, "ds", series["ds"].to_numpy())
        frame.insert(0, "unique_id", unique_id)
        frame.insert(0, "loto", loto)
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True)
    lottery = lottery_features(draws[["loto", "unique_id", "ds", "y"]].assign(y=draws["y"].astype(float)))
    # The lottery-level columns belong to the lotteries of loto_positions; a user's or a
    # market's series has no draw of numbers, so they are NULL there.
    lottery = lottery[lottery["loto"].isin(lotteries())]
    out = out.merge(lottery, on=["loto", "unique_id", "ds"], how="left", validate="one_to_one")

    w = OUTLIER_WINDOW
    if quartiles is None:
        quartiles = out[["loto", "unique_id", "ds"]].copy()
        quartiles[f"hist_y_roll_q25_w{w}"] = np.nan
        quartiles[f"hist_y_roll_q75_w{w}"] = np.nan
    joined = out[["loto", "unique_id", "ds"]].merge(quartiles, on=["loto", "unique_id", "ds"], how="left")
    # The SQL statistics that read the job's columns: NULL where the job has not run.
    job_ran = joined[f"hist_y_roll_q25_w{w}"].notna().any()
    for stat in rolling_spec.computed_by("sql"):
        if stat.reads_python_job:
            for width in stat.windows_in(DEFS.windows):
                values = [
                    rolling_column(series["y"].to_numpy(dtype=float), width, stat.reference)
                    for _, series in draws.groupby(["loto", "unique_id"], sort=False)
                ]
                out[stat.column(width)] = np.concatenate(values) if job_ran else np.nan
    q25 = joined[f"hist_y_roll_q25_w{w}"].to_numpy(dtype=float)
    q75 = joined[f"hist_y_roll_q75_w{w}"].to_numpy(dtype=float)
    y = draws.set_index(["loto", "unique_id", "ds"]).loc[
        list(zip(out.loto, out.unique_id, out.ds, strict=True)), "y"
    ]
    y = y.to_numpy(dtype=float)
    iqr = q75 - q25
    spread = DEFS.outlier_iqr_multiplier * iqr
    outlier = (y < q25 - spread) | (y > q75 + spread)
    out[f"hist_y_is_outlier_iqr_w{w}"] = np.where(np.isnan(iqr), np.nan, outlier)
    return out.set_index(["loto", "unique_id", "ds"]).sort_index()
