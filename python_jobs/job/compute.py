"""One family over one batch of series: the work a worker does.

A batch is shipped once for all the families it needs; each family is one task. The family
arrives bound (:meth:`python_jobs.features.registry.Family.bind`): its parameters resolved from
the run's feature definitions, so a worker never reads ``dbt_project.yml`` or ``--vars``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from python_jobs import gpu
from python_jobs.features._batch_memo import BatchMemo, batch_scope
from python_jobs.features.registry import Family
from python_jobs.job.errors import GpuFailure, SeriesFailure
from python_jobs.job.reading import SeriesData
from python_jobs.log import get_logger

log = get_logger(__name__)

# What a family's host stage gave for a batch, computed elsewhere: called once, may raise.
HostResults = Callable[[], list[Any]]


@dataclass
class SeriesBatch:
    """The unit shipped to a worker: a few series, sent once for all families of the batch.

    ``prefix_lengths`` (one tuple per series) are the rows of each of its snapshots: a stat
    family is then computed once per snapshot, on the series cut there, instead of once on the
    whole series. The cuts are made on the worker, so each series travels once.
    """

    series: list[SeriesData]
    prefix_lengths: list[tuple[int, ...]] | None = None
    # What one family computed from a whole series that another reuses; never shipped.
    _memo: BatchMemo | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_memo"}

    def memo(self) -> BatchMemo:
        """The batch's memo (:mod:`python_jobs.features._batch_memo`), made at the first call."""
        if self._memo is None:
            self._memo = BatchMemo(s.y for s in self.series)
        return self._memo

    def snapshot_series(self) -> list[SeriesData]:
        """Each series cut at each of its snapshots (views, no copies), series by series."""
        if self.prefix_lengths is None:
            return self.series
        return [
            SeriesData(s.loto, s.unique_id, s.ds[:n], s.y[:n])
            for s, lengths in zip(self.series, self.prefix_lengths, strict=True)
            for n in lengths
        ]


@dataclass
class FamilyBatchResult:
    """One family over one batch, as computed on a worker.

    ``values`` is (series, outputs) for a stat family, (snapshots of every series, outputs) when
    the batch has ``prefix_lengths``, and (all rows of the batch, outputs) for a hist family,
    NaN where a value is undefined or the series failed. ``errors`` index the same rows.
    """

    family: str
    values: np.ndarray
    errors: list[tuple[int, str]]
    too_short: int
    seconds: float
    device: str
    # Batches whose GPU call raised and that were computed on the CPU instead (0 or 1 here).
    gpu_failures: int = 0


def _stat_row(result: Any, outputs: list[str]) -> np.ndarray:
    if not isinstance(result, dict):
        raise TypeError(f"expected a dict of outputs, got {type(result).__name__}")
    row = np.full(len(outputs), np.nan)
    for j, name in enumerate(outputs):
        value = result.get(name)
        if value is not None:
            row[j] = float(value)
    return row


def _hist_block(result: Any, outputs: list[str], n: int) -> np.ndarray:
    if not isinstance(result, dict):
        raise TypeError(f"expected a dict of output arrays, got {type(result).__name__}")
    block = np.full((n, len(outputs)), np.nan)
    for j, name in enumerate(outputs):
        value = result.get(name)
        if value is None:
            continue
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != (n,):
            raise ValueError(f"output {name!r} has shape {arr.shape}, expected ({n},)")
        block[:, j] = arr
    return block


def _gpu_results(
    fam: Family, ys: list[np.ndarray], params: dict[str, Any], required: bool, host: HostResults | None
) -> list[Any] | None:
    """The family's GPU batch; ``None`` when it raised and the CPU is to compute the batch.

    A failure is never quiet: it is logged as an error naming the family and the exception,
    and counted by the caller; where the GPU was asked for (``required``) it stops the job.
    A failure of the host stage computed elsewhere (``host``) is the batch's, as inline.
    """
    try:
        results = fam.gpu_fn()(ys, **params, **({"host": host} if host is not None else {}))
        if len(results) != len(ys):
            raise ValueError(f"{len(results)} results for {len(ys)} series")
        return list(results)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.error(
            "job.gpu_batch_failed",
            family=fam.name,
            series=len(ys),
            error=error,
            then="stop" if required else "computed on the CPU",
        )
        if required:
            raise GpuFailure(fam.name, error) from exc
        # The CPU path then runs series by series, which also isolates a failing series.
        return None


def host_stage(fam: Family) -> Callable[..., list] | None:
    """The host-only stage of ``fam``'s GPU batch function, if it declares one.

    Imports the GPU module (never CuPy): see :func:`python_jobs.gpu.with_host_stage`.
    """
    return gpu.host_stage(fam.gpu_fn()) if fam.gpu is not None else None


def compute_host_stage(fam: Family, batch: SeriesBatch) -> list[Any]:
    """The host stage of ``fam``'s GPU batch over the series :func:`compute_family` sends it.

    Runs anywhere (no device); its result is :func:`compute_family`'s ``host``.
    """
    stage = host_stage(fam)
    if stage is None:
        raise ValueError(f"family {fam.name!r} declares no host stage")
    series = batch.snapshot_series() if fam.kind == "stat" else batch.series
    eligible, _ = _eligible(fam, series)
    return stage([series[i].y for i in eligible], **fam.resolved())


def compute_family(
    fam: Family,
    batch: SeriesBatch,
    device: str,
    on_error: str,
    gpu_required: bool = False,
    host: HostResults | None = None,
) -> FamilyBatchResult:
    """Run one family over a batch of series; failures follow ``on_error``.

    ``fam`` is bound to the run's definitions (an unbound family resolves them here). On the
    GPU, a batch whose GPU call raises is computed on the CPU and counted in ``gpu_failures``,
    unless ``gpu_required`` (the GPU was asked for by name), which raises :class:`GpuFailure`.

    A series shorter than the family's ``min_length`` gets NULLs (valid input, not an error);
    a series with non-finite values, or one the family raises on, is an error: raised with
    ``on_error="raise"``, else recorded and given NULLs.

    Intermediates one family computes from a whole series of the batch are kept for the
    batch's other families (:mod:`python_jobs.features._batch_memo`). ``host`` returns
    :func:`compute_host_stage` of the family and batch, computed elsewhere (in a process
    pool while this one drives the device); without it, the GPU batch runs its host stage.
    """
    start = time.perf_counter()
    fam = fam.runnable()
    params = fam.resolved()
    outputs = fam.output_names()
    stat = fam.kind == "stat"
    series = batch.snapshot_series() if stat else batch.series
    lengths = [len(s) for s in series]
    values = np.full((len(series) if stat else sum(lengths), len(outputs)), np.nan)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    eligible, errors = _eligible(fam, series)
    too_short = len(series) - len(eligible) - len(errors)
    if errors and on_error == "raise":
        i, message = errors[0]
        raise SeriesFailure(fam.name, series[i].loto, series[i].unique_id, message)

    with batch_scope(batch.memo()):
        on_gpu = device == "gpu" and fam.gpu is not None and bool(eligible)
        ys = [series[i].y for i in eligible]
        gpu_results = _gpu_results(fam, ys, params, gpu_required, host) if on_gpu else None
        used = "gpu" if gpu_results is not None else "cpu"
        gpu_failures = int(on_gpu and gpu_results is None)
        computed = gpu_results if gpu_results is not None else [None] * len(eligible)
        for i, result in zip(eligible, computed, strict=True):
            s = series[i]
            try:
                block = _family_values(fam, s.y, params, result, outputs)
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                if on_error == "raise":
                    raise SeriesFailure(fam.name, s.loto, s.unique_id, message) from exc
                errors.append((i, message))
                continue
            if stat:
                values[i] = block
            else:
                values[offsets[i] : offsets[i + 1]] = block
    seconds = time.perf_counter() - start
    return FamilyBatchResult(fam.name, values, errors, too_short, seconds, used, gpu_failures)


def _family_values(
    fam: Family, y: np.ndarray, params: dict[str, Any], result: Any, outputs: list[str]
) -> np.ndarray:
    """One series' row (stat) or rows (hist): ``result`` from the GPU, or the CPU function's."""
    with warnings.catch_warnings():
        # Undefined statistics of short or constant series come back as NaN, which is the intent.
        warnings.simplefilter("ignore", RuntimeWarning)
        if result is None:
            result = fam.compute(y.copy(), params)
        if fam.kind == "stat":
            return _stat_row(result, outputs)
        return _hist_block(result, outputs, len(y))


def _eligible(fam: Family, series: list[SeriesData]) -> tuple[list[int], list[tuple[int, str]]]:
    """The series long enough for ``fam`` with finite values, and the long enough ones without."""
    shortest = fam.min_rows()
    long_enough = [i for i, s in enumerate(series) if len(s) >= shortest]
    errors = []
    for i in long_enough:
        bad = int((~np.isfinite(series[i].y)).sum())
        if bad:
            errors.append((i, f"y has {bad} non-finite values"))
    failed = {i for i, _ in errors}
    return [i for i in long_enough if i not in failed], errors
