"""Whether the marts hold every staged draw: what ``health``, ``report`` and ``train`` check
before they read them.

A mart can lag its staging model: a build that stopped half way, or, where ``features_hist``
is built unlogged (the dbt var ``features_hist_unlogged``), a PostgreSQL crash, after which the
server truncates the table. Reading such a mart gives a report without figures or a model
trained on a part of the data, with no error; the readers below refuse it instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from python_jobs import config, db

#: The marts, with the staged keys each one must hold: features_hist and the history rows of
#: features_futr one row per staged (loto, unique_id, ds), features_stat one per series.
MART_KEYS: dict[str, tuple[str, ...]] = {
    "features_hist": ("loto", "unique_id", "ds"),
    "features_futr": ("loto", "unique_id", "ds"),
    "features_stat": ("loto", "unique_id"),
}
#: The rows of a mart that stand for staged draws (features_futr also holds future dates).
_STAGED_ROWS = {"features_futr": sql.SQL("not is_future")}


class MartNotReadyError(RuntimeError):
    """A mart is missing, empty, or lacks staged rows; the message names it and what to run."""


@dataclass(frozen=True)
class MartState:
    """How a mart compares with the staging table (``staged``: the keys it must hold)."""

    mart: str
    exists: bool
    rows: int = 0
    staged: int = 0
    missing: int = 0

    @property
    def ok(self) -> bool:
        return self.exists and self.missing == 0 and (self.rows > 0 or self.staged == 0)

    def problem(self) -> str | None:
        """One line: what is wrong and what to run; None when the mart holds every staged key."""
        if self.ok:
            return None
        name = f"{config.target_schema()}.{self.mart}"
        rebuild = f"rebuild it with `dbt run --select {self.mart}` (or `make demo`)"
        if not self.exists:
            return f"{name} does not exist: run `make demo` (or `dbt build`)"
        if self.rows == 0:
            return f"{name} is empty while {config.STAGING_MODEL} has {self.staged} rows: {rebuild}"
        return (
            f"{name} is behind {config.STAGING_MODEL}: {self.missing} of {self.staged} staged keys "
            f"have no row: {rebuild}"
        )


def _count(conn: psycopg.Connection, query: sql.Composable) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def mart_state(conn: psycopg.Connection, mart: str) -> MartState:
    """Rows of ``mart`` against the staged keys it must hold (an anti-join on its grain)."""
    if not db.table_exists(conn, mart):
        return MartState(mart, exists=False)
    keys = MART_KEYS[mart]
    staging = db.qualified(config.STAGING_MODEL)
    where = _STAGED_ROWS.get(mart, sql.SQL("true"))
    staged = sql.SQL("(select distinct {} from {}) as staged").format(
        sql.SQL(", ").join(map(sql.Identifier, keys)), staging
    )
    matches = sql.SQL(" and ").join(
        sql.SQL("stored.{0} = staged.{0}").format(sql.Identifier(key)) for key in keys
    )
    table = db.qualified(mart)
    return MartState(
        mart,
        exists=True,
        rows=_count(conn, sql.SQL("select count(*) from {} where {}").format(table, where)),
        staged=_count(conn, sql.SQL("select count(*) from {}").format(staged)),
        missing=_count(
            conn,
            sql.SQL(
                "select count(*) from {} where not exists (select 1 from {} as stored where {} and {})"
            ).format(staged, table, matches, where),
        ),
    )


def require_ready(conn: psycopg.Connection, *marts: str) -> None:
    """Raise :class:`MartNotReadyError` for the first of ``marts`` that lacks staged rows.

    Raises
    ------
    MartNotReadyError
        The staging table or a mart does not exist, a mart is empty, or it lacks staged keys.
    """
    if not db.table_exists(conn, config.STAGING_MODEL):
        raise MartNotReadyError(
            f"{config.target_schema()}.{config.STAGING_MODEL} does not exist: run `make demo` first"
        )
    for mart in marts:
        problem = mart_state(conn, mart).problem()
        if problem:
            raise MartNotReadyError(problem)
