"""Real data and references shared by the online-engine tests (no database needed)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from python_jobs import config
from python_jobs.ingest.parse import parse_file

EURUSD_FILE = config.RAW_DATA_DIR / "eurusd_h1.csv"


@lru_cache(maxsize=1)
def bundled_draws() -> pd.DataFrame:
    """The bundled loto6 and bingo5 draws: loto, unique_id, ds (date), y (float), sorted."""
    frames = [parse_file(path, loto).to_frame() for loto, path in config.BUNDLED_FILES]
    draws = pd.concat(frames, ignore_index=True)[["loto", "unique_id", "ds", "y"]]
    draws["ds"] = pd.to_datetime(draws["ds"]).dt.date
    draws["y"] = draws["y"].astype(float)
    return draws.sort_values(["loto", "ds", "unique_id"]).reset_index(drop=True)


@lru_cache(maxsize=1)
def eurusd_close() -> pd.Series:
    """Close prices of the bundled EUR/USD hourly bars, indexed by timestamp string."""
    bars = pd.read_csv(EURUSD_FILE, index_col=0)
    return bars["Close"].astype(float)


def assert_columns_close(got: pd.DataFrame, want: pd.DataFrame, *, rtol: float = 1e-9, atol: float = 0.0):
    """Every column of ``want`` in ``got``: same NULLs, values within ``rtol``; a list of failures."""
    failures = []
    for column in want.columns:
        expected = pd.to_numeric(want[column], errors="coerce").astype(float).to_numpy()
        actual = pd.to_numeric(got[column].astype(object).where(got[column].notna()), errors="coerce")
        actual = actual.astype(float).to_numpy()
        null_mismatch = np.isnan(actual) != np.isnan(expected)
        both = ~np.isnan(actual) & ~np.isnan(expected)
        far = both & ~np.isclose(actual, expected, rtol=rtol, atol=atol)
        if null_mismatch.any() or far.any():
            bad = np.flatnonzero(null_mismatch | far)[:3]
            failures.append(
                f"{column}: {int(null_mismatch.sum())} NULL mismatches, {int(far.sum())} apart, e.g. "
                + ", ".join(f"row {i}: {actual[i]!r} vs {expected[i]!r}" for i in bad)
            )
    return failures
