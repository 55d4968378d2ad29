"""A synthetic lottery-like panel, loaded through `ingest` as a long-format CSV."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from python_jobs.ingest import ingest_file


def make_panel(n_series: int = 1000, n_rows: int = 1000, seed: int = 0, loto: str = "bench") -> pd.DataFrame:
    """``n_series`` positions N1..Nn of one lottery over ``n_rows`` draws (Mon/Thu), y in 1..43."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2000-01-03", periods=n_rows * 3, freq="C", weekmask="Mon Thu")[:n_rows]
    y = rng.integers(1, 44, size=(n_series, n_rows))
    co = rng.integers(0, 5, size=n_rows) * 100_000_000
    frame = pd.DataFrame(
        {
            "loto": loto,
            "unique_id": np.repeat([f"N{k}" for k in range(1, n_series + 1)], n_rows),
            "ds": np.tile(dates.strftime("%Y-%m-%d"), n_series),
            "y": y.ravel(),
            "num": np.tile(np.arange(1, n_rows + 1), n_series),
            "co": np.tile(co, n_series),
        }
    )
    return frame


def load_panel(url: str, n_series: int = 1000, n_rows: int = 1000, loto: str = "bench") -> float:
    """Write the panel as long-format CSV and ingest it. Returns the ingest seconds."""
    frame = make_panel(n_series, n_rows, loto=loto)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{loto}_{n_series}x{n_rows}.csv"
        frame.to_csv(path, index=False)
        start = time.perf_counter()
        ingest_file(loto, path, url=url)
        return time.perf_counter() - start
