"""A batch's family results turned into the rows of its write (:class:`~python_jobs.job.writing.BatchWrite`).

The per-series values (each series' latest stat snapshot), the per-draw values after each
series' cutoff, one ``py_job_state`` row per (series, family) and the failures to record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from python_jobs.features.registry import Family
from python_jobs.job import snapshots
from python_jobs.job.compute import FamilyBatchResult
from python_jobs.job.planning import Planned
from python_jobs.job.reading import SeriesData
from python_jobs.job.writing import BatchWrite


@dataclass
class InFlight:
    """A batch whose family tasks were submitted and are not collected yet."""

    items: list[Planned]
    series: list[SeriesData]
    futures: dict[str, Any]


def assemble(
    job: InFlight,
    results: dict[str, FamilyBatchResult],
    errors: dict[str, list[tuple[int, str]]],
    stat: snapshots.AssembledStat | None,
    run_id: str,
    by_name: dict[str, Family],
    outputs: dict[str, list[str]],
    versions: dict[str, str],
    record_errors: bool,
) -> BatchWrite:
    """Turn a batch's family results into the rows of one write.

    The stat families' ``py_features_stat`` row is each series' latest snapshot; a series'
    ``py_job_state`` row of a stat family is an error when that snapshot failed. Failures
    become ``py_job_errors`` rows where ``record_errors``.
    """
    stat_names = [n for n in job.items[0].families if by_name[n].kind == "stat"]
    hist_names = [n for n in job.items[0].families if by_name[n].kind == "hist"]
    cutoffs = [item.cutoff for item in job.items]
    failed = {name: {i for i, _ in errors.get(name, [])} for name in results}
    if stat is not None:
        failed.update(stat.failed_latest)
    rows = []
    if record_errors:
        rows = [
            (job.series[i].loto, job.series[i].unique_id, name, message[:2000])
            for name, found in errors.items()
            for i, message in found
        ]
    return BatchWrite(
        run_id=run_id,
        series=job.series,
        cutoffs=cutoffs,
        stat_columns=[c for n in stat_names for c in outputs[n]],
        stat_values=stat.latest_values if stat is not None else None,
        hist_columns=[c for n in hist_names for c in outputs[n]],
        hist_values=_new_hist_rows(job, results, hist_names, cutoffs) if hist_names else None,
        state=_state_rows(job, failed, versions),
        errors=rows,
        history=stat.history if stat is not None else None,
    )


def _new_hist_rows(
    job: InFlight, results: dict[str, FamilyBatchResult], names: list[str], cutoffs: list
) -> np.ndarray:
    """The per-draw values of the batch, without the rows at or before each series' cutoff."""
    full = np.hstack([results[n].values for n in names])
    if not job.series:
        return full[np.zeros(0, dtype=bool)]
    keep = np.concatenate(
        [
            s.ds > np.datetime64(c, "us") if c is not None else np.ones(len(s), dtype=bool)
            for s, c in zip(job.series, cutoffs, strict=True)
        ]
    )
    return full[keep]


def _state_rows(job: InFlight, failed: dict[str, set[int]], versions: dict[str, str]) -> list[tuple]:
    """One ``py_job_state`` row per (series, family) of the batch; ``failed`` series by family."""
    rows = []
    for name, failed_series in failed.items():
        for i, item in enumerate(job.items):
            info = item.info
            ok = i not in failed_series
            # A failed (series, family) keeps no checksum, so the next run tries it again.
            rows.append(
                (
                    info.loto,
                    info.unique_id,
                    name,
                    versions[name],
                    int(info.n_rows),
                    info.max_ds,
                    info.checksum if ok else None,
                    "ok" if ok else "error",
                )
            )
    return rows
