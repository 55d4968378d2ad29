"""What the feature report shows, read from the marts, staging and the run history.

Each reader returns plain pandas frames; nothing here draws. The report reads only what the
pipeline already built, so it never recomputes a feature and always shows the stored values.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import psycopg
from psycopg import sql

from python_jobs import config, db, definitions, marts

#: Window of the rolling bands and of the outlier flags drawn on each series: the dbt var
#: ``stat_window``, the window of ``hist_y_is_outlier_z_w{n}`` and ``hist_y_is_outlier_iqr_w{n}``
#: (the band's mean and std columns need it among the ``windows`` too, as by default).
BAND_WINDOW = definitions.load().stat_window
#: Recent draws that decide which numbers are "hot" (drawn most) and "cold" (least).
HOT_COLD_DRAWS = 100


class ReportError(RuntimeError):
    """The report cannot be made (unknown lottery, tables not built); the message says why."""


@dataclass
class ReportData:
    loto: str
    series: pd.DataFrame  # ds, unique_id, y, band mean/q25/q75/std, outlier flags
    draws: pd.DataFrame  # ds, num, y: the main numbers of every draw
    stats: pd.DataFrame  # one row per (loto, unique_id), numeric stat_ columns
    stages: pd.DataFrame  # stage, seconds, outcome of the last recorded run
    families: pd.DataFrame  # family, seconds of the last feature job
    run_id: str | None


def _frame(conn: psycopg.Connection, query: sql.Composable, params: tuple = ()) -> pd.DataFrame:
    cursor = conn.execute(query, params)
    columns = [column.name for column in cursor.description or []]
    return pd.DataFrame(cursor.fetchall(), columns=columns)


def known_lotteries(conn: psycopg.Connection) -> list[str]:
    if not db.table_exists(conn, config.STAGING_MODEL):
        raise ReportError(
            f"{config.target_schema()}.{config.STAGING_MODEL} does not exist: run `make demo` first"
        )
    query = sql.SQL("select distinct loto from {} order by loto").format(db.qualified(config.STAGING_MODEL))
    return [row[0] for row in conn.execute(query).fetchall()]


def _series(conn: psycopg.Connection, loto: str) -> pd.DataFrame:
    w = BAND_WINDOW
    # features_hist carries the features, not y: y comes from the staging row of the same grain.
    query = sql.SQL(
        "select hist.ds, hist.unique_id, draws.y::double precision as y, {mean} as band_mean, "
        "{std} as band_std, {q25} as band_q25, {q75} as band_q75, {out_z} as is_outlier_z, "
        "{out_iqr} as is_outlier_iqr "
        "from {table} as hist inner join {staging} as draws "
        "on draws.loto = hist.loto and draws.unique_id = hist.unique_id and draws.ds = hist.ds "
        "where hist.loto = %s order by hist.unique_id, hist.ds"
    ).format(
        staging=db.qualified(config.STAGING_MODEL),
        mean=sql.Identifier(f"hist_y_roll_mean_w{w}"),
        std=sql.Identifier(f"hist_y_roll_std_w{w}"),
        q25=sql.Identifier(f"hist_y_roll_q25_w{w}"),
        q75=sql.Identifier(f"hist_y_roll_q75_w{w}"),
        out_z=sql.Identifier(f"hist_y_is_outlier_z_w{w}"),
        out_iqr=sql.Identifier(f"hist_y_is_outlier_iqr_w{w}"),
        table=db.qualified("features_hist"),
    )
    frame = _frame(conn, query, (loto,))
    frame["ds"] = pd.to_datetime(frame["ds"])
    return frame


def _draws(conn: psycopg.Connection, loto: str) -> pd.DataFrame:
    query = sql.SQL(
        "select ds, num, y::integer as y from {} where loto = %s and unique_id like 'N%%' order by ds"
    ).format(db.qualified(config.STAGING_MODEL))
    frame = _frame(conn, query, (loto,))
    frame["ds"] = pd.to_datetime(frame["ds"])
    return frame


def _stats(conn: psycopg.Connection, loto: str) -> pd.DataFrame:
    frame = _frame(
        conn,
        sql.SQL("select * from {} where loto = %s order by unique_id").format(db.qualified("features_stat")),
        (loto,),
    )
    # Dates and labels (start date, category) are not distributions: keep the numeric columns.
    # (they do not parse as numbers, so they come out all NaN and are dropped).
    values = {
        column: pd.to_numeric(frame[column], errors="coerce").astype(float)
        for column in frame.columns
        if column.startswith("stat_")
    }
    numeric = pd.DataFrame(values, index=frame.index).dropna(axis=1, how="all")
    return pd.concat([frame[["unique_id"]], numeric], axis=1)


def _timings(conn: psycopg.Connection) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    from python_jobs.runs import RUNS_TABLE

    stages = pd.DataFrame(columns=["stage", "seconds", "outcome"])
    run_id = None
    if db.table_exists(conn, RUNS_TABLE):
        last = conn.execute(
            sql.SQL("select run_id from {} order by started_at desc limit 1").format(db.qualified(RUNS_TABLE))
        ).fetchone()
        if last:
            run_id = last[0]
            stages = _frame(
                conn,
                sql.SQL(
                    "select stage, seconds, outcome from {} where run_id = %s order by started_at"
                ).format(db.qualified(RUNS_TABLE)),
                (run_id,),
            )
    families = pd.DataFrame(columns=["family", "seconds"])
    if db.table_exists(conn, "py_job_runs"):
        row = conn.execute(
            sql.SQL(
                "select seconds_per_family from {} where status = 'success' order by started_at desc limit 1"
            ).format(db.qualified("py_job_runs"))
        ).fetchone()
        if row and row[0]:
            families = pd.DataFrame(
                sorted(row[0].items(), key=lambda item: -item[1]), columns=["family", "seconds"]
            )
    return stages, families, run_id


def load(loto: str, url: str | None = None) -> ReportData:
    """Everything the report of ``loto`` shows.

    Raises
    ------
    ReportError
        ``loto`` has no draws in the staging table, or the marts are not built.
    python_jobs.marts.MartNotReadyError
        A mart the report reads is empty or lacks staged draws (a page drawn from it would
        be blank or partial).
    """
    with db.connect(url, attempts=1) as conn:
        known = known_lotteries(conn)
        if loto not in known:
            raise ReportError(
                f"no lottery {loto!r} in {config.target_schema()}.{config.STAGING_MODEL} "
                f"(known: {', '.join(known) or 'none'}); load it with `loto-features ingest`"
            )
        for table in ("features_hist", "features_stat"):
            if not db.table_exists(conn, table):
                raise ReportError(f"{config.target_schema()}.{table} does not exist: run `make demo` first")
        marts.require_ready(conn, "features_hist", "features_stat")
        stages, families, run_id = _timings(conn)
        return ReportData(
            loto=loto,
            series=_series(conn, loto),
            draws=_draws(conn, loto),
            stats=_stats(conn, loto),
            stages=stages,
            families=families,
            run_id=run_id,
        )
