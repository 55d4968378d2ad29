"""How a run loads ``py_features_hist``: merged in place, bulk-loaded, or rebuilt and swapped in.

``merge``
    Any run over stored rows: each batch is merged row by row into the table
    (:func:`python_jobs.job.writing.write_batch`), unchanged rows left alone.
``bulk``
    The table is empty (a first run): its key is dropped, the batches COPY their rows in, and
    the key is built once at the end (:func:`python_jobs.job.tables.begin_bulk_load`).
``swap``
    A full refresh over stored rows: comparing every recomputed row with the stored one costs
    more than writing them all, so the batches COPY their rows into a new table of the same
    definition (:func:`python_jobs.job.tables.create_statement`, without its key). After the
    last batch its key is built once (:func:`python_jobs.job.tables.build_primary_key`), it is
    analysed, and one transaction puts it in place of the old table (:func:`_swap`).

The swap transaction locks the views over the table and then the table, in the order a
reader of a view takes them, so a reader waits instead of deadlocking. It reads the views'
definitions with every name schema-qualified, renames the old table away and gives the new one
its name, replaces each view by its own definition (``create or replace view``: the view
keeps its OID, owner, grants and the views over it, and now reads the new table), drops the
old table (``restrict``: anything else still over it fails the swap, and nothing changes),
gives the new table the old one's key name and grants, and writes the run's per-draw
bookkeeping. A statement that reads the table waits for the swap and then finds its name
bound to the new table: a reader sees the old rows or the new ones, never some of each. A
reader still running when the swap starts delays it, and readers arriving meanwhile wait
behind it; the swap itself takes a fraction of a second. Until then the database holds two
copies of the table.

Until the swap, the per-draw families' ``py_job_state`` rows of the run are held back, so a
run that dies before it leaves the old rows with their own bookkeeping; the next run drops
the half-loaded table. A swap rewrites every row and column, so it needs a full refresh of
every per-draw family the table holds columns of; otherwise (``--families`` naming some of
them, columns of a family no longer registered, a materialized view, a temporary view or a
view of another user over the table, a foreign key into it) a full refresh merges in place
like any other run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from python_jobs import config, db
from python_jobs.job import tables, writing
from python_jobs.job.errors import JobIOError
from python_jobs.job.tables import HIST_TABLE
from python_jobs.log import get_logger

log = get_logger(__name__)

MERGE, BULK, SWAP = "merge", "bulk", "swap"
# The table a swap loads, and the name the old table holds inside the swap transaction.
LOADED_TABLE = f"{HIST_TABLE}__loaded"
RETIRED_TABLE = f"{HIST_TABLE}__retired"
# The family's slot in a py_job_state row (:func:`python_jobs.job.writing.write_state`).
STATE_FAMILY = 2


@dataclass
class HistLoad:
    """How a run writes ``py_features_hist``, and what a swap holds back until it is done."""

    mode: str = MERGE
    # The per-draw families' py_job_state rows, written by the swap (``swap`` only).
    held_state: list[tuple] = field(default_factory=list)

    def route(self, write: writing.BatchWrite, hist_families: set[str]) -> None:
        """Point a batch's write at the load: the table its hist rows are COPYed into (None:
        merged in place) and, for a swap, its ``hist_families``' bookkeeping held back."""
        write.bulk_into = {BULK: HIST_TABLE, SWAP: LOADED_TABLE}.get(self.mode)
        if self.mode == SWAP:
            self.held_state += [row for row in write.state if row[STATE_FAMILY] in hist_families]
            write.state = [row for row in write.state if row[STATE_FAMILY] not in hist_families]


def begin(conn: psycopg.Connection, full_refresh: bool, hist_columns: list[str]) -> HistLoad:
    """The load mode of a run that writes ``hist_columns`` for every series it plans.

    A table a killed swap left is dropped first. The table of a ``swap`` is created here.
    """
    _drop_loaded(conn)
    if tables.begin_bulk_load(conn, HIST_TABLE):
        return HistLoad(BULK)
    if not full_refresh:
        return HistLoad(MERGE)
    reason = _why_not_swap(conn, hist_columns)
    if reason is not None:
        log.info("job.hist_merged_in_place", reason=reason)
        return HistLoad(MERGE)
    stored = tables.existing_columns(conn, HIST_TABLE)
    own = {column for column, _ in tables.TABLES[HIST_TABLE][0]}
    with conn.transaction():
        conn.execute(
            tables.create_statement(
                HIST_TABLE,
                into=LOADED_TABLE,
                feature_columns=[column for column in stored if column not in own],
                key=False,
            )
        )
    return HistLoad(SWAP)


def finish(conn: psycopg.Connection, load: HistLoad, run_id: str) -> None:
    """End a load whose batches are all written: the key of a bulk load, or the swap."""
    if load.mode == BULK:
        tables.add_primary_key(conn, HIST_TABLE)
    elif load.mode == SWAP:
        started = time.perf_counter()
        key = tables.build_primary_key(conn, HIST_TABLE, LOADED_TABLE)
        # The planner's row count and key statistics for the joins dbt runs next, before the
        # table is in place; a column list costs a quarter of a full analyze and leaves the
        # table due for autovacuum's, which fills in the feature columns later.
        conn.execute(
            sql.SQL("analyze {} ({})").format(
                tables.table(LOADED_TABLE), tables.ident_list(tables.TABLES[HIST_TABLE][1])
            )
        )
        try:
            _swap(conn, key, run_id, load.held_state)
        except db.TRANSIENT_ERRORS:
            raise  # retried by the caller's session
        except psycopg.Error as exc:
            raise JobIOError(
                f"the rebuilt {HIST_TABLE} could not replace the old one, which is unchanged: {exc}"
            ) from exc
        log.info("job.hist_swapped", seconds=round(time.perf_counter() - started, 2))


def abandon(conn: psycopg.Connection, load: HistLoad) -> None:
    """End a load that failed: the key of a bulk load is built, a swap's table dropped."""
    if load.mode == BULK:
        tables.add_primary_key(conn, HIST_TABLE)
    elif load.mode == SWAP:
        _drop_loaded(conn)


def _drop_loaded(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("drop table if exists {}").format(tables.table(LOADED_TABLE)))


def _why_not_swap(conn: psycopg.Connection, hist_columns: list[str]) -> str | None:
    """Why the run cannot rebuild the whole table, or None where it can."""
    own = {column for column, _ in tables.TABLES[HIST_TABLE][0]}
    others = [c for c in tables.existing_columns(conn, HIST_TABLE) if c not in own and c not in hist_columns]
    if others:
        return f"the table holds {len(others)} columns of families this run does not compute"
    others = [f"{schema}.{name}" for schema, name, replaceable in _dependents(conn) if not replaceable]
    if others:
        return f"{', '.join(others)} read the table and cannot be re-pointed by this user"
    keys = conn.execute(
        "select count(*) from pg_constraint where confrelid = to_regclass(%s)", (_regclass_name(HIST_TABLE),)
    ).fetchone()[0]
    if keys:
        return f"{keys} foreign keys reference the table"
    return None


def _dependents(conn: psycopg.Connection) -> list[tuple[str, str, bool]]:
    """(schema, name, replaceable) of the views and materialized views that read the table directly.

    A view can be re-pointed at the new table when it is a plain view of this session's user
    (or of a role it belongs to) and not another session's temporary view.
    """
    rows = conn.execute(
        "select distinct n.nspname, v.relname, v.relkind = 'v' and v.relpersistence <> 't' "
        "and pg_has_role(v.relowner, 'usage') from pg_depend as d "
        "join pg_rewrite as r on r.oid = d.objid join pg_class as v on v.oid = r.ev_class "
        "join pg_namespace as n on n.oid = v.relnamespace "
        "where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass "
        "and d.refobjid = to_regclass(%s) and v.oid <> d.refobjid order by 1, 2",
        (_regclass_name(HIST_TABLE),),
    ).fetchall()
    return [(row[0], row[1], bool(row[2])) for row in rows]


def _regclass_name(name: str) -> str:
    return f'"{config.target_schema()}"."{name}"'


def _view(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def _lock(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Lock the views over the table, then the table and the loaded one; returns the views.

    A view made over the table between finding and locking them is found on the next pass.
    """
    locked: list[tuple[str, str]] = []
    while True:
        views = [(schema, name) for schema, name, _ in _dependents(conn)]
        new = [view for view in views if view not in locked]
        if locked and not new:
            return locked
        targets = [_view(*view) for view in new]
        if not locked:
            targets += [tables.table(HIST_TABLE), tables.table(LOADED_TABLE)]
        conn.execute(sql.SQL("lock table {} in access exclusive mode").format(sql.SQL(", ").join(targets)))
        locked += new
        if not locked:
            return locked


def _view_definitions(
    conn: psycopg.Connection, views: list[tuple[str, str]]
) -> list[tuple[sql.Composed, str]]:
    """Each view's ``create or replace view`` head and its query, every name schema-qualified.

    With only ``pg_catalog`` on the search path, ``pg_get_viewdef`` qualifies every table, so
    the text names the table by schema and name, whatever table then holds that name.
    """
    path = conn.execute("select current_setting('search_path')").fetchone()[0]
    conn.execute("select set_config('search_path', 'pg_catalog', true)")
    out = []
    for schema, name in views:
        query, options = conn.execute(
            "select pg_get_viewdef(c.oid), c.reloptions from pg_class as c "
            "join pg_namespace as n on n.oid = c.relnamespace where n.nspname = %s and c.relname = %s",
            (schema, name),
        ).fetchone()
        # Options come from the catalog (security_barrier=true, check_option=local).
        with_options = sql.SQL(" with ({})").format(sql.SQL(", ".join(options))) if options else sql.SQL("")
        head = sql.SQL("create or replace view {}{} as ").format(_view(schema, name), with_options)
        out.append((head, query.strip().rstrip(";")))
    conn.execute("select set_config('search_path', %s, true)", (path,))
    return out


def _grants(conn: psycopg.Connection) -> list[sql.Composed]:
    """The old table's grants to others than its owner, as statements on the new one."""
    rows = conn.execute(
        "select a.privilege_type, r.rolname, a.is_grantable "
        "from pg_class as c cross join lateral aclexplode(c.relacl) as a "
        "left join pg_roles as r on r.oid = a.grantee "
        "where c.oid = to_regclass(%s) and a.grantee <> c.relowner",
        (_regclass_name(HIST_TABLE),),
    ).fetchall()
    return [
        sql.SQL("grant {} on {} to {}{}").format(
            # A privilege keyword from the catalog (SELECT, INSERT, ...); grantee 0 is PUBLIC.
            sql.SQL(privilege),
            tables.table(LOADED_TABLE),
            sql.Identifier(role) if role is not None else sql.SQL("public"),
            sql.SQL(" with grant option") if grantable else sql.SQL(""),
        )
        for privilege, role, grantable in rows
    ]


def _swap(conn: psycopg.Connection, key: str, run_id: str, held_state: list[tuple]) -> None:
    """Put the loaded table in place of the old one, with the held-back bookkeeping, at once."""
    with conn.transaction():
        views = _lock(conn)
        definitions = _view_definitions(conn, views)
        old_key = tables.primary_key(conn, HIST_TABLE) or f"{HIST_TABLE}_pkey"
        for grant in _grants(conn):
            conn.execute(grant)
        conn.execute(
            sql.SQL("alter table {} rename to {}").format(
                tables.table(HIST_TABLE), sql.Identifier(RETIRED_TABLE)
            )
        )
        conn.execute(
            sql.SQL("alter table {} rename to {}").format(
                tables.table(LOADED_TABLE), sql.Identifier(HIST_TABLE)
            )
        )
        for head, query in definitions:
            # The query is the view's own definition, read from the catalog just above.
            conn.execute(head + sql.SQL(query))
        conn.execute(sql.SQL("drop table {} restrict").format(tables.table(RETIRED_TABLE)))
        conn.execute(
            sql.SQL("alter table {} rename constraint {} to {}").format(
                tables.table(HIST_TABLE), sql.Identifier(key), sql.Identifier(old_key)
            )
        )
        if held_state:
            now = conn.execute("select now()").fetchone()[0]
            writing.write_state(conn, run_id, now, held_state)
