"""Project defaults in one place.

Tests patch attributes of this module (``monkeypatch.setattr(config, ...)``) rather than
globals scattered across modules. The SQL side reads the same values from the dbt vars in
``dbt_project.yml``; ``python_jobs/tests/test_config.py`` keeps the two in step.
"""

from __future__ import annotations

import os
from pathlib import Path

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

# Feature definitions shared with dbt (dbt_project.yml vars).
LAGS = (1, 2, 3, 7, 14, 21, 28, 30, 60)
WINDOWS = (3, 7, 14, 21, 30, 60, 90)
DIFFS = (1, 2, 7)
PCT_CHANGES = (1, 7)
FREQ_WINDOWS = (10, 50, 100)
MP_WINDOW = 8
SEASON_LENGTH = 7
FUTR_HORIZON = 10

# hist_y_iforest_score (python_jobs/features/anomaly.py): an IsolationForest on the last
# IFOREST_EMBED values, first fitted once IFOREST_MIN_TRAIN rows exist, refitted each time
# the training rows grow IFOREST_REFIT_GROWTH-fold.
IFOREST_EMBED = 3
IFOREST_MIN_TRAIN = 128
IFOREST_REFIT_GROWTH = 4
IFOREST_N_ESTIMATORS = 32
IFOREST_RANDOM_STATE = 0

# Table names in the target schema.
RAW_DRAWS_TABLE = "raw_lottery_draws"
RAW_REJECTS_TABLE = "raw_lottery_rejects"
INGEST_RUNS_TABLE = "raw_ingest_runs"
STAGING_MODEL = "stg_lottery__draws"


def target_schema() -> str:
    """Schema every table of the project lives in (settings ``database.dbt_schema``: ``DBT_SCHEMA``)."""
    from python_jobs import settings

    return settings.get().database.dbt_schema


def numba_cache_dir() -> Path:
    return Path(os.environ.get("NUMBA_CACHE_DIR", LOCAL_DIR / "numba_cache"))
