"""The point-in-time joins of a training set, in PostgreSQL (see :mod:`python_jobs.training`)."""

from __future__ import annotations

import io

import pandas as pd
import psycopg
from psycopg import sql

from python_jobs import config, db
from python_jobs.training.entities import (
    ENTITY_COLUMNS,
    TrainingSetError,
    frame_row,
    row_error,
    validate_entities,
)

#: The relations read, with what builds each one.
SOURCES = {
    config.STAGING_MODEL: "`make demo` (or `dbt build`)",
    "features_hist": "`dbt build --select features_hist` (or `make demo`)",
    "features_stat_history": "`dbt build --select features_stat_history` (or `make demo`)",
    "features_futr": "`dbt build --select features_futr` (or `make demo`)",
    "loto_schedule": "`dbt seed` (or `make demo`)",
}
#: Days after an entity searched for its lottery's next scheduled date: a week, plus a year
#: for a schedule that pauses (int_calendar__schedule_projected allows the same).
SCHEDULE_REACH_DAYS = 7 + 366
# PostgreSQL type oids of the columns read back, by the pandas type they become.
_BOOL_OIDS = {16}
_INT_OIDS = {20, 21, 23}
_FLOAT_OIDS = {700, 701, 1700}
_TIME_OIDS = {1082, 1114, 1184}


def training_set(entities: pd.DataFrame, *, url: str | None = None) -> pd.DataFrame:
    """The point-in-time training set of ``entities``: one row per entity, in input order.

    Parameters
    ----------
    entities : pandas.DataFrame
        Columns ``loto``, ``unique_id``, ``ds`` (others are ignored).
    url : str, optional
        The database (default: ``DATABASE_URL`` or the embedded server); the marts are read in
        the target schema.

    Returns
    -------
    pandas.DataFrame
        ``loto, unique_id, ds``, the ``hist_*`` columns, the ``stat_*`` columns and
        ``stat_as_of``, the ``futr_*`` columns and ``target_ds``, and ``label_y`` (see the
        module's docstring for what each is and why none but ``label_y`` sees a later row).

    Raises
    ------
    TrainingSetError
        A bad entity row, a series that is not staged, or a missing mart (named, with the
        command that builds it).
    """
    frame = validate_entities(entities)
    with db.connect(url or db.database_url()) as conn:
        _require_sources(conn)
        columns = {
            "hist": _prefixed_columns(conn, "features_hist", "hist_"),
            "stat": _prefixed_columns(conn, "features_stat_history", "stat_"),
            "futr": _prefixed_columns(conn, "features_futr", "futr_"),
        }
        with conn.transaction():
            # Compiling the wide query costs more than running it for most entity sets.
            conn.execute("set local jit = off")
            _load_entities(conn, frame)
            _refuse_unknown_series(conn)
            _load_schedule(conn)
            query = _point_in_time_query(columns)
            types = _column_types(conn, query)
            data = _copy_out(conn, query)
    result = _read_result(data, types)
    result["ds"] = frame["ds"].to_numpy()
    return result


def _require_sources(conn: psycopg.Connection) -> None:
    schema = config.target_schema()
    for table, build in SOURCES.items():
        if not db.table_exists(conn, table):
            raise TrainingSetError(f"{schema}.{table} does not exist: build it with {build}")


def _prefixed_columns(conn: psycopg.Connection, table: str, prefix: str) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s and column_name like %s order by ordinal_position",
        (config.target_schema(), table, prefix.replace("_", r"\_") + "%"),
    ).fetchall()
    return [row[0] for row in rows]


def _load_entities(conn: psycopg.Connection, frame: pd.DataFrame) -> None:
    conn.execute(
        "create temp table training_entities (row_no bigint, loto text, unique_id text, ds timestamp) "
        "on commit drop"
    )
    text = frame.assign(row_no=range(len(frame)))[["row_no", *ENTITY_COLUMNS]].to_csv(
        index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f"
    )
    with conn.cursor() as cur, cur.copy("copy training_entities from stdin with (format csv)") as copy:
        copy.write(text)
    conn.execute("analyze training_entities")


def _refuse_unknown_series(conn: psycopg.Connection) -> None:
    row = conn.execute(
        sql.SQL(
            "select min(entities.row_no) as row_no, entities.loto, entities.unique_id "
            "from training_entities as entities "
            "where not exists (select 1 from {} as draws "
            "where draws.loto = entities.loto and draws.unique_id = entities.unique_id) "
            "group by entities.loto, entities.unique_id order by 1 limit 1"
        ).format(db.qualified(config.STAGING_MODEL))
    ).fetchone()
    if row:
        raise row_error(
            frame_row,
            int(row[0]),
            f"unknown series loto={row[1]!r} unique_id={row[2]!r} "
            f"(not in {config.STAGING_MODEL}; ingest it and run `make demo`)",
        )


def _load_schedule(conn: psycopg.Connection) -> None:
    """Every scheduled draw date of the entities' lotteries from their first day on.

    The rule of int_calendar__schedule_projected: a weekday of loto_schedule valid on the date,
    outside the New Year break (31 December to 3 January), weekdays Monday = 0.
    """
    conn.execute(
        sql.SQL(
            "create temp table training_schedule on commit drop as "
            "select lotteries.loto, days.day::timestamp as ds "
            "from (select loto, min(ds)::date as first_date, max(ds)::date as last_date "
            "      from training_entities group by loto) as lotteries "
            "cross join lateral generate_series("
            "    lotteries.first_date + 1, lotteries.last_date + {reach}, interval '1 day'"
            ") as days (day) "
            "where to_char(days.day, 'MM-DD') not in ('12-31', '01-01', '01-02', '01-03') "
            "and exists (select 1 from {schedule} as schedule "
            "    where schedule.loto = lotteries.loto "
            "    and schedule.draw_weekday = extract(isodow from days.day)::integer - 1 "
            "    and days.day::date between schedule.valid_from_date and schedule.valid_to_date)"
        ).format(reach=sql.Literal(SCHEDULE_REACH_DAYS), schedule=db.qualified("loto_schedule"))
    )
    conn.execute("create index on training_schedule (loto, ds)")
    conn.execute("alter table training_entities add column is_scheduled boolean")
    conn.execute(
        sql.SQL("update training_entities set is_scheduled = loto in (select loto from {})").format(
            db.qualified("loto_schedule")
        )
    )
    conn.execute("analyze training_schedule")


def _point_in_time_query(columns: dict[str, list[str]]) -> sql.Composed:
    """One row per entity: the latest hist row and stat snapshot at ds, the next step, the label."""
    hist, stat, futr = columns["hist"], columns["stat"], columns["futr"]

    def picked(alias: str, names: list[str]) -> list[sql.Composable]:
        return [sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(name)) for name in names]

    outputs = [
        sql.SQL("entities.loto, entities.unique_id, entities.ds"),
        *picked("hist", hist),
        *picked("stat", stat),
        sql.SQL("stat.as_of as stat_as_of"),
        *picked("futr", futr),
        sql.SQL("step.target_ds"),
        sql.SQL("label.y::double precision as label_y"),
    ]
    series = "{0}.loto = entities.loto and {0}.unique_id = entities.unique_id"
    return sql.SQL(
        "select {outputs} from training_entities as entities "
        "left join lateral (select {hist_columns} from {hist} as features "
        "    where " + series.format("features") + " and features.ds <= entities.ds "
        "    order by features.ds desc limit 1) as hist on true "
        "left join lateral (select {stat_columns} from {stat} as snapshots "
        "    where " + series.format("snapshots") + " and snapshots.as_of <= entities.ds "
        "    order by snapshots.as_of desc limit 1) as stat on true "
        "left join lateral (select coalesce("
        "    (select scheduled.ds from training_schedule as scheduled "
        "     where entities.is_scheduled and scheduled.loto = entities.loto "
        "     and scheduled.ds > entities.ds order by scheduled.ds limit 1),"
        "    (select case when count(*) = 2 then max(recent.ds) + (max(recent.ds) - min(recent.ds)) end "
        "     from (select draws.ds::timestamp as ds from {draws} as draws "
        "           where not entities.is_scheduled and " + series.format("draws") + " "
        "           and draws.ds <= entities.ds order by draws.ds desc limit 2) as recent)"
        "    ) as target_ds) as step on true "
        # A lateral probe, not a join: the planner would hash the whole mart on the series
        # and compare each of its dates with the step.
        "left join lateral (select {futr_columns} from {futr} as calendar "
        "    where " + series.format("calendar") + " and calendar.ds = step.target_ds "
        "    limit 1) as futr on true "
        "left join lateral (select draws.y from {draws} as draws "
        "    where " + series.format("draws") + " and draws.ds > entities.ds "
        "    order by draws.ds limit 1) as label on true "
        "order by entities.row_no"
    ).format(
        outputs=sql.SQL(", ").join(outputs),
        hist_columns=sql.SQL(", ").join(map(sql.Identifier, hist or ["ds"])),
        stat_columns=sql.SQL(", ").join(map(sql.Identifier, [*stat, "as_of"])),
        futr_columns=sql.SQL(", ").join(map(sql.Identifier, futr or ["ds"])),
        hist=db.qualified("features_hist"),
        stat=db.qualified("features_stat_history"),
        futr=db.qualified("features_futr"),
        draws=db.qualified(config.STAGING_MODEL),
    )


def _column_types(conn: psycopg.Connection, query: sql.Composed) -> dict[str, int]:
    cur = conn.execute(sql.SQL("select * from ({}) as training_set limit 0").format(query))
    return {column.name: column.type_code for column in cur.description or ()}


def _copy_out(conn: psycopg.Connection, query: sql.Composed) -> bytes:
    buffer = io.BytesIO()
    copy_query = sql.SQL("copy ({}) to stdout with (format csv, header)").format(query)
    with conn.cursor() as cur, cur.copy(copy_query) as copy:
        for block in copy:
            buffer.write(block)
    return buffer.getvalue()


def _read_result(data: bytes, types: dict[str, int]) -> pd.DataFrame:
    """The copied CSV as typed columns: floats exact, integers and booleans nullable."""
    dtypes: dict[str, object] = {}
    for name, oid in types.items():
        if oid in _FLOAT_OIDS:
            dtypes[name] = "float64"
        elif oid in _INT_OIDS:
            dtypes[name] = "Int64"
        else:
            dtypes[name] = str
    frame = pd.read_csv(
        io.BytesIO(data), dtype=dtypes, float_precision="round_trip", keep_default_na=False, na_values=[""]
    )
    for name, oid in types.items():
        if oid in _BOOL_OIDS:
            frame[name] = frame[name].map({"t": True, "f": False}).astype("boolean")
        elif oid in _TIME_OIDS:
            frame[name] = pd.to_datetime(frame[name], format="ISO8601").astype("datetime64[us]")
    return frame
