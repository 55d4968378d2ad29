"""features_hist on the panel, the project's path against a pandas and a polars peer.

Every figure is a whole process timed from outside (start-up, imports and connections
included), as a user meets it:

project
    ``loto-features features --full-refresh --families rolling`` (the job's part of the hist
    columns) then ``dbt run --full-refresh --selector hist_models``.
pandas, polars
    ``python -m bench.hist_pandas_peer`` and ``python -m bench.hist_polars_peer``: COPY the
    staged draws out, compute the same columns, write them back.

Two ways, each ``BENCH_REPEATS`` times, the three contenders alternated within a repeat:

first build
    The job's tables, the hist models' relations and the peers' tables are dropped first: the
    build of a new database.
full refresh
    Everything is left as the previous run wrote it: a rebuild of a populated database.

The ratio of a way is the median of its per-repeat ratios of the project to the faster peer of
that repeat. The project's time is split into the job process (its start-up, then its phases as
it prints them) and the dbt process (its start-up, then its models from ``run_results.json``).
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Callable, Iterable

from psycopg import sql

from bench.process import Timed, cli, command_env, dbt_cli, node_seconds, run_results, run_timed
from python_jobs import db
from python_jobs.job.tables import JOB_TABLES
from python_jobs.log import get_logger

log = get_logger("bench.hist")

SCHEMA = "bench_hist"
SELECTOR = ["--selector", "hist_models"]  # selectors.yml
JOB = cli("features", "--full-refresh", "--families", "rolling", "--device", "cpu", "--no-progress")
DBT_RUN = dbt_cli("run", "--quiet", "--full-refresh", *SELECTOR)
PEERS = {
    "pandas": ["-m", "bench.hist_pandas_peer", SCHEMA],
    "polars": ["-m", "bench.hist_polars_peer", SCHEMA],
}
PEER_TABLES = ("hist_pandas_peer", "hist_polars_peer")
WAYS = ("first build", "full refresh")


def _reset_schema(url: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(SCHEMA)))


def _hist_models(env: dict[str, str]) -> list[str]:
    """The models of the selector, as dbt lists them (the relations a first build creates)."""
    listed = run_timed(
        dbt_cli("ls", "--quiet", "--resource-type", "model", "--output", "name", *SELECTOR), env
    )
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()]


def _drop(url: str, relations: list[str]) -> None:
    """Drop tables or views by name (whichever each is), with what depends on them."""
    with db.connect(url, autocommit=True) as conn:
        for name in relations:
            kind = conn.execute(
                "select c.relkind from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relname = %s",
                (SCHEMA, name),
            ).fetchone()
            if kind:
                what = "view" if kind[0] == "v" else "table"
                statement = sql.SQL("drop {} if exists {} cascade").format(
                    sql.SQL(what), sql.Identifier(SCHEMA, name)
                )
                conn.execute(statement)


_PHASES = re.compile(r"wall seconds: (.*)$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*total ([0-9.]+) s", re.MULTILINE)


def job_split(timed: Timed) -> dict[str, float]:
    """A job process's seconds: start-up (before and after its run), then its printed phases."""
    total = _TOTAL.search(timed.stdout)
    phases = _PHASES.search(timed.stdout)
    split = {"start-up and exit": round(timed.seconds - float(total.group(1)), 2) if total else None}
    for item in phases.group(1).split(", ") if phases else []:
        name, _, seconds = item.rpartition(" ")
        split[name] = float(seconds)
    return split


def dbt_split(timed: Timed, env: dict[str, str]) -> dict[str, float]:
    """A dbt process's seconds: start-up (parsing, connecting, exit), then each node."""
    results = run_results(env)
    split = {"start-up and exit": round(timed.seconds - float(results["elapsed_time"]), 2)}
    split.update(node_seconds(results))
    return split


def _project(env: dict[str, str]) -> dict:
    job = run_timed(JOB, env)
    dbt_run = run_timed(DBT_RUN, env)
    return {
        "seconds": job.seconds + dbt_run.seconds,
        "job_seconds": job.seconds,
        "dbt_seconds": dbt_run.seconds,
        "job": job_split(job),
        "dbt": dbt_split(dbt_run, env),
    }


def _peer(name: str, env: dict[str, str]) -> float:
    return run_timed([JOB[0], *PEERS[name]], env).seconds


def _median_split(splits: list[dict[str, float | None]]) -> dict[str, float]:
    names = list(dict.fromkeys(name for split in splits for name in split))
    return {
        name: _median(values)
        for name in names
        if (values := [split[name] for split in splits if split.get(name) is not None])
    }


def _median(values: Iterable[float]) -> float:
    return round(statistics.median(values), 2)


def _summary(runs: list[dict]) -> dict:
    faster = [min(run["pandas"], run["polars"]) for run in runs]
    ratios = [run["project"]["seconds"] / peer for run, peer in zip(runs, faster, strict=True)]
    return {
        "project_seconds_median": _median(run["project"]["seconds"] for run in runs),
        "job_process_seconds_median": _median(run["project"]["job_seconds"] for run in runs),
        "dbt_process_seconds_median": _median(run["project"]["dbt_seconds"] for run in runs),
        "pandas_seconds_median": _median(run["pandas"] for run in runs),
        "polars_seconds_median": _median(run["polars"] for run in runs),
        "ratio_project_over_faster_peer_median": round(statistics.median(ratios), 3),
        "ratios": [round(ratio, 3) for ratio in ratios],
        "job_split_median": _median_split([run["project"]["job"] for run in runs]),
        "dbt_split_median": _median_split([run["project"]["dbt"] for run in runs]),
    }


def bench_hist(url: str, n_series: int, n_rows: int, repeats: int) -> dict:
    """Both ways, ``repeats`` times each, alternated (see the module)."""
    from bench.panel import load_panel

    env = command_env(url, SCHEMA)
    _reset_schema(url)
    os.environ["DBT_SCHEMA"] = SCHEMA  # where the in-process ingest loads (the caller restores it)
    ingest_seconds = load_panel(url, n_series, n_rows)
    run_timed(dbt_cli("build", "--quiet", "--selector", "before_python_job"), env)
    built = [*JOB_TABLES, *_hist_models(env), *PEER_TABLES]
    prepare: dict[str, Callable[[], None]] = {
        "first build": lambda: _drop(url, built),
        "full refresh": lambda: None,
    }
    runs: dict[str, list[dict]] = {way: [] for way in WAYS}
    for repeat in range(repeats):
        for way in WAYS:
            prepare[way]()
            project = _project(env)
            run = {"project": project, "pandas": _peer("pandas", env), "polars": _peer("polars", env)}
            runs[way].append(run)
            log.info(
                "bench.hist",
                way=way,
                repeat=repeat + 1,
                project_s=round(project["seconds"], 2),
                pandas_s=round(run["pandas"], 2),
                polars_s=round(run["polars"], 2),
            )
    return {
        "panel": f"{n_series} series x {n_rows} draws",
        "rows": n_series * n_rows,
        "repeats": repeats,
        "ingest_seconds": round(ingest_seconds, 2),
        "ways": {way: _summary(runs[way]) for way in WAYS},
        "bar": "ratio <= 1.0 (target 0.5), each way",
    }


def print_hist(section: dict) -> None:
    """The hist section of ``make bench``'s table."""
    repeats = section["repeats"]
    print(f"\nfeatures_hist, {section['panel']}: whole processes, median of {repeats} alternated runs")
    ways = section["ways"]
    print(f"  {'':<44}" + "".join(f"{way:>14}" for way in ways))

    def row(label: str, pick: Callable[[dict], float | None], fmt: str = "{:14.2f}") -> None:
        cells = [pick(summary) for summary in ways.values()]
        print(f"  {label:<44}" + "".join(fmt.format(c) if c is not None else f"{'-':>14}" for c in cells))

    row("project (job + dbt run), s", lambda s: s["project_seconds_median"])
    row("  job process, s", lambda s: s["job_process_seconds_median"])
    for name in ways[WAYS[0]]["job_split_median"]:
        row(f"    {name}", lambda s, name=name: s["job_split_median"].get(name))
    row("  dbt process, s", lambda s: s["dbt_process_seconds_median"])
    for name in ways[WAYS[0]]["dbt_split_median"]:
        row(f"    {name}", lambda s, name=name: s["dbt_split_median"].get(name))
    row("pandas round trip (process), s", lambda s: s["pandas_seconds_median"])
    row("polars round trip (process), s", lambda s: s["polars_seconds_median"])
    row("ratio project / faster peer", lambda s: s["ratio_project_over_faster_peer_median"], "{:14.3f}")
    print(f"  bar: {section['bar']}")
