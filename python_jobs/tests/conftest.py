"""Shared fixtures: a real PostgreSQL (DATABASE_URL or the embedded one) and schemas per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from python_jobs import config

# Before numba is imported anywhere: compiled kernels are cached on disk across test runs.
os.environ.setdefault("NUMBA_CACHE_DIR", str(config.numba_cache_dir()))
# dbt artefacts of the tests stay apart from those of `make demo` / `make docs`.
os.environ.setdefault("DBT_TARGET_PATH", str(config.REPO_ROOT / "target" / "pytest"))
os.environ.setdefault("DBT_LOG_PATH", str(config.REPO_ROOT / "logs" / "pytest"))
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
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


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


def load_bundled(url: str, schema: str, *, build_staging: bool = True) -> None:
    """Ingest the bundled files into ``schema``, load the seeds and build the staging models."""
    from python_jobs import dbt
    from python_jobs.ingest import ingest_file

    previous = os.environ.get("DBT_SCHEMA")
    os.environ["DBT_SCHEMA"] = schema
    try:
        for loto, path in config.BUNDLED_FILES:
            ingest_file(loto, path, url=url)
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


@pytest.fixture(scope="session")
def demo_schema(pg_url: str) -> Iterator[str]:
    """A schema built by the whole pipeline (``make demo``'s steps) on the bundled data."""
    from python_jobs.pipeline import demo

    schema = _new_schema_name("demo")
    previous = os.environ.get("DBT_SCHEMA")
    os.environ["DBT_SCHEMA"] = schema
    try:
        demo(device="cpu", quiet_dbt=True)
    finally:
        if previous is None:
            os.environ.pop("DBT_SCHEMA", None)
        else:
            os.environ["DBT_SCHEMA"] = previous
    yield schema
    _drop_schema(pg_url, schema)
