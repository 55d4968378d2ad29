"""features_stat_history on the synthetic panel: the job's snapshots and the dbt model.

``python -m bench.stat_history`` on a fresh schema: the ``BENCH_SERIES`` x ``BENCH_ROWS`` panel
(default 1,000 x 1,000, Mon/Thu draws from 2000, so ten yearly snapshots per series),

1. the Python job, full refresh, every family, the stat families on each series' latest
   snapshot only: what the job cost when it computed them once per whole series;
2. the same with every snapshot, in this process with the default scheduler;
3. one new draw for every series, then the job again (one snapshot per series);
4. ``dbt run`` of the stat models (selector ``stat_models``), each model's seconds.

The load average of the machine is printed with the figures: they are wall seconds on a
shared machine. ``BENCH_STAT_CADENCE=monthly`` runs it with monthly snapshots.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.job import planning

SCHEMA = "bench_stat_history"


def _reset_schema(url: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(SCHEMA)))


def _model_seconds() -> dict[str, float]:
    target = Path(os.environ.get("DBT_TARGET_PATH", config.REPO_ROOT / "target"))
    if not target.is_absolute():
        target = config.REPO_ROOT / target
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
    return {
        item["unique_id"].split(".")[-1]: round(float(item["execution_time"]), 2)
        for item in results["results"]
        if item["unique_id"].startswith("model.")
    }


def _add_one_draw(url: str) -> None:
    """One more draw for every series, three days after the last, in the raw table and staging."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(SCHEMA)))
        conn.execute(
            sql.SQL(
                "insert into {raw} (loto, unique_id, ds, y, num, co) "
                "select loto, unique_id, ds + interval '3 days', (y::int % 43) + 1, num + 1, 0 from {raw} "
                "where ds = (select max(ds) from {raw})"
            ).format(raw=sql.Identifier(config.RAW_DRAWS_TABLE))
        )
    dbt.run(["run", "--quiet", "--select", config.STAGING_MODEL], url=url)


def _job_figures(result) -> dict:
    return {
        "seconds": round(result.seconds_total, 2),
        "scheduler": result.scheduler,
        "snapshots_computed": result.snapshots_computed,
        "seconds_per_family": {k: round(v, 2) for k, v in result.seconds_per_family.items()},
        "seconds_per_phase": {k: round(v, 2) for k, v in result.seconds_per_phase.items()},
        "load_average_after": os.getloadavg(),
    }


def _latest_only(planned, summary, snaps, state, fams, versions, full_refresh):
    """Planning as if each series had one snapshot, its latest: the per-series job's work."""
    return _PLAN_SNAPSHOTS(
        planned, summary, {k: v[-1:] for k, v in snaps.items()}, state, fams, versions, full_refresh
    )


_PLAN_SNAPSHOTS = planning.plan_snapshots


def main() -> int:
    from bench.panel import load_panel
    from python_jobs.job import run_job

    url = db.database_url()
    n_series = int(os.environ.get("BENCH_SERIES", 1000))
    n_rows = int(os.environ.get("BENCH_ROWS", 1000))
    cadence = os.environ.get("BENCH_STAT_CADENCE", "yearly")
    os.environ["DBT_SCHEMA"] = SCHEMA
    os.environ["LOTO_DBT_VARS"] = json.dumps({"stat_snapshot_cadence": cadence})
    _reset_schema(url)
    load_panel(url, n_series, n_rows)
    dbt.run(["build", "--quiet", "--select", "resource_type:seed", "staging"], url=url)
    out: dict = {"panel": f"{n_series} series x {n_rows} draws", "cadence": cadence}
    out["load_average_before"] = os.getloadavg()
    planning.plan_snapshots = _latest_only
    try:
        out["job_full_refresh_latest_snapshot_only"] = _job_figures(
            run_job(url=url, device="cpu", full_refresh=True, progress=False, quiet=True)
        )
    finally:
        planning.plan_snapshots = _PLAN_SNAPSHOTS
    out["job_full_refresh"] = _job_figures(
        run_job(url=url, device="cpu", full_refresh=True, progress=False, quiet=True)
    )
    _add_one_draw(url)
    grown = run_job(url=url, device="cpu", progress=False, quiet=True)
    out["job_one_new_draw"] = {
        "seconds": round(grown.seconds_total, 2),
        "snapshots_computed": grown.snapshots_computed,
        "series_computed": grown.series_computed,
    }
    start = time.perf_counter()
    dbt.run(["run", "--quiet", "--selector", "stat_models"], url=url)
    wall = round(time.perf_counter() - start, 2)
    out["dbt_stat_models"] = {"wall_seconds": wall, "models": _model_seconds()}
    out["load_average_end"] = os.getloadavg()
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
