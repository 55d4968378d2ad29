"""Slow, obviously-correct references for the prize and gap-regularity columns.

Computed from the bundled results file itself (prizes) and from plain Python loops over each
lottery's draws (gaps), independently of the SQL models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from python_jobs import definitions

# The window of hist_y_prize1_corr_w{n}: the dbt var stat_window.
WINDOW = definitions.load().stat_window


def loto6_prizes(path: Path) -> pd.DataFrame:
    """One row per (ds, tier) of a loto6.json-style file: winners and prize (NaN if nobody won).

    ``ds`` is the draw day as a midnight timestamp, as the draws' ``ds`` is, so the two join.
    """
    rows = []
    for draw in json.loads(path.read_text(encoding="utf-8")):
        year, month, day = (int(part) for part in draw["日付"].split("/"))
        for tier in range(1, 6):
            winners = int(draw[f"{tier}等口数"])
            prize = float(draw[f"{tier}等賞金"]) if winners > 0 else np.nan
            rows.append(("loto6", pd.Timestamp(year, month, day), tier, winners, prize))
    return pd.DataFrame(rows, columns=["loto", "ds", "tier", "winners", "prize"])


def draw_prizes(prizes: pd.DataFrame) -> pd.DataFrame:
    """Per (loto, ds): tier-1 winners, tier-1 payout (0 if nobody won), payout over all tiers."""
    payout = prizes["winners"] * prizes["prize"].fillna(0.0)
    frame = prizes.assign(payout=payout)
    tier1 = frame[frame["tier"] == 1].set_index(["loto", "ds"])
    total = frame.groupby(["loto", "ds"])["payout"].sum()
    return pd.DataFrame(
        {
            "hist_draw_prize1_winners": tier1["winners"].astype(float),
            "hist_draw_prize1_payout": tier1["payout"].astype(float),
            "hist_draw_payout_total": total.astype(float),
        }
    )


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if np.isnan(x).any() or np.isnan(y).any() or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan
    return float(np.corrcoef(x, y)[0, 1])


def prize_correlation(draws: pd.DataFrame, per_draw: pd.DataFrame) -> pd.Series:
    """hist_y_prize1_corr_w{WINDOW} for every row of ``draws`` (loto, unique_id, ds, y)."""
    payout = per_draw["hist_draw_prize1_payout"]
    out = {}
    for (loto, unique_id), series in draws.sort_values("ds").groupby(["loto", "unique_id"]):
        y = series["y"].to_numpy(dtype=float)
        x = np.array([payout.get((loto, ds), np.nan) for ds in series["ds"]], dtype=float)
        for i, ds in enumerate(series["ds"]):
            value = (
                _pearson(y[i - WINDOW + 1 : i + 1], x[i - WINDOW + 1 : i + 1]) if i + 1 >= WINDOW else np.nan
            )
            out[(loto, unique_id, ds)] = value
    return pd.Series(out, name=f"hist_y_prize1_corr_w{WINDOW}")


def gap_statistics(draws: pd.DataFrame, main_pattern: str = r"^N[0-9]+$") -> pd.DataFrame:
    """hist_y_gap_mean / hist_y_gap_std per (loto, ds, y) asked about by a row of ``draws``.

    A gap is the number of draws between two consecutive appearances of a value among the main
    numbers; only gaps closed before the draw count.
    """
    out = {}
    for loto, lottery in draws.groupby("loto"):
        dates = sorted(lottery["ds"].unique())
        index = {ds: i for i, ds in enumerate(dates)}
        main = lottery[lottery["unique_id"].str.match(main_pattern)]
        appearances: dict[float, list[int]] = {}
        for ds, y in zip(main["ds"], main["y"].astype(float), strict=True):
            appearances.setdefault(y, []).append(index[ds])
        for ds, y in zip(lottery["ds"], lottery["y"].astype(float), strict=True):
            before = sorted(set(i for i in appearances.get(y, []) if i < index[ds]))
            gaps = np.diff(before).astype(float)
            mean = gaps.mean() if len(gaps) >= 1 else np.nan
            std = gaps.std(ddof=1) if len(gaps) >= 2 else np.nan
            out[(loto, ds, y)] = (mean, std)
    frame = pd.DataFrame.from_dict(out, orient="index", columns=["hist_y_gap_mean", "hist_y_gap_std"])
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["loto", "ds", "y"])
    return frame


def stat_prizes(draws: pd.DataFrame, per_draw: pd.DataFrame) -> pd.DataFrame:
    """features_stat's prize columns per (loto, unique_id) of lotteries with prize data."""
    rows = {}
    for (loto, unique_id), series in draws.groupby(["loto", "unique_id"]):
        if loto not in per_draw.index.get_level_values("loto"):
            continue
        lottery = per_draw.loc[loto]
        joined = series.join(lottery, on="ds", how="inner")
        rows[(loto, unique_id)] = {
            "stat_prize1_hit_share": float((lottery["hist_draw_prize1_winners"] > 0).mean()),
            "stat_prize1_payout_mean": float(lottery["hist_draw_prize1_payout"].mean()),
            "stat_prize1_payout_median": float(lottery["hist_draw_prize1_payout"].median()),
            "stat_y_prize1_corr": _pearson(
                joined["y"].to_numpy(dtype=float), joined["hist_draw_prize1_payout"].to_numpy(dtype=float)
            ),
        }
    return pd.DataFrame.from_dict(rows, orient="index")
