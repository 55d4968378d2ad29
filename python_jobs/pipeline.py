"""The whole pipeline: ``build`` (dbt's order around the Python job, then the online store) and
``demo`` (the bundled samples, then ``build``).

``build`` runs, in order: the seeds and staging (``dbt build --selector before_python_job``),
the Python feature job, the marts (``--selector after_python_job``) and ``materialize`` (the
latest marts rows into Redis). It loads no data: it builds whatever the raw tables hold.

By default a stage prints one line (seconds and counts); dbt runs ``--quiet`` and its warnings
are named at the end, read from ``run_results.json``. ``verbose`` shows dbt's and the job's own
logs instead.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from python_jobs import config, db, dbt, log, runs
from python_jobs.log import get_logger

log_ = get_logger(__name__)

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
STAGING_SELECTOR = ["build", "--selector", "before_python_job"]
MARTS_SELECTOR = ["build", "--selector", "after_python_job"]
_NAME_WIDTH = 24


@dataclass
class Outcome:
    """What a stage reports: a line of counts, its rows (for ``runs``) and any warnings."""

    detail: str = ""
    rows: int | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class StageTimer:
    """Runs the stages of one command, records each in ``pipeline_runs`` and prints its line."""

    what: str = "demo"
    verbose: bool = True
    stages: list[tuple[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def run(self, name: str, fn: Callable[[], object]) -> object:
        if self.verbose:
            log_.info("stage.start", stage=name)
        else:
            print(f"  {name.ljust(_NAME_WIDTH)}", end="", flush=True)
        start = time.perf_counter()
        try:
            with runs.record(name, what=self.what) as stage:
                result = fn()
                if isinstance(result, Outcome):
                    stage.rows = result.rows
                    if result.warnings:
                        stage.warn("; ".join(result.warnings))
        except BaseException:
            if not self.verbose:
                print("failed", flush=True)
            raise
        seconds = time.perf_counter() - start
        self.stages.append((name, seconds))
        detail = result.detail if isinstance(result, Outcome) else ""
        if isinstance(result, Outcome):
            self.warnings.extend(result.warnings)
        if self.verbose:
            log_.info("stage.done", stage=name, seconds=round(seconds, 2))
        else:
            print(f"{seconds:7.2f} s  {detail}".rstrip(), flush=True)
        return result


def table_rows(url: str) -> list[tuple[str, int | None]]:
    counts: list[tuple[str, int | None]] = []
    with db.connect(url) as conn:
        for table in SUMMARY_TABLES:
            counts.append((table, _count(conn, table)))
    return counts


def _count(conn, table: str) -> int | None:
    if not db.table_exists(conn, table):
        return None
    row = conn.execute(sql.SQL("select count(*) from {}").format(db.qualified(table))).fetchone()
    return int(row[0]) if row else 0


def count_rows(url: str, table: str) -> int | None:
    """Rows of ``table`` in the target schema; None when it does not exist."""
    with db.connect(url) as conn:
        return _count(conn, table)


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


def print_warnings(warnings: list[str], url: str) -> None:
    """Name each warning of the build, and where to look for rejected lines."""
    if not warnings:
        return
    print(f"\nwarnings ({len(warnings)}):")
    for warning in warnings:
        print(f"  {warning}")
    if count_rows(url, config.RAW_REJECTS_TABLE):
        print("  rejected lines (skipped at ingest): `loto-features rejects`")


# -- dbt -----------------------------------------------------------------------------------------


def run_results_path() -> Path:
    """Where dbt writes ``run_results.json`` (``DBT_TARGET_PATH``, relative to the project)."""
    return config.REPO_ROOT / os.environ.get("DBT_TARGET_PATH", "target") / "run_results.json"


def dbt_outcome(path: Path | None = None) -> Outcome:
    """Counts and warnings of the last dbt run, from its ``run_results.json``."""
    try:
        results = json.loads((path or run_results_path()).read_text(encoding="utf-8"))["results"]
    except (OSError, ValueError, KeyError):
        return Outcome("(no run_results.json)")
    kinds: dict[str, int] = {}
    warnings: list[str] = []
    for result in results:
        kind = result.get("unique_id", "").split(".", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
        if result.get("status") == "warn":
            # test.<project>.<name>.<hash>: the name is the third part.
            parts = result.get("unique_id", "").split(".")
            name = parts[2] if len(parts) > 2 else parts[-1]
            warnings.append(f"{name} (dbt test, severity warn): {result.get('message') or 'rows found'}")
    parts = [f"{count} {kind}s" for kind, count in sorted(kinds.items())]
    detail = ", ".join(parts) + f"; {len(warnings)} warning{'s' * (len(warnings) != 1)}"
    return Outcome(detail, warnings=warnings)


def run_dbt(args: list[str], url: str, *, verbose: bool, table: str) -> Outcome:
    """``dbt ARGS``, then its counts, warnings and the rows of ``table`` (what ``runs`` records)."""
    dbt.run(args, url=url, quiet=not verbose)
    outcome = dbt_outcome()
    outcome.rows = count_rows(url, table)
    if outcome.rows is not None:
        outcome.detail = f"{table} {outcome.rows:,} rows; {outcome.detail}"
    return outcome


# -- the Python job and the online store ---------------------------------------------------------


def run_features_job(url: str, device: str = "auto", *, verbose: bool = True) -> Outcome:
    from python_jobs.job import run_job

    result = run_job(url=url, device=device, quiet=not verbose, progress=verbose)
    written = sum(result.rows_written.values())
    detail = (
        f"{result.series_computed} series computed, {result.series_skipped} unchanged, "
        f"{result.series_failed} failed, on {result.device}; {written:,} rows written"
    )
    families = [
        f"{name} {result.seconds_per_family[name]:.2f}"
        for name in result.families
        if result.computed_per_family.get(name) and name in result.seconds_per_family
    ]
    if families:
        indent = " " * (_NAME_WIDTH + 4)
        detail += "\n" + textwrap.fill(
            "seconds per family: " + ", ".join(families),
            width=100,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
        )
    warnings = [f"feature job: {result.series_failed} series failed (see py_job_errors)"] * bool(
        result.series_failed
    )
    return Outcome(detail, rows=written, warnings=warnings)


def materialize_online_store(url: str) -> Outcome:
    """The latest marts rows into Redis (``loto-features materialize``).

    Redis being down does not fail a build: the marts are built, and the warning says what to
    run once it is back.
    """
    import redis

    from python_jobs.realtime.materialize import materialize

    try:
        result = materialize(url=url)
    except (redis.RedisError, OSError) as exc:
        from python_jobs.redact import redact

        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return Outcome(
            "skipped: Redis unreachable",
            warnings=[f"the online store was not updated ({reason}): run `loto-features materialize`"],
        )
    detail = f"{result.series} series, {result.written} written, {result.unchanged} unchanged"
    return Outcome(detail, rows=result.written)


# -- the commands --------------------------------------------------------------------------------


@contextmanager
def _quiet_logs(verbose: bool) -> Iterator[None]:
    if verbose:
        yield
        return
    with log.quiet():
        yield


def run_build(timer: StageTimer, url: str, *, device: str, online: bool) -> None:
    """The stages of ``build`` in dbt's order around the Python job, on ``timer``."""
    verbose = timer.verbose
    with dbt.shared_parse():  # both dbt commands read the project as parsed once
        # Seeds and staging first: the Python job reads stg_lottery__draws...
        timer.run(
            "dbt build seeds+staging",
            lambda: run_dbt(STAGING_SELECTOR, url, verbose=verbose, table=config.STAGING_MODEL),
        )
        timer.run("python feature job", lambda: run_features_job(url, device, verbose=verbose))
        # ...and the marts join what it wrote.
        timer.run(
            "dbt build marts", lambda: run_dbt(MARTS_SELECTOR, url, verbose=verbose, table="features_hist")
        )
    if online:
        timer.run("materialize", lambda: materialize_online_store(url))


def build(*, device: str = "auto", verbose: bool = False, online: bool = True, what: str = "build") -> int:
    """Build the marts from what the raw tables hold; print rows per table and seconds per stage."""
    timer = StageTimer(what=what, verbose=verbose)
    url = db.database_url()
    with _quiet_logs(verbose):
        print(f"{what} (schema {config.target_schema()})")
        run_build(timer, url, device=device, online=online)
    print_summary(timer, table_rows(url))
    print_warnings(timer.warnings, url)
    return 0


def lotteries_with_rows(url: str, table: str = config.RAW_DRAWS_TABLE) -> set[str]:
    """Lotteries that already have rows in a raw table."""
    with db.connect(url) as conn:
        if not db.table_exists(conn, table):
            return set()
        rows = conn.execute(sql.SQL("select distinct loto from {}").format(db.qualified(table))).fetchall()
    return {row[0] for row in rows}


def load_bundled(url: str) -> Outcome:
    """Ingest each bundled file whose lottery has no rows yet.

    A lottery already in the raw table keeps its draws: the user may have corrected a bundled
    draw or loaded newer results, and re-loading the shipped file would revert that. Only its
    prize tables are added, when it has none yet (draws loaded before prizes were kept).
    """
    from python_jobs.ingest import ingest_file
    from python_jobs.ingest.load import RAW_PRIZES_TABLE

    with_draws = lotteries_with_rows(url)
    with_prizes = lotteries_with_rows(url, RAW_PRIZES_TABLE)
    done: list[str] = []
    rows = 0
    for loto, path in config.BUNDLED_FILES:
        if loto not in with_draws:
            result = ingest_file(loto, path, url=url)
            log_.info("ingest.done", loto=loto, file=path.name, rows=result.rows_loaded)
            done.append(f"{path.name} {result.rows_loaded:,} rows")
            rows += result.rows_loaded
        elif loto not in with_prizes:
            result = ingest_file(loto, path, url=url, prizes_only=True)
            log_.info("ingest.prizes", loto=loto, file=path.name, rows=result.prizes_inserted)
            done.append(f"{path.name} prizes only")
        else:
            log_.info("ingest.skipped", loto=loto, file=path.name, reason="the lottery already has rows")
            done.append(f"{path.name} skipped ({loto} has rows)")
    return Outcome(", ".join(done), rows=rows)


def print_next_steps() -> None:
    report_path = config.REPO_ROOT / "reports" / "loto6.html"
    print(f"\nlineage site: `make docs`, then open {config.REPO_ROOT / 'target' / 'static_index.html'}")
    print(f"feature report: `loto-features report --loto loto6` writes {report_path}")
    print("run history: `loto-features runs`; health: `loto-features health`")


def demo(*, device: str = "auto", quiet_dbt: bool = False, verbose: bool = False) -> int:
    """Load the bundled samples (a lottery with no rows only), then ``build``; print a summary.

    ``quiet_dbt`` (the older name of the compact form) turns ``verbose`` off.
    """
    timer = StageTimer(what="demo", verbose=verbose and not quiet_dbt)
    url = db.database_url()
    with _quiet_logs(timer.verbose):
        print(f"demo (schema {config.target_schema()})")
        timer.run("ingest", lambda: load_bundled(url))
        run_build(timer, url, device=device, online=True)
    print_summary(timer, table_rows(url))
    print_warnings(timer.warnings, url)
    print_next_steps()
    return 0
