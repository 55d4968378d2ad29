"""`make bench`: the performance figures of the project, side by side with their peers.

1. features_hist on a 1,000 series x 1,000 draws panel (loaded through `ingest` as long
   format): the project's path (`dbt run` of the hist models plus the Python job they offload
   the rolling order statistics to, from a built staging table) against a pandas and a polars
   round trip computing the same columns (COPY out, compute, fast write back). Alternated,
   ``BENCH_REPEATS`` times; the ratio quoted is the median of the per-repeat ratios to the
   faster peer of that repeat.
2. The Python job's families on the CPU (and the GPU where one is present): seconds and
   series per second per family.
3. `dbt build` of everything on the bundled real data.
4. The online service: message to Redis latency, sustained rate and memory, against a
   talipp-based baseline (bench/realtime.py).
5. The whole pipeline on the panel, per stage, with the Python job's phases and families, and
   `demo`'s stages on the bundled data after a fresh schema and again (:mod:`bench.pipeline`).
6. The point-in-time training set of 100,000 entity rows on the panel against pandas
   (read the marts out, ``merge_asof``): :mod:`bench.training_set` (BENCH_ENTITIES).
7. A soak of the online service: 1,000 msg/s over 1,000 symbols for BENCH_SOAK_MINUTES (10),
   its memory sampled every 10 s, the slope after the warm-up and the p99 latency
   (:mod:`bench.soak`).
8. The feature API (``POST /get-online-features`` on uvicorn) for 1 and 100 entities while the
   stream runs at 1,000 msg/s, against redis-py reading the same hashes (:mod:`bench.serving`;
   BENCH_SERVING_SECONDS, BENCH_SERVING_RATE, BENCH_SERVING_RATE_100).

Sizes come from the environment: BENCH_SERIES, BENCH_ROWS (1000 each), BENCH_REPEATS (3),
BENCH_FAMILY_SERIES (1000), BENCH_PIPELINE_SERIES and BENCH_PIPELINE_ROWS (default
BENCH_SERIES and BENCH_ROWS). Results go to bench/results/latest.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.log import get_logger

log = get_logger("bench")
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
# The hist models after the job: its staging view (re-read now that the job has written its
# table), the lottery counts and the mart; stg_lottery__draws is built once, before.
HIST_SELECTOR = ["--selector", "hist_models"]  # selectors.yml


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _reset_schema(url: str, schema: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))


def _model_seconds(target_path: Path) -> dict[str, float]:
    results = json.loads((target_path / "run_results.json").read_text(encoding="utf-8"))
    return {
        item["unique_id"].split(".")[-1]: round(float(item["execution_time"]), 3)
        for item in results["results"]
        if item["unique_id"].startswith("model.")
    }


def bench_hist(url: str, n_series: int, n_rows: int, repeats: int) -> dict:
    from bench import hist_pandas_peer, hist_polars_peer
    from bench.panel import load_panel
    from python_jobs.job import run_job

    schema = "bench_hist"
    os.environ["DBT_SCHEMA"] = schema
    _reset_schema(url, schema)
    ingest_seconds = load_panel(url, n_series, n_rows)
    dbt.run(["build", "--quiet", "--selector", "before_python_job"], url=url)
    target_path = Path(os.environ.get("DBT_TARGET_PATH", config.REPO_ROOT / "target"))

    project, pandas_peer, polars_peer, offload, sql_part, per_model = [], [], [], [], [], []
    for repeat in range(repeats):
        # Each repeat writes every row again, as the first build of a panel does.
        with db.connect(url, autocommit=True) as conn:
            for table in ("py_features_hist", "py_job_state"):
                if db.table_exists(conn, table):
                    conn.execute(sql.SQL("truncate {}").format(db.qualified(table)))
        start = time.perf_counter()
        run_job(url=url, device="cpu", families=["rolling"], full_refresh=True, progress=False)
        job_seconds = time.perf_counter() - start
        start = time.perf_counter()
        dbt.run(["run", "--quiet", "--full-refresh", *HIST_SELECTOR], url=url)
        dbt_seconds = time.perf_counter() - start
        per_model.append(_model_seconds(target_path))
        project.append(job_seconds + dbt_seconds)
        offload.append(job_seconds)
        sql_part.append(dbt_seconds)
        pandas_peer.append(hist_pandas_peer.run_peer(url, schema))
        polars_peer.append(hist_polars_peer.run_peer(url, schema))
        log.info(
            "bench.hist",
            repeat=repeat + 1,
            project_s=round(project[-1], 2),
            pandas_s=round(pandas_peer[-1], 2),
            polars_s=round(polars_peer[-1], 2),
        )
    faster = [min(a, b) for a, b in zip(pandas_peer, polars_peer, strict=True)]
    ratios = [p / q for p, q in zip(project, faster, strict=True)]
    models = {name: statistics.median(run[name] for run in per_model) for name in per_model[0]}
    return {
        "panel": f"{n_series} series x {n_rows} draws",
        "rows": n_series * n_rows,
        "ingest_seconds": round(ingest_seconds, 2),
        "project_seconds_median": round(statistics.median(project), 2),
        "project_offload_job_seconds_median": round(statistics.median(offload), 2),
        "project_dbt_run_seconds_median": round(statistics.median(sql_part), 2),
        "pandas_round_trip_seconds_median": round(statistics.median(pandas_peer), 2),
        "polars_round_trip_seconds_median": round(statistics.median(polars_peer), 2),
        "ratio_project_over_faster_peer_median": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "model_seconds_median": models,
        "bar": "ratio <= 1.0 (target 0.5)",
    }


def bench_families_section(n_series: int, n_rows: int) -> dict:
    from bench.families_cpu import bench_families
    from python_jobs.gpu import gpu_available

    section: dict = {"panel": f"{n_series} series x {n_rows} draws", "cpu": bench_families(n_series, n_rows)}
    if gpu_available():
        section["gpu"] = bench_families(n_series, n_rows, device="gpu")
        cpu_total = sum(row["seconds"] for row in section["cpu"])
        gpu_total = sum(row["seconds"] for row in section["gpu"])
        section["gpu_speedup_whole_job"] = round(cpu_total / gpu_total, 2)
    else:
        section["gpu"] = "no CUDA device here: GPU figures need a GPU machine"
    return section


def bench_bundled_build(url: str) -> dict:
    from python_jobs.ingest import ingest_file

    schema = "bench_bundled"
    os.environ["DBT_SCHEMA"] = schema
    _reset_schema(url, schema)
    for loto, path in config.BUNDLED_FILES:
        ingest_file(loto, path, url=url)
    start = time.perf_counter()
    dbt.run(["build", "--quiet"], url=url)
    seconds = time.perf_counter() - start
    return {"dbt_build_seconds": round(seconds, 2), "bar": "well under 60 s"}


def print_table(results: dict) -> None:
    hist = results.get("hist")
    if hist:
        print(f"\nfeatures_hist, {hist['panel']} (median of {len(hist['ratios'])} alternated runs)")
        print(f"  project path (job + dbt run)   {hist['project_seconds_median']:8.2f} s")
        print(f"    offloaded rolling job        {hist['project_offload_job_seconds_median']:8.2f} s")
        print(f"    dbt run of hist models       {hist['project_dbt_run_seconds_median']:8.2f} s")
        print(f"  pandas round trip              {hist['pandas_round_trip_seconds_median']:8.2f} s")
        print(f"  polars round trip              {hist['polars_round_trip_seconds_median']:8.2f} s")
        ratio = hist["ratio_project_over_faster_peer_median"]
        print(f"  ratio project / faster peer    {ratio:8.3f}   (bar <= 1.0, target 0.5)")
        for name, seconds in hist["model_seconds_median"].items():
            print(f"    {name:<40} {seconds:8.2f} s")
    families = results.get("families")
    if families:
        print(f"\nPython job families, {families['panel']}")
        print(f"  {'family':<24} {'device':<6} {'seconds':>9} {'series/s':>10}")
        for device in ("cpu", "gpu"):
            rows = families.get(device)
            if isinstance(rows, list):
                for row in rows:
                    rate = row["series_per_second"]
                    print(f"  {row['family']:<24} {device:<6} {row['seconds']:9.2f} {rate:10.1f}")
            else:
                print(f"  {device}: {rows}")
        if "gpu_speedup_whole_job" in families:
            print(f"  GPU/CPU speed-up, whole job: {families['gpu_speedup_whole_job']}x (bar >= 3x)")
    if results.get("realtime"):
        from bench.realtime import print_realtime

        print_realtime(results["realtime"])
    bundled = results.get("bundled")
    if bundled:
        print(f"\ndbt build on the bundled data: {bundled['dbt_build_seconds']:.2f} s (bar: well under 60 s)")
    if results.get("pipeline") or results.get("demo"):
        from bench.pipeline import print_demo, print_pipeline

        if results.get("pipeline"):
            print_pipeline(results["pipeline"])
        if results.get("demo"):
            print_demo(results["demo"])
    if results.get("training_set"):
        from bench.training_set import print_training_set

        print_training_set(results["training_set"])
    if results.get("soak"):
        from bench.soak import print_soak

        print_soak(results["soak"])
    if results.get("serving"):
        from bench.serving import print_serving

        print_serving(results["serving"])


def main(only: list[str] | None = None) -> int:
    url = db.database_url()
    sections = only or [
        "hist",
        "families",
        "bundled",
        "realtime",
        "serving",
        "pipeline",
        "demo",
        "training_set",
        "soak",
    ]
    results: dict = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "server": "DATABASE_URL" if not db.is_embedded() else "embedded pgserver",
        },
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    previous_schema = os.environ.get("DBT_SCHEMA")
    try:
        if "hist" in sections:
            results["hist"] = bench_hist(
                url,
                _env_int("BENCH_SERIES", 1000),
                _env_int("BENCH_ROWS", 1000),
                _env_int("BENCH_REPEATS", 3),
            )
        if "families" in sections:
            results["families"] = bench_families_section(
                _env_int("BENCH_FAMILY_SERIES", 1000), _env_int("BENCH_ROWS", 1000)
            )
        if "bundled" in sections:
            results["bundled"] = bench_bundled_build(url)
        if "realtime" in sections:
            from bench.realtime import bench_realtime

            results["realtime"] = bench_realtime()
        if "pipeline" in sections:
            from bench.pipeline import bench_pipeline

            results["pipeline"] = bench_pipeline(
                url,
                _env_int("BENCH_PIPELINE_SERIES", _env_int("BENCH_SERIES", 1000)),
                _env_int("BENCH_PIPELINE_ROWS", _env_int("BENCH_ROWS", 1000)),
            )
        if "demo" in sections:
            from bench.pipeline import bench_demo

            results["demo"] = bench_demo(url)
        if "training_set" in sections:
            from bench.training_set import bench_training_set

            results["training_set"] = bench_training_set(
                url,
                _env_int("BENCH_SERIES", 1000),
                _env_int("BENCH_ROWS", 1000),
                _env_int("BENCH_ENTITIES", 100_000),
                _env_int("BENCH_REPEATS", 3),
            )
        if "serving" in sections:
            from bench.serving import bench_serving

            results["serving"] = bench_serving()
        if "soak" in sections:
            from bench.soak import bench_soak

            results["soak"] = bench_soak(float(os.environ.get("BENCH_SOAK_MINUTES", 10)))
    finally:
        if previous_schema is None:
            os.environ.pop("DBT_SCHEMA", None)
        else:
            os.environ["DBT_SCHEMA"] = previous_schema
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print_table(results)
    print(f"\nwrote {RESULTS}")
    return 0
