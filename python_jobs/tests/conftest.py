"""Shared fixtures: a real PostgreSQL (DATABASE_URL or the embedded one) and schemas per test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from python_jobs import config

# Before numba is imported anywhere: compiled kernels are cached on disk across test runs.
os.environ.setdefault("NUMBA_CACHE_DIR", str(config.numba_cache_dir()))
# dbt artefacts of the tests stay apart from those of `make demo` / `make docs`.
os.environ.setdefault("DBT_TARGET_PATH", str(config.REPO_ROOT / "target" / "pytest"))
os.environ.setdefault("DBT_LOG_PATH", str(config.REPO_ROOT / "logs" / "pytest"))
# Under pytest-xdist (`make test`), each worker process runs dbt in folders of its own: two dbt
# runs writing one manifest, partial-parse file and run_results.json would read each other's.
# The schemas are apart already: every fixture makes a uniquely named one.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
# Once: a test module that imports this one by its package name runs this code a second time.
if XDIST_WORKER:
    for _name in ("DBT_TARGET_PATH", "DBT_LOG_PATH"):
        if Path(os.environ[_name]).name != XDIST_WORKER:
            os.environ[_name] = str(Path(os.environ[_name]) / XDIST_WORKER)
# The online service stores its accepted points in PostgreSQL only in the tests that ask for
# it (in a schema of their own): the others must not write market rows into a shared schema.
os.environ.setdefault("LOTO_STORE_POINTS", "false")


@pytest.fixture(scope="session")
def pg_url() -> str:
    from python_jobs import db

    return db.database_url()


def _drop_schema(url: str, schema: str) -> None:
    from psycopg import sql

    from python_jobs import db

    with db.connect(url, autocommit=True) as conn:
        # <schema>_evaluator holds the seed dbt_project_evaluator_exceptions (dbt_project.yml).
        for name in (schema, f"{schema}_evaluator"):
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))


def _new_schema_name(name: str) -> str:
    return f"t_{name}_{uuid.uuid4().hex[:8]}".lower()


@pytest.fixture
def fresh_schema(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Factory: ``fresh_schema("name")`` makes an empty schema and points DBT_SCHEMA at it."""
    from psycopg import sql

    from python_jobs import db

    made: list[str] = []

    def make(name: str = "test") -> str:
        schema = _new_schema_name(name)
        with db.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        made.append(schema)
        monkeypatch.setenv("DBT_SCHEMA", schema)
        return schema

    yield make
    for schema in made:
        _drop_schema(pg_url, schema)


def _keep_latest_draws(url: str, schema: str, draws: int) -> None:
    """Delete the draws (and their prizes) of each lottery before its ``draws`` newest ones."""
    from psycopg import sql

    from python_jobs import db
    from python_jobs.ingest.load import RAW_PRIZES_TABLE

    raw = db.qualified(config.RAW_DRAWS_TABLE, schema)
    first_kept = sql.SQL(
        "(select loto, ds as first_kept from (select loto, ds, row_number() over "
        "(partition by loto order by ds desc) as age from (select distinct loto, ds from {}) as dates) "
        "as ranked where age = %s) as cut"
    ).format(raw)
    with db.connect(url) as conn:
        for table in (db.qualified(RAW_PRIZES_TABLE, schema), raw):
            conn.execute(
                sql.SQL(
                    "delete from {} as kept using {} where kept.loto = cut.loto and kept.ds < cut.first_kept"
                ).format(table, first_kept),
                (draws,),
            )
        conn.commit()


def load_bundled(
    url: str, schema: str, *, build_staging: bool = True, latest_draws: int | None = None
) -> None:
    """Ingest the bundled files into ``schema``, load the seeds and build the staging models.

    ``latest_draws`` keeps only the newest draws of each lottery, for tests that need a history
    of some length rather than all of it.
    """
    from python_jobs import dbt
    from python_jobs.ingest import ingest_file

    previous = os.environ.get("DBT_SCHEMA")
    os.environ["DBT_SCHEMA"] = schema
    try:
        for loto, path in config.BUNDLED_FILES:
            ingest_file(loto, path, url=url)
        if latest_draws is not None:
            _keep_latest_draws(url, schema, latest_draws)
        if build_staging:
            dbt.run(["seed", "--quiet"], url=url)
            dbt.run(["build", "--quiet", "--select", "staging"], url=url)
    finally:
        if previous is None:
            os.environ.pop("DBT_SCHEMA", None)
        else:
            os.environ["DBT_SCHEMA"] = previous


@pytest.fixture(scope="session")
def loaded_schema(pg_url: str) -> Iterator[str]:
    """A schema with the bundled real data ingested, seeds loaded and staging built."""
    schema = _new_schema_name("loaded")
    load_bundled(pg_url, schema)
    yield schema
    _drop_schema(pg_url, schema)


@dataclass(frozen=True)
class DemoRun:
    """The session's ``make demo``: the schema it built and what it printed."""

    schema: str
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def demo_run(pg_url: str) -> Iterator[DemoRun]:
    """The whole pipeline on the bundled data, run as a user runs it: ``python -m python_jobs
    demo`` in a process of its own, into a schema of its own. A demo that fails fails every test
    that reads its schema, with the command's output."""
    schema = _new_schema_name("demo")
    command = [sys.executable, "-m", "python_jobs", "demo", "--device", "cpu"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=config.REPO_ROOT,
        env={**os.environ, "DBT_SCHEMA": schema},
    )
    if done.returncode != 0:
        _drop_schema(pg_url, schema)
        shown = " ".join(command[1:])
        pytest.fail(f"`{shown}` exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}")
    yield DemoRun(schema, done.stdout, done.stderr)
    _drop_schema(pg_url, schema)


@pytest.fixture(scope="session")
def demo_schema(demo_run: DemoRun) -> str:
    """A schema built by the whole pipeline (``make demo``'s steps) on the bundled data."""
    return demo_run.schema


# -- parallel runs (pytest-xdist, `--dist loadgroup`) --------------------------------------------

# Rough weight of a test for the order below: one that runs dbt or is marked slow costs about
# ten quick ones.
SLOW_MARKS = ("dbt", "slow")


def _loadgroup(config: pytest.Config) -> bool:
    """``--dist loadgroup``: the controller's option; a worker's is ``no``, with xdist's own
    ``loadgroup`` flag set instead."""
    if not config.pluginmanager.hasplugin("xdist"):
        return False
    return config.getoption("dist", "no") == "loadgroup" or bool(getattr(config.option, "loadgroup", False))


def _group(item: pytest.Item, demo_modules: set[str]) -> str:
    """The tests that share a built schema run on one worker, so it is built once: a module's
    tests (its module-scoped fixtures), and every module that uses the demo's schema together.
    A test marked ``xdist_group`` keeps its group (a module split in groups of its own)."""
    marked = item.get_closest_marker("xdist_group")
    if marked is not None:
        return marked.args[0] if marked.args else marked.kwargs["name"]
    module = item.nodeid.split("::")[0]
    return "demo" if module in demo_modules else module


def _weight(item: pytest.Item) -> int:
    return 10 if any(item.get_closest_marker(mark) for mark in SLOW_MARKS) else 1


def pytest_configure(config: pytest.Config) -> None:
    """Under ``loadgroup``, xdist hands out the groups in the order of the collection (below),
    not re-sorted by their number of tests: a group of a few long tests would come last."""
    if _loadgroup(config):
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist's ``loadgroup``: one group per shared schema, the heaviest groups first.

    A worker takes a whole group; started last, a long group (the incremental-run property test,
    the demo's modules) would leave the other workers idle at the end, so the groups are handed
    out longest first. Runs here before xdist reads the ``xdist_group`` marks (``tryfirst``).
    """
    if not (XDIST_WORKER and _loadgroup(config)):
        return
    demo_modules = {item.nodeid.split("::")[0] for item in items if "demo_run" in item.fixturenames}
    groups = {id(item): _group(item, demo_modules) for item in items}
    weights: dict[str, int] = {}
    for item in items:
        weights[groups[id(item)]] = weights.get(groups[id(item)], 0) + _weight(item)
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[id(item)]))
    # Stable: within a group, the collection order.
    items.sort(key=lambda item: (-weights[groups[id(item)]], groups[id(item)]))
