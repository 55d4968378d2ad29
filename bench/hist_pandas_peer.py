"""The pandas peer of features_hist for `make bench`: a round trip through pandas.

What a pandas user would write to get the same columns: COPY the draws out of PostgreSQL,
compute every column the dbt model computes in SQL plus the rolling median and quartiles
the Python job offloads (vectorised: groupby-shift/rolling/cummax, rolling means for the
trend and correlations, a draw-by-value occurrence matrix for the lottery counts), then COPY
the result back into a table. ``run_peer`` returns the wall-clock seconds of all of it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from psycopg import sql

from python_jobs import config, db, definitions

PEER_TABLE = "hist_pandas_peer"
KEYS = ["loto", "unique_id"]
# The single window of the outlier, trend, autocorrelation and carry-over columns (dbt var).
FIXED_WINDOW = definitions.load().stat_window


def _grouped_rolling(values: pd.Series, keys: list[pd.Series], window: int):
    """``values.groupby(keys).rolling(window)``, to be reduced and re-aligned by ``_aligned``."""
    return values.groupby(keys, sort=False).rolling(window)


def _aligned(result: pd.Series) -> np.ndarray:
    """A groupby-rolling result back in the frame's row order (the groups' keys dropped)."""
    return result.droplevel(list(range(result.index.nlevels - 1))).sort_index().to_numpy()


def _rolling_corr(
    x: pd.Series, y: pd.Series, keys: list[pd.Series], window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rolling Pearson correlation of two aligned columns within each group, from rolling means
    and variances (pandas' own rolling var is exactly 0 on a constant window)."""
    mean_x = _aligned(_grouped_rolling(x, keys, window).mean())
    mean_y = _aligned(_grouped_rolling(y, keys, window).mean())
    mean_xy = _aligned(_grouped_rolling(x * y, keys, window).mean())
    var_x = _aligned(_grouped_rolling(x, keys, window).var(ddof=0))
    var_y = _aligned(_grouped_rolling(y, keys, window).var(ddof=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (mean_xy - mean_x * mean_y) / np.sqrt(var_x * var_y)
    return np.where((var_x > 0) & (var_y > 0), corr, np.nan), mean_x, mean_y


def lottery_counts(draws: pd.DataFrame, freq_windows: Sequence[int]) -> pd.DataFrame:
    """Gap, frequency and streak of each row's value, and the draw statistics, per lottery."""
    parts = []
    for _, lottery in draws.groupby("loto", sort=False):
        dates = np.sort(lottery["ds"].unique())
        draw_index = pd.Series(np.arange(len(dates)), index=dates)
        main = lottery[lottery["unique_id"].str.fullmatch(r"N[0-9]+")]
        # Occurrences of each value at each draw (draws x values), counted with multiplicity.
        counts = pd.crosstab(main["ds"], main["y"]).reindex(index=dates, fill_value=0)
        values = np.union1d(counts.columns.to_numpy(), lottery["y"].unique())
        counts = counts.reindex(columns=values, fill_value=0)
        seen = counts.to_numpy() > 0
        index = np.arange(len(dates))[:, None]
        last_seen = pd.DataFrame(np.where(seen, index, np.nan)).ffill().shift(1).to_numpy()
        gap = index - last_seen
        run_start = pd.DataFrame(np.where(seen, np.nan, index)).ffill().to_numpy()
        streak = np.where(seen, index - np.nan_to_num(run_start, nan=-1.0), 0)
        frequencies = {
            n: counts.rolling(n, min_periods=1).sum().shift(1).fillna(0).to_numpy() for n in freq_windows
        }
        row_draw = draw_index.loc[lottery["ds"].to_numpy()].to_numpy()
        row_value = np.searchsorted(values, lottery["y"].to_numpy())
        part = pd.DataFrame(
            {
                "hist_y_gap": gap[row_draw, row_value],
                **{f"hist_y_freq_w{n}": freq[row_draw, row_value] for n, freq in frequencies.items()},
                "hist_y_streak": streak[row_draw, row_value],
            },
            index=lottery.index,
        )
        ordered = main.sort_values(["ds", "y"])
        by_draw = ordered.groupby("ds")["y"]
        stats = pd.DataFrame(
            {
                "hist_draw_sum": by_draw.sum(),
                "hist_draw_odd_count": (ordered["y"] % 2 != 0).groupby(ordered["ds"]).sum(),
                "hist_draw_consecutive_pairs": (by_draw.diff() == 1).groupby(ordered["ds"]).sum(),
            }
        )
        digit_counts = ordered.assign(digit=ordered["y"].abs() % 10).groupby(["ds", "digit"]).size()
        stats["hist_draw_same_last_digit"] = digit_counts.where(digit_counts > 1, 0).groupby(level="ds").sum()
        part = part.join(stats.reindex(lottery["ds"].to_numpy()).set_index(lottery.index))
        parts.append(part)
    return pd.concat(parts).loc[draws.index]


def compute(
    draws: pd.DataFrame,
    *,
    lags: Sequence[int] | None = None,
    windows: Sequence[int] | None = None,
    diffs: Sequence[int] | None = None,
    pct_changes: Sequence[int] | None = None,
    freq_windows: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The columns of features_hist (the SQL ones, and the rolling median and quartiles).

    Definitions not given are those of ``dbt_project.yml``.

    Notes
    -----
    Reference: pandas ``groupby(...).shift / diff / cummax / cummin / rolling(w).mean / std /
    min / max / median / quantile`` (linear interpolation), as documented for features_hist.
    """
    defs = definitions.load()
    lags = tuple(lags or defs.lags)
    windows = tuple(windows or defs.windows)
    diffs = tuple(diffs or defs.diffs)
    pct_changes = tuple(pct_changes or defs.pct_changes)
    freq_windows = tuple(freq_windows or defs.freq_windows)
    draws = draws.sort_values([*KEYS, "ds"]).reset_index(drop=True)
    keys = [draws["loto"], draws["unique_id"]]
    y = draws["y"].astype("float64")
    co = draws["co"].astype("float64")
    grouped = y.groupby(keys, sort=False)
    out = {"loto": draws["loto"], "unique_id": draws["unique_id"], "ds": draws["ds"]}

    shifted = {k: grouped.shift(k).to_numpy() for k in sorted({*lags, *diffs, *pct_changes})}
    for k in lags:
        out[f"hist_y_lag{k}"] = shifted[k]
    rolled: dict[tuple[str, int], np.ndarray] = {}
    for w in windows:
        rolling = _grouped_rolling(y, keys, w)
        rolled["mean", w] = _aligned(rolling.mean())
        rolled["std", w] = _aligned(rolling.std())
        rolled["min", w] = _aligned(rolling.min())
        rolled["max", w] = _aligned(rolling.max())
        rolled["median", w] = _aligned(rolling.median())
        rolled["q25", w] = _aligned(rolling.quantile(0.25))
        rolled["q75", w] = _aligned(rolling.quantile(0.75))
    values = y.to_numpy()
    for stat in ("mean", "std", "min", "max"):
        for w in windows:
            out[f"hist_y_roll_{stat}_w{w}"] = rolled[stat, w]
    for w in windows:
        out[f"hist_y_roll_iqr_w{w}"] = rolled["q75", w] - rolled["q25", w]
    with np.errstate(divide="ignore", invalid="ignore"):
        for w in windows:
            std = rolled["std", w]
            out[f"hist_y_zscore_w{w}"] = np.where(std > 0, (values - rolled["mean", w]) / std, np.nan)
        for w in windows:
            out[f"hist_y_dev_mean_w{w}"] = values - rolled["mean", w]
        for k in diffs:
            out[f"hist_y_diff{k}"] = grouped.diff(k).to_numpy()
        for k in pct_changes:
            out[f"hist_y_pct_change{k}"] = np.where(
                shifted[k] != 0, (values - shifted[k]) / shifted[k], np.nan
            )
        w = FIXED_WINDOW
        z = out[f"hist_y_zscore_w{w}"] if w in windows else None
        if z is None:
            mean, std = (
                _aligned(_grouped_rolling(y, keys, w).mean()),
                _aligned(_grouped_rolling(y, keys, w).std()),
            )
            z = np.where(std > 0, (values - mean) / std, np.nan)
        out[f"hist_y_is_outlier_z_w{w}"] = pd.array(np.abs(z) > 3, dtype="boolean")
        out[f"hist_y_is_outlier_z_w{w}"][np.isnan(z)] = pd.NA
        q25 = rolled["q25", w] if w in windows else _aligned(_grouped_rolling(y, keys, w).quantile(0.25))
        q75 = rolled["q75", w] if w in windows else _aligned(_grouped_rolling(y, keys, w).quantile(0.75))
        iqr = q75 - q25
        outlier = pd.array((values < q25 - 1.5 * iqr) | (values > q75 + 1.5 * iqr), dtype="boolean")
        outlier[np.isnan(iqr)] = pd.NA
        out[f"hist_y_is_outlier_iqr_w{w}"] = outlier
        running_max = grouped.cummax().to_numpy()
        running_min = grouped.cummin().to_numpy()
        out["hist_y_drawdown"] = np.where(running_max != 0, values / running_max - 1, np.nan)
        out["hist_y_drawup"] = np.where(running_min != 0, values / running_min - 1, np.nan)
        # Least squares on the row number t: cov(t, y) / var(t), var(t) of w consecutive integers.
        t = grouped.cumcount().astype("float64")
        mean_ty = _aligned(_grouped_rolling(t * y, keys, w).mean())
        mean_t = _aligned(_grouped_rolling(t, keys, w).mean())
        out[f"hist_y_trend_slope_w{w}"] = (mean_ty - mean_t * rolled["mean", w]) / ((w * w - 1) / 12)
        # Autocorrelation inside the window: the w - 1 pairs (y_t, y_t-1) ending at the row.
        lag1 = pd.Series(shifted[1], index=y.index)
        out[f"hist_y_roll_autocorr1_w{w}"] = _rolling_corr(y, lag1, keys, w - 1)[0]
        counts = lottery_counts(draws.assign(y=y), freq_windows)
        for column in counts.columns:
            out[column] = counts[column].to_numpy()
        out["hist_co"] = draws["co"]
        out[f"hist_y_co_corr_w{w}"] = _rolling_corr(y, co, keys, w)[0]
    for stat in ("median", "q25", "q75"):
        for w in windows:
            out[f"hist_y_roll_{stat}_w{w}"] = rolled[stat, w]
    return pd.DataFrame(out)


def _column_type(name: str, series: pd.Series) -> str:
    if name in ("loto", "unique_id"):
        return "text"
    if name == "ds":
        return "date"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    return "double precision"


def read_draws(url: str, schema: str, source_table: str = config.STAGING_MODEL) -> pd.DataFrame:
    """COPY the draws out as CSV into pandas."""
    query = sql.SQL(
        "copy (select loto, unique_id, ds, y, co from {} ) to stdout with (format csv, header)"
    ).format(db.qualified(source_table, schema))
    buffer = io.BytesIO()
    with db.connect(url) as conn, conn.cursor().copy(query) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    return pd.read_csv(buffer, parse_dates=["ds"], dtype={"loto": str, "unique_id": str})


def write_features(url: str, schema: str, features: pd.DataFrame, table: str = PEER_TABLE) -> None:
    """Replace ``table`` with ``features``: create it, COPY the rows in (binary format).

    Binary COPY rather than ``to_csv``: formatting a hundred float columns as text takes
    pandas several times longer than the whole computation, and a fair peer should not lose
    its time there.
    """
    types = [_column_type(name, features[name]) for name in features.columns]
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
        for name, kind in zip(features.columns, types, strict=True)
    )
    values = features.astype(object).where(features.notna(), None)
    target = db.qualified(table, schema)
    with db.connect(url) as conn:
        conn.execute(sql.SQL("drop table if exists {}").format(target))
        conn.execute(sql.SQL("create table {} ({})").format(target, columns))
        with conn.cursor().copy(sql.SQL("copy {} from stdin with (format binary)").format(target)) as copy:
            copy.set_types(types)
            for row in values.itertuples(index=False, name=None):
                copy.write_row(row)
        conn.commit()


def run_peer(url: str, schema: str, source_table: str = config.STAGING_MODEL) -> float:
    """The whole round trip (read, compute, write back); returns its wall-clock seconds."""
    start = time.perf_counter()
    draws = read_draws(url, schema, source_table)
    features = compute(draws)
    write_features(url, schema, features)
    return time.perf_counter() - start


if __name__ == "__main__":
    # `python -m bench.hist_pandas_peer SCHEMA`: one round trip in a process of its own, as the
    # bench times it from outside; prints the seconds of the round trip itself.
    import sys

    print(f"{run_peer(db.database_url(), sys.argv[1]):.3f}")
