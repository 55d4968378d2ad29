"""Run records of the feature job (``py_job_runs``): started, finished, interrupted.

One row per job run, with its device, scheduler and families; the per-stage records of every
command (ingest, dbt phases, the job as one stage) are ``pipeline_runs`` (:mod:`python_jobs.runs`).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from python_jobs.job.tables import RUNS_TABLE, table


def start_run(
    conn: psycopg.Connection,
    run_id: str,
    *,
    device: str,
    scheduler: str,
    families: list[str],
    feature_version: str,
) -> None:
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "insert into {} (run_id, started_at, status, device, scheduler, families, feature_version) "
                "values (%s, now(), 'running', %s, %s, %s, %s)"
            ).format(table(RUNS_TABLE)),
            (run_id, device, scheduler, families, feature_version),
        )


def finish_run(conn: psycopg.Connection, run_id: str, **fields: Any) -> None:
    values = dict(fields)
    if "seconds_per_family" in values:
        values["seconds_per_family"] = json.dumps(values["seconds_per_family"])
    assignments = [sql.SQL("finished_at = now()")] + [
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in values
    ]
    with conn.transaction():
        conn.execute(
            sql.SQL("update {} set {} where run_id = {}").format(
                table(RUNS_TABLE), sql.SQL(", ").join(assignments), sql.Placeholder("run_id")
            ),
            {**values, "run_id": run_id},
        )


INTERRUPTED = (
    "interrupted: the job stopped before it finished (killed, or its machine or connection was "
    "lost); its finished batches are kept and the next run computed the rest"
)


def mark_interrupted(conn: psycopg.Connection) -> int:
    """Mark runs still ``running`` as ``failed``: they were interrupted.

    Called while holding the job's schema lock (:func:`python_jobs.job.tables.lock_schema`),
    so no other job on the schema is live and every ``running`` row is a run that died.
    Returns how many rows were marked.
    """
    with conn.transaction():
        cur = conn.execute(
            sql.SQL(
                "update {} set status = 'failed', finished_at = now(), error = %s where status = 'running'"
            ).format(table(RUNS_TABLE)),
            (INTERRUPTED,),
        )
    return max(cur.rowcount, 0)
