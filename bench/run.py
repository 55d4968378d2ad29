"""`make bench`: the performance figures of the project, side by side with their peers.

1. features_hist on a 1,000 series x 1,000 draws panel (loaded through `ingest` as long
   format), whole processes timed from outside: the project's path (the Python job's rolling
   family, then `dbt run --full-refresh` of the hist models) against a pandas and a polars
   round trip computing the same columns (COPY out, compute, fast write back), as a first
   build and as a full refresh of a populated database (:mod:`bench.hist`).
2. The Python job's families on the CPU (and the GPU where one is present): seconds and
   series per second per family.
3. `dbt build` of everything on the bundled real data.
4. The online service: message to Redis latency, sustained rate and memory, against a
   talipp-based baseline (bench/realtime.py).
5. The whole pipeline on the panel as a user runs it (`ingest` of the long file, then
   `build`), per stage, with the slowest dbt nodes, and `demo`'s stages on the bundled data
   after a fresh schema and again (:mod:`bench.pipeline`).
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
import sys
import time
from pathlib import Path

from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.log import get_logger

log = get_logger("bench")
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _reset_schema(url: str, schema: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))


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
    if results.get("hist"):
        from bench.hist import print_hist

        print_hist(results["hist"])
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
            from bench.hist import bench_hist

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
