"""Changing a stored column's type in place, for tables made by an earlier version.

``ds`` was a ``date`` and is now a ``timestamp`` (without time zone, UTC): the raw draws table,
the Python job's per-draw table and its state table are converted where an older one is found,
``using ds::timestamp`` (midnight of each day), so every stored key keeps its value.

PostgreSQL refuses ``alter column ... type`` on a column a view reads (dbt's staging views
over the job's tables). Such views are dropped and created again from their own definition
in the same transaction, so they read the new type; dbt replaces them on its next build.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from python_jobs import config
from python_jobs.log import get_logger

log = get_logger(__name__)

_DEPENDENT_VIEWS = """
select distinct view_namespace.nspname, view_class.relname, pg_get_viewdef(view_class.oid)
from pg_depend as dependency
inner join pg_rewrite as rewrite on rewrite.oid = dependency.objid
inner join pg_class as view_class on view_class.oid = rewrite.ev_class
inner join pg_namespace as view_namespace on view_namespace.oid = view_class.relnamespace
where dependency.refobjid = %s::regclass
  and view_class.oid <> dependency.refobjid
  and view_class.relkind = 'v'
"""


def column_type(conn: psycopg.Connection, table: str, column: str, schema: str | None = None) -> str | None:
    """``information_schema`` data type of a column, or None where table or column is missing."""
    row = conn.execute(
        "select data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s and column_name = %s",
        (schema or config.target_schema(), table, column),
    ).fetchone()
    return str(row[0]) if row else None


def date_to_timestamp(conn: psycopg.Connection, table: str, column: str, schema: str | None = None) -> bool:
    """Make ``column`` of ``table`` a ``timestamp`` where it is a ``date``; True when it did.

    Idempotent: a column already of another type (or a missing table) is left alone, at the
    cost of one catalog lookup. Views that read the table are dropped and recreated around
    the change, in the caller's transaction.
    """
    schema = schema or config.target_schema()
    if column_type(conn, table, column, schema) != "date":
        return False
    qualified = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    views = conn.execute(_DEPENDENT_VIEWS, (qualified.as_string(conn),)).fetchall()
    for view_schema, view, _ in views:
        conn.execute(sql.SQL("drop view {}.{}").format(sql.Identifier(view_schema), sql.Identifier(view)))
    conn.execute(
        sql.SQL("alter table {} alter column {} type timestamp using {}::timestamp").format(
            qualified, sql.Identifier(column), sql.Identifier(column)
        )
    )
    for view_schema, view, definition in views:
        # The definition is PostgreSQL's own text of a view it stored: not input.
        conn.execute(
            sql.SQL("create view {}.{} as {}").format(
                sql.Identifier(view_schema), sql.Identifier(view), sql.SQL(definition)
            )
        )
    log.info("retyped", table=f"{schema}.{table}", column=column, to="timestamp", views=len(views))
    return True
