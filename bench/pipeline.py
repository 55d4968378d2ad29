"""The whole pipeline, stage by stage: on the synthetic panel and as ``demo`` runs it.

Both are timed from outside, the commands run as a user runs them (one process each, start-up
and imports included), each on a fresh schema:

``bench_pipeline``
    On the ``BENCH_PIPELINE_SERIES`` x ``BENCH_PIPELINE_ROWS`` panel (default ``BENCH_SERIES``
    x ``BENCH_ROWS``, 1,000 each) as a long-format CSV: ``loto-features ingest`` (with its
    phases, from its debug log), then ``loto-features build`` (seeds and staging, the Python
    job, the marts with their data tests, materialize into the online store), each stage as
    build prints it, the process start-up around them, and the slowest nodes of the marts'
    ``dbt build`` (its ``run_results.json``).
``bench_demo``
    ``loto-features demo`` on the bundled data: once after a fresh schema (everything
    computed) and once again (nothing new: what a scheduled re-run costs).

Each stage's seconds are wall seconds on this machine, with whatever else it is doing.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from psycopg import sql

from bench.process import Timed, cli, command_env, node_seconds, run_results, run_timed
from python_jobs import db
from python_jobs.log import get_logger

log = get_logger("bench.pipeline")

SLOWEST_NODES = 10
BAR = "whole pipeline < 90 s on 2 cores (target 60 s)"


def _reset_schema(url: str, schema: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))


_PHASES = re.compile(r"ingest\.phases\s+(.*)$", re.MULTILINE)
_PAIR = re.compile(r"(\w+)=([0-9.]+)")


def ingest_phases(timed: Timed) -> dict[str, float]:
    """The phases an ingest logs at debug level (``ingest.phases``), with its start-up and exit."""
    found = _PHASES.search(timed.stderr)
    phases = {name: float(value) for name, value in _PAIR.findall(found.group(1))} if found else {}
    phases["start-up, parse set-up and exit"] = round(timed.seconds - sum(phases.values()), 2)
    return phases


def _families(output: str) -> dict[str, float]:
    """The job's seconds per family, from build's ``seconds per family:`` line and its wrap."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "seconds per family:" in line), None)
    if start is None:
        return {}
    indent = len(lines[start]) - len(lines[start].lstrip())
    text = lines[start].split("seconds per family:", 1)[1]
    for line in lines[start + 1 :]:
        if len(line) - len(line.lstrip()) <= indent:
            break
        text += " " + line.strip()
    return {name: float(value) for name, value in re.findall(r"(\w+) ([0-9.]+)", text)}


def bench_pipeline(url: str, n_series: int, n_rows: int, schema: str = "bench_pipeline") -> dict:
    """``ingest`` then ``build`` on a fresh schema, timed from outside (see the module)."""
    from bench.panel import make_panel

    _reset_schema(url, schema)
    env = command_env(url, schema)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"bench_{n_series}x{n_rows}.csv"
        make_panel(n_series, n_rows).to_csv(path, index=False)
        ingest = run_timed(cli("--log-level", "debug", "ingest", "--loto", "bench", str(path)), env)
    log.info("bench.stage", stage="ingest", seconds=round(ingest.seconds, 2))
    build = run_timed(cli("build"), env)
    stages = {"ingest (process)": round(ingest.seconds, 2)}
    build_stages = _demo_stages(build.stdout)
    stages.update(build_stages)
    stages["build start-up, summary and exit"] = round(build.seconds - sum(build_stages.values()), 2)
    log.info("bench.stage", stage="build", seconds=round(build.seconds, 2))
    nodes = node_seconds(run_results(env))
    return {
        "panel": f"{n_series} series x {n_rows} draws",
        "stages_seconds": stages,
        "total_seconds": round(ingest.seconds + build.seconds, 2),
        "ingest_phases": ingest_phases(ingest),
        "job_seconds_per_family": _families(build.stdout),
        "slowest_marts_nodes": dict(list(nodes.items())[:SLOWEST_NODES]),
        "bar": BAR,
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
    """``loto-features demo`` in a process of its own: after a fresh schema, then again."""
    _reset_schema(url, schema)
    env = command_env(url, schema)
    runs = {}
    for label in ("fresh schema", "again"):
        done = run_timed(cli("demo"), env)
        stages = _demo_stages(done.stdout)
        runs[label] = {
            "stages_seconds": stages,
            "total_seconds": round(sum(stages.values()), 2),
            "process_seconds": round(done.seconds, 2),
        }
        log.info("bench.demo", run=label, seconds=runs[label]["total_seconds"])
    return {"runs": runs, "bar": "demo < 60 s after install (target 20 s)"}


def print_pipeline(section: dict) -> None:
    """The pipeline section of ``make bench``'s table."""
    print(f"\nwhole pipeline, {section['panel']}: `ingest` then `build` on a fresh schema, one run")
    for name, seconds in section["stages_seconds"].items():
        print(f"  {name:<36} {seconds:8.2f} s")
    print(f"  {'total (both processes)':<36} {section['total_seconds']:8.2f} s   ({section['bar']})")
    print("  ingest phases:")
    for name, seconds in section["ingest_phases"].items():
        print(f"    {name:<34} {seconds:8.2f} s")
    print("  python job, seconds per family (summed over workers):")
    for name, seconds in section["job_seconds_per_family"].items():
        print(f"    {name:<34} {seconds:8.2f} s")
    print("  slowest nodes of the marts' dbt build:")
    for name, seconds in section["slowest_marts_nodes"].items():
        print(f"    {name:<60} {seconds:8.2f} s")


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
