"""Runtime settings of the project: paths, bundled files, table names, the target schema.

Feature definitions (windows, lags, the matrix-profile window...) are not here: they live in
the ``vars`` of ``dbt_project.yml`` and Python reads them through
:func:`python_jobs.definitions.load`. A feature family's own parameters are declared on its
registration (:mod:`python_jobs.features.registry`).
"""

from __future__ import annotations

import os
from pathlib import Path

from python_jobs import settings
from python_jobs.errors import ConfigError
from python_jobs.identifiers import validate_schema

__all__ = ["ConfigError", "check_schema_name", "numba_cache_dir", "target_schema"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = REPO_ROOT / "seeds"
RAW_DATA_DIR = SEEDS_DIR / "raw"
LOCAL_DIR = Path(os.environ.get("LOTO_LOCAL_DIR", REPO_ROOT / ".local"))
PGDATA_DIR = LOCAL_DIR / "pgdata"
REDIS_DB_PATH = LOCAL_DIR / "redis.db"

# Bundled real data: (loto, file) pairs loaded by `make demo`.
BUNDLED_FILES = (
    ("loto6", RAW_DATA_DIR / "loto6.json"),
    ("bingo5", RAW_DATA_DIR / "bingo5.csv"),
)

# Table names in the target schema.
RAW_DRAWS_TABLE = "raw_lottery_draws"
RAW_REJECTS_TABLE = "raw_lottery_rejects"
INGEST_RUNS_TABLE = "raw_ingest_runs"
STAGING_MODEL = "stg_lottery__draws"


def target_schema() -> str:
    """Schema every table of the project lives in (settings ``database.dbt_schema``, from
    ``DBT_SCHEMA``; default ``public``).

    Raises
    ------
    ConfigError
        The name is not a plain lower-case identifier (``^[a-z_][a-z0-9_]{0,62}$``) or names a
        system schema.
    """
    return check_schema_name(settings.get().database.dbt_schema)


def check_schema_name(schema: str) -> str:
    """``schema`` (``public`` when empty) if it is a usable schema name, else :class:`ConfigError`
    (:func:`python_jobs.identifiers.validate_schema` holds the rule)."""
    return validate_schema(schema or "public")


def numba_cache_dir() -> Path:
    return Path(os.environ.get("NUMBA_CACHE_DIR", LOCAL_DIR / "numba_cache"))
