"""Whether the marts hold what the feature job's tables hold now: what ``health`` checks.

The marts copy the job's columns when dbt builds them. ``dbt build`` followed by the job
(``loto-features features``) leaves every staged key in the marts, with the job's values from
before it ran (NULL after a first build): the comparison with staging alone
(:mod:`python_jobs.marts`) passes. Here each mart's job columns are compared, on the mart's
grain, with the job table they come from (through its ``stg_python__`` view, which copies them
unchanged); a mart whose rows differ is stale, and ``loto-features build`` brings it up to
date. A job table that does not exist yet is the coverage check's finding, not this one's.

``features_stat_history`` is also compared with staging: the newest snapshot of each staged
series is at its last staged draw (the latest row is always a snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from python_jobs import config, db
from python_jobs.job.tables import HIST_TABLE, STAT_HISTORY_TABLE, STAT_TABLE

#: What runs the job and then rebuilds the marts from its tables.
REBUILD = "loto-features build"


@dataclass(frozen=True)
class JobSource:
    """A mart, the job table its job columns come from, and the grain both are joined on."""

    mart: str
    table: str
    keys: tuple[str, ...]


SOURCES = (
    JobSource("features_hist", HIST_TABLE, ("loto", "unique_id", "ds")),
    JobSource("features_stat_history", STAT_HISTORY_TABLE, ("loto", "unique_id", "as_of")),
    JobSource("features_stat", STAT_TABLE, ("loto", "unique_id")),
)


@dataclass(frozen=True)
class SourceState:
    """How a mart's job columns compare with the job's table, row by row on the mart's grain.

    ``rows`` counts the mart's rows the table also holds, ``differ`` those among them whose job
    columns are not the table's (per loto in ``by_loto``, only lotteries with such rows);
    ``computed_at`` is the table's newest write. Keys the table lacks are the coverage check's.
    """

    source: JobSource
    compared: bool
    columns: int = 0
    rows: int = 0
    differ: int = 0
    by_loto: dict[str, int] = field(default_factory=dict)
    computed_at: str | None = None

    @property
    def ok(self) -> bool:
        return self.differ == 0

    def problem(self) -> str | None:
        """One line: which mart is stale, against what, and what to run; None when it is not."""
        if self.ok:
            return None
        return (
            f"{config.target_schema()}.{self.source.mart} is older than {self.source.table} "
            f"(written {self.computed_at}): {self.differ} of the {self.rows} rows it shares with it differ; "
            f"run `{REBUILD}`"
        )

    def as_dict(self) -> dict[str, object]:
        if not self.compared:
            return {"ok": True, "source": self.source.table, "detail": "not compared: a table is missing"}
        return {
            "ok": self.ok,
            "source": self.source.table,
            "columns": self.columns,
            "rows": self.rows,
            "differ": self.differ,
            "source_computed_at": self.computed_at,
            **({"differ_by_loto": self.by_loto} if self.by_loto else {}),
        }


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        (config.target_schema(), table),
    ).fetchall()
    return [row[0] for row in rows]


def _shared_columns(conn: psycopg.Connection, source: JobSource) -> list[str]:
    """The job's value columns the mart also has (its keys and bookkeeping left out)."""
    in_mart = set(_columns(conn, source.mart))
    bookkeeping = {*source.keys, "computed_at", "n_rows", "checksum"}
    return [name for name in _columns(conn, source.table) if name in in_mart and name not in bookkeeping]


def source_state(conn: psycopg.Connection, source: JobSource) -> SourceState:
    """Rows of ``source.mart`` whose job columns differ from ``source.table``'s (joined on the grain)."""
    if not (db.table_exists(conn, source.mart) and db.table_exists(conn, source.table)):
        return SourceState(source, compared=False)
    columns = _shared_columns(conn, source)
    if not columns:
        return SourceState(source, compared=True)
    mart, job = sql.Identifier("mart"), sql.Identifier("job")

    def values(alias: sql.Identifier) -> sql.Composed:
        return sql.SQL("row({})").format(
            sql.SQL(", ").join(sql.SQL("{}.{}").format(alias, sql.Identifier(name)) for name in columns)
        )

    matches = sql.SQL(" and ").join(
        sql.SQL("mart.{0} = job.{0}").format(sql.Identifier(key)) for key in source.keys
    )
    query = sql.SQL(
        "select mart.loto, count(*), count(*) filter (where {} is distinct from {}) "
        "from {} as mart inner join {} as job on {} group by mart.loto order by mart.loto"
    ).format(values(mart), values(job), db.qualified(source.mart), db.qualified(source.table), matches)
    per_loto = conn.execute(query).fetchall()
    newest = conn.execute(
        sql.SQL("select max(computed_at) from {}").format(db.qualified(source.table))
    ).fetchone()
    return SourceState(
        source,
        compared=True,
        columns=len(columns),
        rows=sum(int(rows) for _, rows, _ in per_loto),
        differ=sum(int(differ) for _, _, differ in per_loto),
        by_loto={loto: int(differ) for loto, _, differ in per_loto if differ},
        computed_at=None if not newest or newest[0] is None else newest[0].isoformat(),
    )


_HISTORY_BEHIND = """
with staged as (
    select loto, unique_id, max(ds) as last_ds from {staging} group by loto, unique_id
),
snapshots as (
    select loto, unique_id, max(as_of) as last_as_of from {history} group by loto, unique_id
)
select count(*), count(*) filter (where snapshots.last_as_of is distinct from staged.last_ds)
from staged
left join snapshots on snapshots.loto = staged.loto and snapshots.unique_id = staged.unique_id
"""


def history_behind(conn: psycopg.Connection) -> tuple[int, int] | None:
    """(staged series, series whose newest snapshot is not at their last staged draw).

    None when ``features_stat_history`` or the staging table does not exist.
    """
    history = "features_stat_history"
    if not (db.table_exists(conn, history) and db.table_exists(conn, config.STAGING_MODEL)):
        return None
    query = sql.SQL(_HISTORY_BEHIND).format(
        staging=db.qualified(config.STAGING_MODEL), history=db.qualified(history)
    )
    series, behind = conn.execute(query).fetchone()
    return int(series), int(behind)
