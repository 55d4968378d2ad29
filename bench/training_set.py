"""`make bench`: the point-in-time training set against a pandas peer.

The project's path is :func:`python_jobs.training_set`: the entities copied in, one index probe
per entity and mart in PostgreSQL, the result copied out. The peer is what a pandas user would
write for the same frame: read the marts out (the same columns), then ``merge_asof`` by series
for features_hist (latest ds at or before the entity's), the stat snapshots (latest as_of at or
before it), the next step (the series' last two rows before it: its cadence; the panel's
lottery has no schedule) joined to features_futr, and the label (the first staged row after it).
Both produce the same columns; the times are the medians of alternated runs.
"""

from __future__ import annotations

import io
import os
import statistics
import time

import numpy as np
import pandas as pd
from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.log import get_logger

log = get_logger("bench.training_set")
SCHEMA = "bench_training"
KEYS = ["loto", "unique_id"]


def _copy_frame(url: str, query: sql.Composable) -> pd.DataFrame:
    buffer = io.BytesIO()
    copy_query = sql.SQL("copy ({}) to stdout with (format csv, header)").format(query)
    with db.connect(url) as conn, conn.cursor() as cur, cur.copy(copy_query) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    return pd.read_csv(
        buffer,
        dtype={"loto": str, "unique_id": str},
        float_precision="round_trip",
        true_values=["t"],
        false_values=["f"],
    )


def _columns(url: str, table: str, prefix: str) -> list[str]:
    with db.connect(url) as conn:
        rows = conn.execute(
            "select column_name from information_schema.columns where table_schema = %s "
            "and table_name = %s and column_name like %s order by ordinal_position",
            (SCHEMA, table, prefix + "%"),
        ).fetchall()
    return [row[0] for row in rows]


def _read(url: str, table: str, keys: list[str], columns: list[str], time_key: str) -> pd.DataFrame:
    names = sql.SQL(", ").join(map(sql.Identifier, [*keys, *columns]))
    frame = _copy_frame(url, sql.SQL("select {} from {}").format(names, db.qualified(table)))
    frame[time_key] = pd.to_datetime(frame[time_key]).astype("datetime64[us]")
    return frame


def pandas_peer(url: str, entities: pd.DataFrame) -> pd.DataFrame:
    """The training set by reading the marts out and ``merge_asof`` (see the module)."""
    hist_cols = _columns(url, "features_hist", "hist_")
    stat_cols = _columns(url, "features_stat_history", "stat_")
    futr_cols = _columns(url, "features_futr", "futr_")
    hist = _read(url, "features_hist", [*KEYS, "ds"], hist_cols, "ds")
    stat = _read(url, "features_stat_history", [*KEYS, "as_of"], stat_cols, "as_of")
    futr = _read(url, "features_futr", [*KEYS, "ds"], futr_cols, "ds")
    draws = _read(url, config.STAGING_MODEL, [*KEYS, "ds"], ["y"], "ds")

    frame = entities.assign(row_no=np.arange(len(entities)), ds=entities["ds"].astype("datetime64[us]"))
    frame = frame.sort_values("ds")
    frame = pd.merge_asof(frame, hist.sort_values("ds"), on="ds", by=KEYS, direction="backward")
    stat = stat.rename(columns={"as_of": "stat_as_of"}).sort_values("stat_as_of")
    frame = pd.merge_asof(frame, stat, left_on="ds", right_on="stat_as_of", by=KEYS, direction="backward")
    # The cadence at ds: the series' last two rows at or before it.
    steps = draws[[*KEYS, "ds"]].sort_values([*KEYS, "ds"])
    steps["previous_ds"] = steps.groupby(KEYS)["ds"].shift(1)
    steps = steps.rename(columns={"ds": "last_ds"}).sort_values("last_ds")
    frame = pd.merge_asof(frame, steps, left_on="ds", right_on="last_ds", by=KEYS, direction="backward")
    frame["target_ds"] = frame["last_ds"] + (frame["last_ds"] - frame["previous_ds"])
    frame = frame.merge(futr.rename(columns={"ds": "target_ds"}), on=[*KEYS, "target_ds"], how="left")
    labels = draws.rename(columns={"ds": "label_ds", "y": "label_y"}).sort_values("label_ds")
    frame = pd.merge_asof(
        frame.sort_values("ds"),
        labels,
        left_on="ds",
        right_on="label_ds",
        by=KEYS,
        direction="forward",
        allow_exact_matches=False,
    )
    frame = frame.sort_values("row_no").reset_index(drop=True)
    return frame[[*KEYS, "ds", *hist_cols, *stat_cols, "stat_as_of", *futr_cols, "target_ds", "label_y"]]


def random_entities(url: str, n_entities: int, seed: int = 0) -> pd.DataFrame:
    """``n_entities`` rows over the panel's series, at random times within its span."""
    with db.connect(url) as conn:
        series = conn.execute(
            sql.SQL("select distinct loto, unique_id from {}").format(db.qualified(config.STAGING_MODEL))
        ).fetchall()
        first, last = conn.execute(
            sql.SQL("select min(ds), max(ds) from {}").format(db.qualified(config.STAGING_MODEL))
        ).fetchone()
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(series), n_entities)
    span = (pd.Timestamp(last) - pd.Timestamp(first)).total_seconds()
    offsets = pd.to_timedelta(rng.uniform(0, span, n_entities).round(), unit="s")
    return pd.DataFrame(
        {
            "loto": [series[k][0] for k in picked],
            "unique_id": [series[k][1] for k in picked],
            "ds": pd.Timestamp(first) + offsets,
        }
    )


def _build_panel(url: str, n_series: int, n_rows: int) -> float:
    from bench.panel import load_panel

    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(SCHEMA)))
    start = time.perf_counter()
    load_panel(url, n_series, n_rows)
    dbt.run(["seed", "--quiet"], url=url)
    dbt.run(["run", "--quiet"], url=url)
    with db.connect(url, autocommit=True) as conn:
        if not db.table_exists(conn, "features_stat_history"):
            # Where the snapshots' model is not built yet: an empty table of its grain.
            conn.execute(
                sql.SQL(
                    "create table {} (loto text, unique_id text, as_of date, "
                    "primary key (loto, unique_id, as_of))"
                ).format(db.qualified("features_stat_history"))
            )
    return time.perf_counter() - start


def bench_training_set(url: str, n_series: int, n_rows: int, n_entities: int, repeats: int) -> dict:
    from python_jobs.training import training_set

    os.environ["DBT_SCHEMA"] = SCHEMA
    build_seconds = _build_panel(url, n_series, n_rows)
    entities = random_entities(url, n_entities)
    project, peer = [], []
    for repeat in range(repeats):
        start = time.perf_counter()
        ours = training_set(entities, url=url)
        project.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = pandas_peer(url, entities)
        peer.append(time.perf_counter() - start)
        log.info(
            "bench.training_set",
            repeat=repeat + 1,
            project_s=round(project[-1], 2),
            pandas_s=round(peer[-1], 2),
        )
    same = _same_values(ours, theirs)
    ratios = [p / q for p, q in zip(project, peer, strict=True)]
    return {
        "panel": f"{n_series} series x {n_rows} draws",
        "entities": n_entities,
        "columns": ours.shape[1],
        "panel_build_seconds": round(build_seconds, 1),
        "project_seconds_median": round(statistics.median(project), 2),
        "pandas_merge_asof_seconds_median": round(statistics.median(peer), 2),
        "ratio_project_over_pandas_median": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "same_values_as_peer": same,
        "bar": "ratio <= 1.0",
    }


def _same_values(ours: pd.DataFrame, theirs: pd.DataFrame) -> bool:
    """Whether the peer computed the same frame (numbers compared as floats, NULL as NaN)."""
    if list(ours.columns) != list(theirs.columns):
        return False
    for column in ours.columns:
        left, right = ours[column], theirs[column]
        if pd.api.types.is_numeric_dtype(left) or pd.api.types.is_bool_dtype(left):
            a = pd.to_numeric(left.astype("Float64"), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            b = pd.to_numeric(right.astype("Float64"), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if not np.array_equal(a, b, equal_nan=True):
                return False
        elif pd.api.types.is_datetime64_any_dtype(left):
            if not (
                pd.to_datetime(left).fillna(pd.Timestamp(0)) == pd.to_datetime(right).fillna(pd.Timestamp(0))
            ).all():
                return False
        elif not _same_text(left, right):
            return False
    return True


def _same_text(left: pd.Series, right: pd.Series) -> bool:
    """Text columns: NULL where the other is NULL (whichever missing value each frame holds:
    NaN, None or pd.NA), the same text elsewhere."""
    missing = left.isna().to_numpy()
    if not (missing == right.isna().to_numpy()).all():
        return False
    return bool((left[~missing].astype(str).to_numpy() == right[~missing].astype(str).to_numpy()).all())


def print_training_set(result: dict) -> None:
    print(
        f"\ntraining set, {result['entities']:,} entities on {result['panel']} ({result['columns']} columns)"
    )
    print(f"  project (SQL point-in-time joins)  {result['project_seconds_median']:8.2f} s")
    print(f"  pandas (read marts + merge_asof)   {result['pandas_merge_asof_seconds_median']:8.2f} s")
    ratio = result["ratio_project_over_pandas_median"]
    print(f"  ratio project / pandas             {ratio:8.3f}   (bar <= 1.0)")
    print(f"  same values as the peer: {result['same_values_as_peer']}")
