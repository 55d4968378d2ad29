"""The report's figures, drawn with matplotlib's Agg backend (no display needed) into PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: a server or CI has no display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from python_jobs.report.data import BAND_WINDOW, HOT_COLD_DRAWS

#: Draws shown per position: the whole history of a twice-weekly lottery is too dense to read.
SERIES_TAIL = 300
DPI = 100


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def series_plot(series: pd.DataFrame, unique_id: str, path: Path) -> Path:
    """One position: y, the rolling mean with its IQR and 2-std bands, and the outlier flags."""
    rows = series[series["unique_id"] == unique_id].tail(SERIES_TAIL)
    fig, ax = plt.subplots(figsize=(11, 3.2))
    ds = rows["ds"]
    ax.fill_between(
        ds,
        rows["band_mean"] - 2 * rows["band_std"],
        rows["band_mean"] + 2 * rows["band_std"],
        color="#c6dbef",
        label="mean ± 2 std",
        step="mid",
    )
    ax.fill_between(ds, rows["band_q25"], rows["band_q75"], color="#6baed6", label="q25-q75", step="mid")
    ax.plot(ds, rows["y"], color="#333333", linewidth=0.8, marker=".", markersize=3, label="y")
    ax.plot(ds, rows["band_mean"], color="#08519c", linewidth=1.4, label=f"mean w{BAND_WINDOW}")
    for column, color, label in (
        ("is_outlier_iqr", "#fd8d3c", "IQR outlier"),
        ("is_outlier_z", "#d62728", "z outlier (|z| > 3)"),
    ):
        flagged = rows[rows[column].fillna(False).astype(bool)]
        ax.scatter(flagged["ds"], flagged["y"], color=color, s=36, zorder=5, label=f"{label}: {len(flagged)}")
    ax.set_title(f"{unique_id}: last {len(rows)} draws, rolling window {BAND_WINDOW} draws")
    ax.set_ylabel("number drawn")
    ax.legend(loc="upper left", ncol=6, fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def number_table(draws: pd.DataFrame) -> pd.DataFrame:
    """Per number: appearances overall and in the last draws, and draws since it last appeared."""
    order = draws.drop_duplicates("ds")["ds"].sort_values().reset_index(drop=True)
    draw_index = pd.Series(np.arange(len(order)), index=order)
    last_draw = len(order) - 1
    recent = set(order.tail(HOT_COLD_DRAWS))
    numbers = np.arange(int(draws["y"].min()), int(draws["y"].max()) + 1)
    rows = []
    for number in numbers:
        seen = draws.loc[draws["y"] == number, "ds"]
        rows.append(
            {
                "number": int(number),
                "appearances": len(seen),
                "recent": int(seen.isin(recent).sum()),
                "gap": int(last_draw - draw_index[seen].max()) if len(seen) else None,
            }
        )
    return pd.DataFrame(rows)


def heatmap_plot(draws: pd.DataFrame, table: pd.DataFrame, path: Path) -> Path:
    """Appearances per year and number, and each number's recent frequency and current gap."""
    years = draws["ds"].dt.year
    counts = pd.crosstab(years, draws["y"]).reindex(columns=table["number"], fill_value=0)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 7.5), gridspec_kw={"height_ratios": [3, 1.4]}, constrained_layout=False
    )
    image = top.imshow(counts.to_numpy(), aspect="auto", cmap="YlOrRd", interpolation="nearest")
    top.set_xticks(range(len(counts.columns)), counts.columns, fontsize=7)
    top.set_yticks(range(len(counts.index)), counts.index, fontsize=7)
    top.set_xlabel("number")
    top.set_ylabel("year")
    top.set_title("appearances among the main numbers, per year")
    fig.colorbar(image, ax=top, label="appearances")
    expected = table["recent"].mean()
    colors = ["#d62728" if value > expected else "#1f77b4" for value in table["recent"]]
    bottom.bar(table["number"], table["recent"], color=colors)
    bottom.axhline(expected, color="#333333", linewidth=1, linestyle="--", label=f"mean {expected:.1f}")
    gap_axis = bottom.twinx()
    gap_axis.plot(table["number"], table["gap"], color="#2ca02c", marker="o", markersize=3, linewidth=1)
    gap_axis.set_ylabel("draws since last drawn", color="#2ca02c")
    bottom.set_xlabel("number (red: hot, above the mean; blue: cold)")
    bottom.set_ylabel(f"last {HOT_COLD_DRAWS} draws")
    bottom.set_title(f"hot and cold numbers: appearances in the last {HOT_COLD_DRAWS} draws, and current gap")
    bottom.legend(loc="upper left", fontsize=8, frameon=False)
    return _save(fig, path)


def stat_distribution_plot(stats: pd.DataFrame, path: Path) -> Path:
    """Each static feature across the lottery's series, standardized so they share one axis."""
    values = stats.set_index("unique_id")
    spread = values.std(ddof=0)
    values = values.loc[:, spread.notna() & (spread > 0)]
    z = (values - values.mean()) / values.std(ddof=0)
    fig, ax = plt.subplots(figsize=(11, max(4.0, 0.16 * z.shape[1] + 1.5)))
    positions = np.arange(z.shape[1])
    ax.boxplot(
        [z[column].dropna() for column in z.columns],
        positions=positions,
        vert=False,
        widths=0.6,
        showfliers=False,
    )
    cmap = plt.get_cmap("tab10")
    for index, unique_id in enumerate(z.index):
        ax.scatter(z.loc[unique_id], positions, s=10, color=cmap(index % 10), label=unique_id, zorder=3)
    ax.set_yticks(positions, [column.removeprefix("stat_") for column in z.columns], fontsize=6)
    ax.set_xlabel("value standardized across the series (z)")
    ax.set_title(f"{z.shape[1]} static features across {z.shape[0]} series (constant ones left out)")
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def timings_plot(stages: pd.DataFrame, families: pd.DataFrame, path: Path) -> Path:
    """Seconds per stage of the last recorded run, and per family of the last feature job."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    if len(stages):
        colors = ["#2ca02c" if outcome == "ok" else "#d62728" for outcome in stages["outcome"]]
        left.barh(stages["stage"], stages["seconds"].astype(float), color=colors)
        left.invert_yaxis()
    else:
        left.text(0.5, 0.5, "no run recorded", ha="center", va="center", transform=left.transAxes)
    left.set_title("last run: seconds per stage (red: failed)")
    left.set_xlabel("seconds")
    if len(families):
        right.barh(families["family"], families["seconds"].astype(float), color="#9467bd")
        right.invert_yaxis()
    else:
        right.text(0.5, 0.5, "no feature job recorded", ha="center", va="center", transform=right.transAxes)
    right.set_title("last feature job: seconds per family")
    right.set_xlabel("seconds")
    return _save(fig, path)
