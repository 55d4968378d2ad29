"""Real series for the feature-family tests, read straight from the bundled files.

Parsed here with json/pandas only (not with the project's ingest code), so the family tests
depend on nothing but the files and the libraries they compare against.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from python_jobs import config
from python_jobs.gpu import gpu_available


def requires_gpu(test):
    """Mark a test ``gpu`` and skip it where no GPU runs a kernel.

    Under ``LOTO_REQUIRE_GPU=1`` (``make test-gpu``) it is not skipped: without a GPU it fails.
    """
    required = os.environ.get("LOTO_REQUIRE_GPU") == "1"
    skip = pytest.mark.skipif(not required and not gpu_available(), reason="needs CuPy and a CUDA device")
    return pytest.mark.gpu(skip(test))


@lru_cache(maxsize=1)
def loto6() -> dict[str, np.ndarray]:
    """``N1``..``N6`` and ``B1`` of loto6.json in date order (2037 draws)."""
    draws = json.loads((config.RAW_DATA_DIR / "loto6.json").read_text(encoding="utf-8"))
    frame = pd.DataFrame(draws)
    frame["ds"] = pd.to_datetime(frame["日付"], format="%Y/%m/%d")
    frame = frame.sort_values("ds")
    series = {f"N{k}": frame[f"第{k}数字"].astype(float).to_numpy(copy=True) for k in range(1, 7)}
    series["B1"] = frame["ボーナス数字"].astype(float).to_numpy(copy=True)
    return series


@lru_cache(maxsize=1)
def bingo5() -> dict[str, np.ndarray]:
    """``N1``..``N8`` of bingo5.csv in file (date) order (375 draws)."""
    frame = pd.read_csv(config.RAW_DATA_DIR / "bingo5.csv", encoding="utf-8-sig")
    return {f"N{k}": frame[f"数字{k}"].astype(float).to_numpy(copy=True) for k in range(1, 9)}


def real_series() -> dict[str, np.ndarray]:
    """A mix of long (loto6) and short (bingo5) real series, keyed ``loto:unique_id``."""
    picked = {f"loto6:{uid}": y for uid, y in loto6().items() if uid in ("N1", "N4", "B1")}
    picked.update({f"bingo5:{uid}": y for uid, y in bingo5().items() if uid in ("N1", "N5", "N8")})
    return picked


def assert_stats_equal(got: dict[str, float], want: dict[str, float], *, rtol: float, atol: float = 0.0):
    """Same keys; each pair both NaN or within tolerance."""
    assert list(got) == list(want)
    for name, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[name]), f"{name}: {got[name]} but the reference is NaN"
        else:
            assert got[name] == pytest.approx(value, rel=rtol, abs=atol), name


def assert_columns_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray], *, atol: float):
    """Same keys; arrays with NaN at the same rows and within ``atol`` elsewhere."""
    assert list(got) == list(want)
    for name, values in want.items():
        np.testing.assert_allclose(got[name], values, rtol=0, atol=atol, equal_nan=True, err_msg=name)
