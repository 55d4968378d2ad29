"""The whole pipeline, stage by stage: on the synthetic panel and as ``demo`` runs it.

``bench_pipeline``
    A fresh schema, then the stages of ``make demo`` on the ``BENCH_PIPELINE_SERIES`` x
    ``BENCH_PIPELINE_ROWS`` panel (default ``BENCH_SERIES`` x ``BENCH_ROWS``, 1,000 each):
    ingest, ``dbt build`` of seeds and staging, the Python job (every family, a full refresh,
    on the CPU) and ``dbt build`` of the marts. The job's figures are split into its phases
    (set-up and family imports, tables, planning, reading, computing, writing, and the time it
    waited for the writer) and its seconds per family.
``bench_demo``
    ``python -m python_jobs demo`` on the bundled data, in a process of its own as a user runs
    it: once after a fresh schema (everything computed) and once again (nothing new: what a
    scheduled re-run costs), each stage as the demo's summary prints it.

Each stage's seconds are wall seconds on this machine, with whatever else it is doing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.log import get_logger

if TYPE_CHECKING:
    from python_jobs.job import JobResult

log = get_logger("bench.pipeline")

# The dbt selections of the two dbt stages, as `demo` runs them.
FIRST_BUILD = ["build", "--quiet", "--select", "resource_type:seed", "staging"]
MARTS_BUILD = ["build", "--quiet", "--exclude", "resource_type:seed", "staging"]


def _reset_schema(url: str, schema: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))


def _timed(stages: dict[str, float], name: str, fn: Callable[[], object]) -> object:
    start = time.perf_counter()
    result = fn()
    stages[name] = round(time.perf_counter() - start, 2)
    log.info("bench.stage", stage=name, seconds=stages[name])
    return result


def _job_figures(result: JobResult) -> dict:
    """Per-family and per-phase seconds of a :class:`python_jobs.job.JobResult`."""
    return {
        "seconds_total": round(result.seconds_total, 2),
        "seconds_per_phase": {k: round(v, 2) for k, v in result.seconds_per_phase.items()},
        "seconds_per_family": {k: round(v, 2) for k, v in result.seconds_per_family.items()},
        "series_per_second_per_family": {
            name: round(result.computed_per_family[name] / secs, 1) if secs > 0 else None
            for name, secs in result.seconds_per_family.items()
        },
        "scheduler": result.scheduler,
        "series_computed": result.series_computed,
        "rows_written": dict(result.rows_written),
    }


def bench_pipeline(url: str, n_series: int, n_rows: int, schema: str = "bench_pipeline") -> dict:
    """The whole pipeline on a fresh panel, per stage, with the job's split (see the module)."""
    from bench.panel import load_panel
    from python_jobs.job import run_job

    os.environ["DBT_SCHEMA"] = schema
    _reset_schema(url, schema)
    stages: dict[str, float] = {}
    stages["ingest"] = round(load_panel(url, n_series, n_rows), 2)
    _timed(stages, "dbt build seeds+staging", lambda: dbt.run(FIRST_BUILD, url=url))
    job = _timed(
        stages,
        "python feature job",
        lambda: run_job(url=url, device="cpu", full_refresh=True, progress=False, quiet=True),
    )
    _timed(stages, "dbt build marts", lambda: dbt.run(MARTS_BUILD, url=url))
    return {
        "panel": f"{n_series} series x {n_rows} draws",
        "stages_seconds": stages,
        "total_seconds": round(sum(stages.values()), 2),
        "job": _job_figures(job),
        "bar": "whole pipeline < 120 s on 2 cores (target 60 s); job < 60 s, no family > 30 s",
    }


def _demo_stages(output: str) -> dict[str, float]:
    """The stage table of ``demo``'s summary: ``name  seconds`` lines after the header."""
    stages: dict[str, float] = {}
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == ["stage", "seconds"])
    for line in lines[start + 1 :]:
        name, _, seconds = line.strip().rpartition(" ")
        if not name or name.strip() == "total":
            break
        stages[name.strip()] = float(seconds)
    return stages


def bench_demo(url: str, schema: str = "bench_demo") -> dict:
    """``python -m python_jobs demo`` in a fresh process: after a fresh schema, then again.

    A process of its own, as a user runs it: the job's imports are part of its stage.
    """
    _reset_schema(url, schema)
    env = {**os.environ, "DBT_SCHEMA": schema, "DATABASE_URL": url}
    runs = {}
    for label in ("fresh schema", "again"):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "python_jobs", "demo", "--quiet"],
            capture_output=True,
            text=True,
            env=env,
            cwd=config.REPO_ROOT,
            check=False,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"demo failed ({done.returncode}): {done.stderr[-2000:]}")
        stages = _demo_stages(done.stdout)
        runs[label] = {
            "stages_seconds": stages,
            "total_seconds": round(sum(stages.values()), 2),
            "process_seconds": round(wall, 2),
        }
        log.info("bench.demo", run=label, seconds=runs[label]["total_seconds"])
    return {"runs": runs, "bar": "demo < 60 s after install (target 20 s)"}


def print_pipeline(section: dict) -> None:
    """The pipeline section of ``make bench``'s table."""
    print(f"\nwhole pipeline, {section['panel']} (fresh schema, one run)")
    for name, seconds in section["stages_seconds"].items():
        print(f"  {name:<30} {seconds:8.2f} s")
    print(f"  {'total':<30} {section['total_seconds']:8.2f} s   ({section['bar']})")
    job = section["job"]
    print(f"  python job ({job['scheduler']}), wall seconds per phase:")
    for name, seconds in job["seconds_per_phase"].items():
        print(f"    {name:<28} {seconds:8.2f} s")
    print("  python job, seconds per family (summed over workers):")
    for name, seconds in job["seconds_per_family"].items():
        rate = job["series_per_second_per_family"][name]
        print(f"    {name:<28} {seconds:8.2f} s {rate if rate is not None else '-':>10} series/s")


def print_demo(section: dict) -> None:
    """The demo section of ``make bench``'s table."""
    print(f"\ndemo stages on the bundled data ({section['bar']})")
    labels = list(section["runs"])
    print(f"  {'stage':<30} " + " ".join(f"{label:>14}" for label in labels))
    first = section["runs"][labels[0]]["stages_seconds"]
    for name in [*first, "total", "process (start to exit)"]:
        cells = []
        for label in labels:
            run = section["runs"][label]
            if name in run["stages_seconds"]:
                value = run["stages_seconds"][name]
            else:
                value = run["total_seconds"] if name == "total" else run["process_seconds"]
            cells.append(f"{value:14.2f}")
        print(f"  {name:<30} " + " ".join(cells))
