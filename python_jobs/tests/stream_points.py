"""Helpers of the tests of the points the online service stores: the raw table at timestamp
grain in a test schema, and its rows read back."""

from __future__ import annotations

import pandas as pd
from psycopg import sql

from python_jobs import config, db
from python_jobs.ingest.load import ensure_tables


def raw_table(url: str, schema: str) -> None:
    """The raw tables in ``schema``, with ``raw_lottery_draws.ds`` a timestamp."""
    with db.connect(url, autocommit=True) as conn:
        db.ensure_schema(conn, schema)
        ensure_tables(conn)
        if ds_type(conn, schema) == "date":
            conn.execute(
                sql.SQL("alter table {} alter column ds type timestamp").format(
                    db.qualified(config.RAW_DRAWS_TABLE, schema)
                )
            )


def ds_type(conn, schema: str, table: str = config.RAW_DRAWS_TABLE) -> str | None:
    row = conn.execute(
        "select data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s and column_name = 'ds'",
        (schema, table),
    ).fetchone()
    return None if row is None else str(row[0])


def stored(url: str, schema: str, loto: str = "market") -> pd.DataFrame:
    """The raw rows of ``loto``, by symbol and time."""
    with db.connect(url) as conn:
        cur = conn.execute(
            sql.SQL(
                "select loto, unique_id, ds, y, num, co, source_file, loaded_at from {} "
                "where loto = %s order by unique_id, ds"
            ).format(db.qualified(config.RAW_DRAWS_TABLE, schema)),
            (loto,),
        )
        return pd.DataFrame(cur.fetchall(), columns=[column.name for column in cur.description])
