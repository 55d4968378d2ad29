"""The whole pipeline behind ``make demo``: load, dbt staging, Python job, dbt marts, summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg import sql

from python_jobs import config, db, dbt, runs
from python_jobs.log import get_logger

log = get_logger(__name__)

SUMMARY_TABLES = (
    config.RAW_DRAWS_TABLE,
    config.RAW_REJECTS_TABLE,
    "raw_lottery_prizes",
    config.STAGING_MODEL,
    "stg_lottery__prizes",
    "py_features_stat",
    "py_features_hist",
    "features_hist",
    "features_futr",
    "features_stat",
)


@dataclass
class StageTimer:
    stages: list[tuple[str, float]] = field(default_factory=list)

    def run(self, name: str, fn: Callable[[], object]) -> object:
        log.info("stage.start", stage=name)
        start = time.perf_counter()
        with runs.record(name, what="demo"):
            result = fn()
        seconds = time.perf_counter() - start
        self.stages.append((name, seconds))
        log.info("stage.done", stage=name, seconds=round(seconds, 2))
        return result


def table_rows(url: str) -> list[tuple[str, int | None]]:
    counts: list[tuple[str, int | None]] = []
    with db.connect(url) as conn:
        for table in SUMMARY_TABLES:
            if not db.table_exists(conn, table):
                counts.append((table, None))
                continue
            row = conn.execute(sql.SQL("select count(*) from {}").format(db.qualified(table))).fetchone()
            counts.append((table, int(row[0]) if row else 0))
    return counts


def print_summary(timer: StageTimer, counts: list[tuple[str, int | None]]) -> None:
    width = max(len(name) for name, _ in counts)
    print(f"\nSummary (schema {config.target_schema()})")
    print(f"  {'table'.ljust(width)}  {'rows':>10}")
    for name, rows in counts:
        print(f"  {name.ljust(width)}  {('-' if rows is None else f'{rows:,}'):>10}")
    stage_width = max(len(name) for name, _ in timer.stages)
    print(f"\n  {'stage'.ljust(stage_width)}  {'seconds':>8}")
    for name, seconds in timer.stages:
        print(f"  {name.ljust(stage_width)}  {seconds:8.2f}")
    total = sum(seconds for _, seconds in timer.stages)
    print(f"  {'total'.ljust(stage_width)}  {total:8.2f}")


def run_features_job(url: str, device: str = "auto") -> None:
    from python_jobs.job import run_job

    run_job(url=url, device=device)


def lotteries_with_rows(url: str, table: str = config.RAW_DRAWS_TABLE) -> set[str]:
    """Lotteries that already have rows in a raw table."""
    with db.connect(url) as conn:
        if not db.table_exists(conn, table):
            return set()
        rows = conn.execute(sql.SQL("select distinct loto from {}").format(db.qualified(table))).fetchall()
    return {row[0] for row in rows}


def load_bundled(url: str) -> None:
    """Ingest each bundled file whose lottery has no rows yet.

    A lottery already in the raw table keeps its draws: the user may have corrected a bundled
    draw or loaded newer results, and re-loading the shipped file would revert that. Only its
    prize tables are added, when it has none yet (draws loaded before prizes were kept).
    """
    from python_jobs.ingest import ingest_file
    from python_jobs.ingest.load import RAW_PRIZES_TABLE

    with_draws = lotteries_with_rows(url)
    with_prizes = lotteries_with_rows(url, RAW_PRIZES_TABLE)
    for loto, path in config.BUNDLED_FILES:
        if loto not in with_draws:
            result = ingest_file(loto, path, url=url)
            log.info("ingest.done", loto=loto, file=path.name, rows=result.rows_loaded)
        elif loto not in with_prizes:
            result = ingest_file(loto, path, url=url, prizes_only=True)
            log.info("ingest.prizes", loto=loto, file=path.name, rows=result.prizes_inserted)
        else:
            log.info("ingest.skipped", loto=loto, file=path.name, reason="the lottery already has rows")


def demo(*, device: str = "auto", quiet_dbt: bool = False) -> int:
    """Load the bundled data, build everything, print rows per table and seconds per stage."""
    timer = StageTimer()
    url = str(timer.run("database", db.database_url))
    timer.run("ingest", lambda: load_bundled(url))
    # Seeds and staging first: the Python job reads stg_lottery__draws...
    first = ["build", "--selector", "before_python_job"]
    timer.run("dbt build seeds+staging", lambda: dbt.run(first, url=url, quiet=quiet_dbt))
    timer.run("python feature job", lambda: run_features_job(url, device))
    # ...and the marts join what it wrote.
    rest = ["build", "--selector", "after_python_job"]
    timer.run("dbt build marts", lambda: dbt.run(rest, url=url, quiet=quiet_dbt))
    print_summary(timer, table_rows(url))
    print(f"\nlineage site: `make docs`, then open {config.REPO_ROOT / 'target' / 'static_index.html'}")
    report_path = config.REPO_ROOT / "reports" / "loto6.html"
    print(f"feature report: `python -m python_jobs report --loto loto6` writes {report_path}")
    print("run history: `python -m python_jobs runs`; health: `python -m python_jobs health`")
    return 0
