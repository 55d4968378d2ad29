"""Command line: ``loto-features --help`` lists every subcommand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from python_jobs import config, definitions, log, settings

# Bad input (a file, a setting) and an unreachable database: the user must act, and the
# message says how. No traceback is shown for either.
EXIT_BAD_INPUT = 2


def _cmd_profile(args: argparse.Namespace) -> int:
    from python_jobs import dbt

    path = dbt.render_profile()
    print(f"wrote {path}")
    return 0


def _cmd_db(args: argparse.Namespace) -> int:
    from python_jobs import db
    from python_jobs.redact import mask_url

    if args.action in ("start", "url"):
        # The password never reaches a terminal or a log: the URL is shown masked.
        print(mask_url(db.database_url()))
    elif args.action == "redis":
        return _show_redis()
    elif args.action == "stop":
        return _stop_embedded()
    return 0


def _show_redis() -> int:
    from python_jobs import local_redis
    from python_jobs.redact import mask_url

    url = settings.secret(settings.get().redis.url)
    if url:
        print(mask_url(url))
        return 0
    server = local_redis.running()
    if server is None:
        print(
            f"the embedded Redis ({config.REDIS_DB_PATH}) is not running: "
            "`loto-features materialize` or `make realtime-demo` starts it"
        )
        return 1
    print(f"unix://{server.socket}")
    return 0


def _stop_embedded() -> int:
    """Stop the embedded PostgreSQL and the embedded Redis, whichever this setup uses."""
    from python_jobs import db, local_redis

    if settings.get().redis.url is None:
        stopped = local_redis.stop()
        print("embedded Redis stopped" if stopped else "embedded Redis was not running")
    if not db.is_embedded():
        print("DATABASE_URL is set: no embedded PostgreSQL to stop")
        return 0
    try:
        stopped = db.stop_embedded()
    except db.DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from python_jobs import runs
    from python_jobs.ingest import IngestError, ingest_file

    with runs.record("ingest", what=f"{args.loto} {Path(args.file).name}") as stage:
        try:
            result = ingest_file(args.loto, Path(args.file), skip_bad_rows=args.skip_bad_rows)
        except IngestError as exc:
            stage.fail(exc.report())
            print(exc.report(), file=sys.stderr)
            return EXIT_BAD_INPUT
        stage.rows = result.rows_loaded
    print(result.summary())
    return 0


def _apply_vars(text: str | None) -> None:
    import os

    if text:
        # Every stage reads the overrides from here: dbt as --vars, the job through definitions.
        definitions.load(text)  # refuse bad vars before anything runs
        os.environ[definitions.VARS_ENV] = text


def _cmd_demo(args: argparse.Namespace) -> int:
    from python_jobs.pipeline import demo

    _apply_vars(args.vars)
    return demo(device=args.device, verbose=args.verbose)


def _cmd_build(args: argparse.Namespace) -> int:
    from python_jobs.pipeline import build

    _apply_vars(args.vars)
    return build(device=args.device, verbose=args.verbose, online=not args.no_materialize)


def _cmd_features(args: argparse.Namespace) -> int:
    from python_jobs import runs
    from python_jobs.job import main as job_main

    # gpu.memory_limit_gb is applied where CuPy is first used (python_jobs.gpu.cupy), once the
    # GPU is the device: a CPU run never imports CuPy.
    with runs.record("python feature job", what="features") as stage:
        code = job_main(args)
        if code:
            stage.fail(f"exit code {code}")
    return code


def _cmd_generate_macros(args: argparse.Namespace) -> int:
    from python_jobs.features import hist_macros, mart_yaml, sql_macros

    macro_generators = (sql_macros, hist_macros)
    if args.check:
        stale = [
            gen.MACRO_FILE
            for gen in macro_generators
            if not (gen.MACRO_FILE.exists() and gen.MACRO_FILE.read_text(encoding="utf-8") == gen.render())
        ]
        stale += mart_yaml.stale_files()
        for path in stale:
            print(f"{path} is stale: run `loto-features generate-macros`", file=sys.stderr)
        return 1 if stale else 0
    for gen in macro_generators:
        print(f"{'wrote' if gen.write() else 'unchanged'} {gen.MACRO_FILE}")
    written = mart_yaml.write()
    for path in mart_yaml.template_files():
        target = mart_yaml.target(path)
        print(f"{'wrote' if target in written else 'unchanged'} {target}")
    return 0


def _cmd_holidays(args: argparse.Namespace) -> int:
    from python_jobs.holidays_seed import write_holiday_seed

    path = write_holiday_seed(args.start_year, args.end_year, Path(args.out) if args.out else None)
    print(f"wrote {path}")
    return 0


def _cmd_warmup(args: argparse.Namespace) -> int:
    from python_jobs.warmup import warm_numba_cache

    return warm_numba_cache()


def _cmd_bench(args: argparse.Namespace) -> int:
    from bench.run import main as bench_main

    return bench_main(args.only)


def _add_build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    p.add_argument("--vars", default=None, metavar="YAML", help="dbt vars for dbt and the job alike")
    p.add_argument(
        "--verbose", action="store_true", help="dbt's and the job's full logs instead of one line per stage"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loto-features",
        description="Lottery time-series features: ingestion, the Python feature job, the pipeline.",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING")
    settings.add_config_option(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("profile", help="render profiles.yml from profiles.yml.template and DATABASE_URL")
    p.set_defaults(fn=_cmd_profile)

    p = sub.add_parser(
        "db",
        help=(
            "start or show the database (embedded unless DATABASE_URL is set); `redis`: where the "
            "embedded Redis listens; `stop`: stop the embedded PostgreSQL and Redis"
        ),
    )
    p.add_argument("action", choices=["start", "stop", "url", "redis"])
    p.set_defaults(fn=_cmd_db)

    p = sub.add_parser("ingest", help="load a results file into the raw table (all or nothing)")
    p.add_argument(
        "--loto", required=True, help="loto6, loto7, miniloto, bingo5, numbers3, numbers4, or your own name"
    )
    p.add_argument(
        "file", help="JSON, wide Japanese CSV or long-format CSV (loto, unique_id, ds, y[, num, co])"
    )
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help=f"load the good rows and write the bad ones to {config.RAW_REJECTS_TABLE}",
    )
    p.set_defaults(fn=_cmd_ingest)

    p = sub.add_parser(
        "build",
        help=(
            "the whole pipeline on the raw tables as they are: seeds and staging, the Python job, "
            "the marts, then materialize into the online store"
        ),
    )
    _add_build_arguments(p)
    p.add_argument(
        "--no-materialize", action="store_true", help="build the marts only, leave the online store as it is"
    )
    p.set_defaults(fn=_cmd_build)

    p = sub.add_parser(
        "demo", help="load the bundled samples (a lottery with no rows only), then `build`, with a summary"
    )
    _add_build_arguments(p)
    p.add_argument("--quiet", action="store_true", help="the compact output (the default; kept for scripts)")
    p.set_defaults(fn=_cmd_demo)

    p = sub.add_parser("features", help="the Python feature job (make gpu-features)")
    from python_jobs.jobs_args import add_job_arguments

    add_job_arguments(p)
    p.set_defaults(fn=_cmd_features)

    p = sub.add_parser(
        "generate-macros",
        help=(
            "write the generated dbt macros and the models' YAML from the registry, the rolling "
            "statistics and the dbt vars"
        ),
    )
    p.add_argument("--check", action="store_true", help="exit 1 when a file is stale, write nothing")
    p.set_defaults(fn=_cmd_generate_macros)

    p = sub.add_parser("holidays", help="regenerate seeds/jp_holidays.csv from the `holidays` package")
    p.add_argument("--start-year", type=int, default=1995)
    p.add_argument("--end-year", type=int, default=2035)
    p.add_argument("--out", default=None)
    p.set_defaults(fn=_cmd_holidays)

    p = sub.add_parser("warmup", help="compile and cache every numba kernel (run by make install)")
    p.set_defaults(fn=_cmd_warmup)

    p = sub.add_parser("bench", help="the benchmarks (make bench); writes bench/results/latest.json")
    p.add_argument("--only", action="append", default=None, help="run one benchmark (repeatable)")
    p.set_defaults(fn=_cmd_bench)

    from python_jobs import catalog, health, report, runs, training

    settings.add_parser(sub)
    training.add_parser(sub)
    health.add_parser(sub)
    runs.add_parser(sub)
    catalog.add_parser(sub)
    from python_jobs.ingest import rejects

    rejects.add_parser(sub)
    report.add_parser(sub)
    from python_jobs.realtime import cli as realtime_cli

    realtime_cli.add_parsers(sub)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that carry a message for the user (imported here: the CLI starts fast)."""
    from python_jobs.db import DatabaseError
    from python_jobs.dbt import DbtError
    from python_jobs.identifiers import InvalidIdentifier
    from python_jobs.ingest import FileLevelError, IngestError

    return (
        DatabaseError,
        DbtError,
        InvalidIdentifier,
        IngestError,
        FileLevelError,
        config.ConfigError,
        definitions.DefinitionError,
    )


def main(argv: list[str] | None = None) -> int:
    # Settings first: the parser's defaults come from them, and bad settings stop here.
    code = settings.configure_from_argv(sys.argv[1:] if argv is None else argv)
    if code:
        return code
    parser = build_parser()
    args = parser.parse_args(argv)
    log.configure(args.log_level)
    try:
        return int(args.fn(args) or 0)
    except _expected_errors() as exc:
        from python_jobs.redact import redact

        print(f"error: {redact(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
