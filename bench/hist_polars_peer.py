"""The polars peer of features_hist for `make bench`: a round trip through polars.

What a polars user would write to get the same columns as the pandas peer
(``bench/hist_pandas_peer.py``): COPY the draws out of PostgreSQL as CSV, compute every column
the dbt model computes in SQL plus the rolling median and quartiles the Python job offloads
(window expressions ``over`` each series; as-of joins on each value's appearances for the
lottery counts), then write the result back with the fastest writer polars offers without
extra packages: its own CSV writer into ``COPY ... FROM STDIN``. ``run_peer`` returns the
wall-clock seconds of all of it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence

import polars as pl
from psycopg import sql

from python_jobs import config, db, definitions

PEER_TABLE = "hist_polars_peer"
SERIES = ["loto", "unique_id"]
# The single window of the outlier, trend, autocorrelation and carry-over columns (dbt var).
FIXED_WINDOW = definitions.load().stat_window
MAIN_NUMBER = r"^N[0-9]+$"


def _over(expr: pl.Expr) -> pl.Expr:
    return expr.over(SERIES)


def _rolling_corr(x: str, y: str, window: int) -> pl.Expr:
    """Rolling Pearson correlation of two columns within each series, from rolling means; NULL
    where either side is constant over the window."""
    mean_x = _over(pl.col(x).rolling_mean(window))
    mean_y = _over(pl.col(y).rolling_mean(window))
    var_x = _over((pl.col(x) * pl.col(x)).rolling_mean(window)) - mean_x * mean_x
    var_y = _over((pl.col(y) * pl.col(y)).rolling_mean(window)) - mean_y * mean_y
    cov = _over((pl.col(x) * pl.col(y)).rolling_mean(window)) - mean_x * mean_y
    # Tested on the extremes: a constant side leaves a variance of rounding noise, not 0.
    varies = (_over(pl.col(x).rolling_max(window)) > _over(pl.col(x).rolling_min(window))) & (
        _over(pl.col(y).rolling_max(window)) > _over(pl.col(y).rolling_min(window))
    )
    return pl.when(varies).then(cov / (var_x * var_y).sqrt())


def _series_columns(
    lags: Sequence[int], windows: Sequence[int], diffs: Sequence[int], pct_changes: Sequence[int]
) -> list[pl.Expr]:
    """The per-series columns, in the order of the mart."""
    y = pl.col("y")
    shifted = {k: _over(y.shift(k)) for k in sorted({*lags, *diffs, *pct_changes})}
    mean = {w: _over(y.rolling_mean(w)) for w in {*windows, FIXED_WINDOW}}
    std = {w: _over(y.rolling_std(w)) for w in {*windows, FIXED_WINDOW}}
    q25 = {w: _over(y.rolling_quantile(0.25, "linear", window_size=w)) for w in {*windows, FIXED_WINDOW}}
    q75 = {w: _over(y.rolling_quantile(0.75, "linear", window_size=w)) for w in {*windows, FIXED_WINDOW}}
    # A constant window's std comes out as rounding noise, not 0: the z-score is NULL there.
    flat = {w: _over(y.rolling_max(w)) == _over(y.rolling_min(w)) for w in {*windows, FIXED_WINDOW}}
    zscore = {w: pl.when(~flat[w]).then((y - mean[w]) / std[w]) for w in {*windows, FIXED_WINDOW}}
    w = FIXED_WINDOW
    row = pl.col("row_number")
    iqr = q75[w] - q25[w]
    columns = [shifted[k].alias(f"hist_y_lag{k}") for k in lags]
    columns += [mean[v].alias(f"hist_y_roll_mean_w{v}") for v in windows]
    columns += [std[v].alias(f"hist_y_roll_std_w{v}") for v in windows]
    columns += [_over(y.rolling_min(v)).alias(f"hist_y_roll_min_w{v}") for v in windows]
    columns += [_over(y.rolling_max(v)).alias(f"hist_y_roll_max_w{v}") for v in windows]
    columns += [(q75[v] - q25[v]).alias(f"hist_y_roll_iqr_w{v}") for v in windows]
    columns += [zscore[v].alias(f"hist_y_zscore_w{v}") for v in windows]
    columns += [(y - mean[v]).alias(f"hist_y_dev_mean_w{v}") for v in windows]
    columns += [(y - shifted[k]).alias(f"hist_y_diff{k}") for k in diffs]
    columns += [
        pl.when(shifted[k] != 0).then((y - shifted[k]) / shifted[k]).alias(f"hist_y_pct_change{k}")
        for k in pct_changes
    ]
    running_max, running_min = _over(y.cum_max()), _over(y.cum_min())
    columns += [
        (zscore[w].abs() > 3).alias(f"hist_y_is_outlier_z_w{w}"),
        ((y < q25[w] - 1.5 * iqr) | (y > q75[w] + 1.5 * iqr)).alias(f"hist_y_is_outlier_iqr_w{w}"),
        pl.when(running_max != 0).then(y / running_max - 1).alias("hist_y_drawdown"),
        pl.when(running_min != 0).then(y / running_min - 1).alias("hist_y_drawup"),
        # Least squares on the row number: cov(t, y) / var(t), var(t) of w consecutive integers.
        (
            (_over((row * y).rolling_mean(w)) - _over(row.rolling_mean(w)) * mean[w]) / ((w * w - 1) / 12)
        ).alias(f"hist_y_trend_slope_w{w}"),
        # The w - 1 pairs (y_t, y_t-1) inside the window ending at the row.
        _rolling_corr("y", "y_lag1", w - 1).alias(f"hist_y_roll_autocorr1_w{w}"),
    ]
    return columns


def _value_counts(draws: pl.DataFrame, freq_windows: Sequence[int]) -> pl.DataFrame:
    """Gap, frequency and streak of each row's value among its lottery's main numbers.

    One row per (loto, ds, y) asked about. A value's appearances are numbered by draw; the
    counts before a draw come from as-of joins on them (strictly earlier draws).
    """
    draw_index = (
        draws.select("loto", "ds")
        .unique()
        .with_columns(pl.col("ds").rank("dense").over("loto").cast(pl.Int64).alias("draw_index"))
    )
    asked = draws.select("loto", "ds", "y").unique().join(draw_index, on=["loto", "ds"])
    seen = (
        draws.filter(pl.col("unique_id").str.contains(MAIN_NUMBER))
        .group_by("loto", "ds", "y")
        .agg(pl.len().alias("n_positions"))
        .join(draw_index, on=["loto", "ds"])
        .sort("loto", "y", "draw_index")
        .with_columns(
            pl.col("n_positions").cum_sum().over("loto", "y").alias("appearances"),
            (pl.col("draw_index") - pl.col("draw_index").shift(1).over("loto", "y") != 1)
            .fill_null(True)
            .alias("starts_run"),
        )
        .with_columns(
            pl.when("starts_run").then("draw_index").forward_fill().over("loto", "y").alias("run_start")
        )
    )
    before = seen.select("loto", "y", "draw_index", "appearances")
    # Both sides of each as-of join are sorted on its key right before it; polars cannot check
    # that within the by-groups, and would warn on every join.
    counts = asked.sort("draw_index").join_asof(
        before.sort("draw_index").rename({"draw_index": "last_seen", "appearances": "seen_before"}),
        left_on="draw_index",
        right_on="last_seen",
        by=["loto", "y"],
        allow_exact_matches=False,
        check_sortedness=False,
    )
    for n in freq_windows:
        counts = (
            counts.with_columns((pl.col("draw_index") - n).alias("window_start"))
            .sort("window_start")
            .join_asof(
                before.sort("draw_index").rename({"draw_index": "start_seen", "appearances": f"seen_{n}"}),
                left_on="window_start",
                right_on="start_seen",
                by=["loto", "y"],
                allow_exact_matches=False,
                check_sortedness=False,
            )
            .drop("window_start", "start_seen")
        )
    counts = counts.join(
        seen.select("loto", "y", "draw_index", "run_start"), on=["loto", "y", "draw_index"], how="left"
    )
    return counts.select(
        "loto",
        "ds",
        "y",
        (pl.col("draw_index") - pl.col("last_seen")).cast(pl.Int32).alias("hist_y_gap"),
        *[
            (pl.col("seen_before").fill_null(0) - pl.col(f"seen_{n}").fill_null(0))
            .cast(pl.Int32)
            .alias(f"hist_y_freq_w{n}")
            for n in freq_windows
        ],
        (pl.col("draw_index") - pl.col("run_start") + 1).fill_null(0).cast(pl.Int32).alias("hist_y_streak"),
    )


def _draw_stats(draws: pl.DataFrame) -> pl.DataFrame:
    """Sum, odd count, consecutive pairs and shared last digits of each draw's main numbers."""
    main = draws.filter(pl.col("unique_id").str.contains(MAIN_NUMBER)).select("loto", "ds", "y")
    distinct = main.unique().sort("loto", "ds", "y")
    pairs = distinct.group_by("loto", "ds").agg(
        (pl.col("y").diff() == 1).sum().cast(pl.Int32).alias("hist_draw_consecutive_pairs")
    )
    digits = (
        main.group_by("loto", "ds", (pl.col("y").abs() % 10).alias("digit"))
        .agg(pl.len().alias("sharing"))
        .group_by("loto", "ds")
        .agg(
            pl.col("sharing")
            .filter(pl.col("sharing") > 1)
            .sum()
            .cast(pl.Int32)
            .alias("hist_draw_same_last_digit")
        )
    )
    sums = main.group_by("loto", "ds").agg(
        pl.col("y").sum().alias("hist_draw_sum"),
        (pl.col("y") % 2 != 0).sum().cast(pl.Int32).alias("hist_draw_odd_count"),
    )
    return sums.join(pairs, on=["loto", "ds"]).join(digits, on=["loto", "ds"])


def compute(
    draws: pl.DataFrame,
    *,
    lags: Sequence[int] | None = None,
    windows: Sequence[int] | None = None,
    diffs: Sequence[int] | None = None,
    pct_changes: Sequence[int] | None = None,
    freq_windows: Sequence[int] | None = None,
) -> pl.DataFrame:
    """The columns of features_hist (the SQL ones, and the rolling median and quartiles).

    ``draws`` holds ``loto, unique_id, ds, y, co``. Definitions not given are those of
    ``dbt_project.yml``.

    Notes
    -----
    Reference: polars ``shift / rolling_mean / rolling_std / rolling_min / rolling_max /
    rolling_quantile(interpolation="linear") / cum_max`` over each series, as documented for
    features_hist.
    """
    defs = definitions.load()
    lags = tuple(lags or defs.lags)
    windows = tuple(windows or defs.windows)
    diffs = tuple(diffs or defs.diffs)
    pct_changes = tuple(pct_changes or defs.pct_changes)
    freq_windows = tuple(freq_windows or defs.freq_windows)
    frame = draws.select(
        pl.col("loto").cast(pl.String),
        pl.col("unique_id").cast(pl.String),
        pl.col("ds").cast(pl.Date),
        pl.col("y").cast(pl.Float64),
        pl.col("co").cast(pl.Float64).fill_nan(None),
    ).sort(*SERIES, "ds")
    # Helper columns first: a window expression cannot nest inside another.
    frame = frame.with_columns(
        _over(pl.col("y").shift(1)).alias("y_lag1"),
        _over(pl.int_range(pl.len())).cast(pl.Float64).alias("row_number"),
    )
    features = frame.select(
        *SERIES,
        "ds",
        "y",
        *_series_columns(lags, windows, diffs, pct_changes),
        pl.col("co").cast(pl.Int64).alias("hist_co"),
        _rolling_corr("y", "co", FIXED_WINDOW).alias(f"hist_y_co_corr_w{FIXED_WINDOW}"),
        *[
            _over(pl.col("y").rolling_quantile(q, "linear", window_size=w)).alias(f"hist_y_roll_{name}_w{w}")
            for name, q in (("median", 0.5), ("q25", 0.25), ("q75", 0.75))
            for w in windows
        ],
    )
    domain = _value_counts(frame, freq_windows).join(_draw_stats(frame), on=["loto", "ds"], how="left")
    features = features.join(domain, on=["loto", "ds", "y"], how="left").drop("y")
    # The lottery columns sit before the carry-over, as in the mart.
    head = [name for name in features.columns if name not in domain.columns or name in ("loto", "ds")]
    split = head.index("hist_co")
    order = head[:split] + [c for c in domain.columns if c not in ("loto", "ds", "y")] + head[split:]
    return features.select(order).with_columns(pl.col(pl.Float64).fill_nan(None))


def read_draws(url: str, schema: str, source_table: str = config.STAGING_MODEL) -> pl.DataFrame:
    """COPY the draws out as CSV into polars."""
    query = sql.SQL(
        "copy (select loto, unique_id, ds, y, co from {}) to stdout with (format csv, header)"
    ).format(db.qualified(source_table, schema))
    buffer = io.BytesIO()
    with db.connect(url) as conn, conn.cursor().copy(query) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    return pl.read_csv(
        buffer,
        schema={
            "loto": pl.String,
            "unique_id": pl.String,
            "ds": pl.Datetime("us"),
            "y": pl.Float64,
            "co": pl.Int64,
        },
    )


def _column_type(dtype: pl.DataType) -> str:
    if dtype == pl.String:
        return "text"
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "bigint"
    return "double precision"


def write_features(url: str, schema: str, features: pl.DataFrame, table: str = PEER_TABLE) -> None:
    """Replace ``table`` with ``features``: create it, then COPY polars' own CSV into it.

    polars writes CSV from its columns in native code, far faster than any row-by-row
    writer in Python; NULLs are empty unquoted fields, which COPY reads as NULL.
    """
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(_column_type(dtype)))
        for name, dtype in features.schema.items()
    )
    target = db.qualified(table, schema)
    payload = features.write_csv(include_header=False).encode()
    with db.connect(url) as conn:
        conn.execute(sql.SQL("drop table if exists {}").format(target))
        conn.execute(sql.SQL("create table {} ({})").format(target, columns))
        with conn.cursor().copy(sql.SQL("copy {} from stdin with (format csv)").format(target)) as copy:
            copy.write(payload)
        conn.commit()


def run_peer(url: str, schema: str, source_table: str = config.STAGING_MODEL) -> float:
    """The whole round trip (read, compute, write back); returns its wall-clock seconds."""
    start = time.perf_counter()
    draws = read_draws(url, schema, source_table)
    features = compute(draws)
    write_features(url, schema, features)
    return time.perf_counter() - start


if __name__ == "__main__":
    # `python -m bench.hist_polars_peer SCHEMA`: one round trip in a process of its own, as the
    # bench times it from outside; prints the seconds of the round trip itself.
    import sys

    print(f"{run_peer(db.database_url(), sys.argv[1]):.3f}")
