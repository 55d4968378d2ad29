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


#: Features per family in the figure: those that differ most between the series.
STAT_PER_FAMILY = 4
#: Family of the ``stat_`` columns that dbt computes in SQL rather than the Python job.
SQL_FAMILY = "sql (dbt)"
# z-scores beyond this share the extreme colour: with a handful of series |z| stays under ~2.5.
_Z_CLIP = 2.5


def stat_families(columns: list[str]) -> dict[str, str]:
    """Each ``stat_`` column's family: the registered Python family that writes it, else SQL."""
    from python_jobs.features import registry

    owner: dict[str, str] = {}
    for family in registry.families():
        if family.kind == "stat":
            owner.update(dict.fromkeys(family.output_names(), family.name))
    return {column: owner.get(column, SQL_FAMILY) for column in columns}


def stat_overview(stats: pd.DataFrame) -> pd.DataFrame:
    """Per static feature: family, spread across the series, min, median, max, where the max is.

    ``spread`` is the standard deviation over the mean absolute value (a relative spread, so
    features of any scale compare); constant and all-NULL features are left out. Sorted by
    family, then spread, largest first.
    """
    values = stats.set_index("unique_id")
    spread = values.std(ddof=0)
    values = values.loc[:, spread.notna() & (spread > 0)]
    families = stat_families(list(values.columns))
    scale = values.abs().mean().replace(0, np.nan)
    table = pd.DataFrame(
        {
            "feature": values.columns,
            "family": [families[column] for column in values.columns],
            "spread": (values.std(ddof=0) / scale).to_numpy(),
            "min": values.min().to_numpy(),
            "median": values.median().to_numpy(),
            "max": values.max().to_numpy(),
            "highest": values.idxmax().to_numpy(),
        }
    )
    order = {name: index for index, name in enumerate(_family_order(table["family"]))}
    table = table.assign(_order=table["family"].map(order)).sort_values(
        ["_order", "spread"], ascending=[True, False], na_position="last"
    )
    return table.drop(columns="_order").reset_index(drop=True)


def _family_order(families: pd.Series) -> list[str]:
    # The SQL columns first (what every series has), then the Python families as registered.
    seen = list(dict.fromkeys(families))
    return sorted(seen, key=lambda name: (name != SQL_FAMILY, seen.index(name)))


def stat_family_plot(stats: pd.DataFrame, path: Path, per_family: int = STAT_PER_FAMILY) -> Path:
    """The static features that differ most between the series, grouped by family.

    One heatmap: a column per series, a row per feature (the ``per_family`` with the largest
    relative spread of each family), the colour its z-score across the series. The other
    features are in the report's table.
    """
    overview = stat_overview(stats)
    shown = overview.groupby("family", sort=False).head(per_family)
    values = stats.set_index("unique_id")[shown["feature"]]
    z = ((values - values.mean()) / values.std(ddof=0)).T.clip(-_Z_CLIP, _Z_CLIP)
    fig, ax = plt.subplots(figsize=(11, 1.6 + 0.24 * len(shown)))
    image = ax.imshow(z.to_numpy(dtype=float), aspect="auto", cmap="RdBu_r", vmin=-_Z_CLIP, vmax=_Z_CLIP)
    ax.set_xticks(range(z.shape[1]), z.columns, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(shown)), [name.removeprefix("stat_") for name in shown["feature"]], fontsize=7.5)
    families = shown["family"].to_list()
    for row, family in enumerate(families):
        if row == 0 or family != families[row - 1]:
            if row:
                ax.axhline(row - 0.5, color="#222222", linewidth=1.2)
            count = int((overview["family"] == family).sum())
            ax.annotate(
                f"{family} ({count})",
                xy=(1.01, row - 0.4),
                xycoords=("axes fraction", "data"),
                va="top",
                fontsize=8,
                fontweight="bold",
            )
    ax.set_title(
        f"the {len(shown)} static features that differ most between the series, {per_family} per family "
        f"(of {len(overview)}; all in the table below)",
        fontsize=10,
        pad=24,
    )
    fig.colorbar(image, ax=ax, label="z across the series", shrink=0.5, pad=0.22, location="right")
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
