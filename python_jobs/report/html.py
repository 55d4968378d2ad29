"""The report page: the figures of :mod:`python_jobs.report.plots` and a few tables, as one HTML file.

The PNGs are written beside the page, in ``<loto>_files/``, and referenced by relative paths,
so the folder can be copied or served as it is.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from python_jobs import config
from python_jobs.report import plots
from python_jobs.report.data import BAND_WINDOW, HOT_COLD_DRAWS, ReportData

REPORTS_DIR = config.REPO_ROOT / "reports"
#: Numbers listed as hot and as cold in the table under the heatmap.
HOT_COLD_SHOWN = 6

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
table { border-collapse: collapse; margin: 0.6em 0; }
td, th { padding: 2px 10px; border-bottom: 1px solid #eee; }
td.num { text-align: right; } .muted { color: #666; }
"""


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            text = f"{value:,.2f}" if isinstance(value, float) else str(value)
            cells.append(
                f'<td class="num">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"
            )
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _image(folder: Path, path: Path, alt: str) -> str:
    return f'<img src="{html.escape(folder.name)}/{html.escape(path.name)}" alt="{html.escape(alt)}">'


def _positions(data: ReportData) -> list[str]:
    # Main numbers first (N1, N2, ...), then bonus numbers, in numeric order.
    return sorted(data.series["unique_id"].unique(), key=lambda uid: (uid[0] != "N", int(uid[1:] or 0)))


def _series_section(data: ReportData, folder: Path) -> str:
    positions = _positions(data)
    outliers = data.series.groupby("unique_id")[["is_outlier_z", "is_outlier_iqr"]].sum().astype(int)
    outliers = outliers.reindex(positions).reset_index()
    outliers = outliers.rename(columns={"is_outlier_z": "z outliers", "is_outlier_iqr": "IQR outliers"})
    images = [
        _image(folder, plots.series_plot(data.series, uid, folder / f"series_{uid}.png"), f"series {uid}")
        for uid in positions
    ]
    return f"""<h2 id="series">Each position: rolling bands and outlier flags</h2>
<p>The drawn number, the rolling mean over {BAND_WINDOW} draws with its q25-q75 band and mean ± 2 std,
and the rows flagged by <code>hist_y_is_outlier_z_w{BAND_WINDOW}</code> and
<code>hist_y_is_outlier_iqr_w{BAND_WINDOW}</code> (features_hist).</p>
{_table(outliers)}
{"".join(images)}
"""


def _numbers_section(data: ReportData, folder: Path) -> str:
    numbers = plots.number_table(data.draws)
    heatmap = plots.heatmap_plot(data.draws, numbers, folder / "numbers_heatmap.png")
    ranked = numbers.sort_values(["recent", "appearances"], ascending=False)
    hot_cold = pd.DataFrame(
        {
            "hot number": ranked["number"].head(HOT_COLD_SHOWN).to_list(),
            f"hot: in last {HOT_COLD_DRAWS}": ranked["recent"].head(HOT_COLD_SHOWN).to_list(),
            "cold number": ranked["number"].tail(HOT_COLD_SHOWN).to_list()[::-1],
            f"cold: in last {HOT_COLD_DRAWS}": ranked["recent"].tail(HOT_COLD_SHOWN).to_list()[::-1],
        }
    )
    return f"""<h2 id="numbers">Number frequency and gaps: hot and cold numbers</h2>
{_image(folder, heatmap, "number frequency heatmap")}
{_table(hot_cold)}
"""


_STAT_NUMBERS = ("spread", "min", "median", "max")


def _stat_section(data: ReportData, folder: Path) -> str:
    figure = plots.stat_family_plot(data.stats, folder / "stat_distribution.png")
    overview = plots.stat_overview(data.stats)
    # Four significant digits: the features range from 1e-4 (a frequency) to 1e6 (an energy).
    shown = {column: overview[column].map(lambda value: f"{value:.4g}") for column in _STAT_NUMBERS}
    overview = overview.assign(feature=overview["feature"].str.removeprefix("stat_"), **shown)
    families = overview.groupby("family", sort=False).size().reset_index(name="features")
    return f"""<h2 id="stat">Static features across the series</h2>
<p>The <code>stat_</code> columns of features_stat ({len(overview)} vary between this lottery's
series), grouped by the family that computes them. The figure shows, per family, the
{plots.STAT_PER_FAMILY} that differ most (relative spread: standard deviation over mean absolute
value), coloured by their z-score across the series; the table lists every one.</p>
{_table(families)}
{_image(folder, figure, "static features by family")}
<details><summary>every static feature: spread, min, median, max, the series with the max</summary>
{_table(overview)}
</details>
"""


def _timings_section(data: ReportData, folder: Path) -> str:
    timings = plots.timings_plot(data.stages, data.families, folder / "timings.png")
    stages = data.stages
    if len(stages):
        stages = stages.assign(seconds=stages["seconds"].astype(float))
    return f"""<h2 id="timings">The last run's timings</h2>
<p class="muted">run {html.escape(data.run_id or "none recorded")} (loto-features runs)</p>
{_image(folder, timings, "timings")}
{_table(stages) if len(stages) else ""}
"""


def write_report(data: ReportData, out_dir: Path = REPORTS_DIR) -> Path:
    """Draw every figure of ``data`` and write ``out_dir/<loto>.html``; returns its path."""
    folder = out_dir / f"{data.loto}_files"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()  # positions of an earlier, different load must not linger
    draws = data.draws.drop_duplicates("ds")
    title = f"{html.escape(data.loto)} feature report"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_STYLE}</style></head><body>
<h1>{title}</h1>
<p class="muted">{len(draws):,} draws from {draws["ds"].min():%Y-%m-%d} to {draws["ds"].max():%Y-%m-%d},
{len(_positions(data))} positions; schema {html.escape(config.target_schema())};
written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>
{_series_section(data, folder)}
{_numbers_section(data, folder)}
{_stat_section(data, folder)}
{_timings_section(data, folder)}
</body></html>
"""
    target = out_dir / f"{data.loto}.html"
    target.write_text(page, encoding="utf-8")
    return target
