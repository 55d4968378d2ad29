"""The Python feature job: ``make gpu-features`` / ``python -m python_jobs features``.

It reads ``stg_lottery__draws``, runs every registered feature family over the series that
changed since the last run, and writes ``py_features_stat`` (one row per series) and
``py_features_hist`` (one row per draw), which dbt declares as sources and joins into the marts.

How a run goes:

1. Resolve the device (:mod:`python_jobs.device`) and the families; each family gets a version,
   a hash of its outputs, the feature settings of :mod:`python_jobs.config` and its module's
   source, so a changed definition recomputes that family everywhere.
2. One aggregate query gives each series' row count, last date and checksum. A (series,
   family) is computed when its bookkeeping row (``py_job_state``) is missing, failed, or has
   another version or checksum; ``full_refresh`` computes everything. A re-run with nothing
   new reads no draws.
3. Series to compute are grouped by the set of families they need and read in batches
   (binary COPY). Each batch goes to each family as one task: in-process, or on a Dask cluster.
   For per-draw families, when the old rows are an unchanged prefix of the series (a draw was
   appended), only the new rows are written: values are point-in-time, so old rows stand.
4. Each batch is written by COPY into temporary tables and one upsert per table, together
   with its bookkeeping rows, in one transaction.

Where it runs (``scheduler``):

``None``/``"auto"``
    In-process for small jobs (under :data:`AUTO_CLUSTER_MIN_SECONDS` of estimated compute, from
    each family's registered cost and the series' lengths), on one CPU, or on the GPU (one device
    does the parallel work); otherwise a ``distributed.LocalCluster`` with one single-threaded
    worker process per core. Starting workers and importing the families there takes seconds,
    which cheap families never win back.
``"sync"``
    Always in-process.
``"local"``
    Always a ``LocalCluster``.
``"local-cuda"``
    ``dask_cuda.LocalCUDACluster``: one worker per visible GPU.
``"tcp://host:port"``, or a ``distributed.Client``
    An existing cluster (see ``docs/scale-out.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib
import inspect
import json
import os
import shutil
import sys
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from python_jobs import config, job_io
from python_jobs.device import DeviceError, resolve_device
from python_jobs.features import registry
from python_jobs.features.registry import Family
from python_jobs.jobs_args import DEFAULT_BATCH_SIZE
from python_jobs.log import get_logger

# Compiled numba kernels are cached on disk across runs; the variable must be set before the
# first `import numba`, which the family modules do, so it is set when this module loads.
os.environ.setdefault("NUMBA_CACHE_DIR", str(config.numba_cache_dir()))

log = get_logger(__name__)

# Below this much estimated compute, starting worker processes costs more than it saves.
AUTO_CLUSTER_MIN_SECONDS = 60.0
# Rough CPU seconds per 1,000-row series of a family of each registered cost (measured on the
# 1,000 x 1,000 panel: rolling 0.007, entropy 0.04, isolation forest 0.6).
COST_SECONDS = {"low": 0.01, "medium": 0.05, "high": 0.5}
ON_ERROR_MODES = ("raise", "warn", "ignore")
# Settings of config that change what a family computes; part of every family's version.
VERSIONED_SETTINGS = (
    "LAGS",
    "WINDOWS",
    "DIFFS",
    "PCT_CHANGES",
    "FREQ_WINDOWS",
    "MP_WINDOW",
    "SEASON_LENGTH",
)


class JobError(RuntimeError):
    """The job cannot run, or a series failed with ``on_error="raise"``."""


class SeriesFailure(JobError):
    """A family raised on one series (``on_error="raise"``)."""

    def __init__(self, family: str, loto: str, unique_id: str, error: str):
        self.family, self.loto, self.unique_id, self.error = family, loto, unique_id, error
        super().__init__(f"family {family!r} failed on series {loto}/{unique_id}: {error}")

    def __reduce__(self) -> tuple:
        # Raised on a Dask worker and unpickled on the client: rebuild from the four fields.
        return (type(self), (self.family, self.loto, self.unique_id, self.error))


@dataclass(frozen=True)
class SeriesError:
    loto: str
    unique_id: str
    family: str
    error: str


@dataclass
class JobResult:
    """What one run did. ``summary()`` is the table printed at the end of a run."""

    run_id: str
    status: str
    device: str
    scheduler: str
    families: list[str]
    feature_version: str
    series_total: int = 0
    series_computed: int = 0
    computed_per_family: dict[str, int] = field(default_factory=dict)
    too_short_per_family: dict[str, int] = field(default_factory=dict)
    errors: list[SeriesError] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)
    seconds_per_family: dict[str, float] = field(default_factory=dict)
    device_per_family: dict[str, str] = field(default_factory=dict)
    seconds_total: float = 0.0

    @property
    def series_skipped(self) -> int:
        return self.series_total - self.series_computed

    @property
    def series_failed(self) -> int:
        return len({(e.loto, e.unique_id) for e in self.errors})

    @property
    def series_per_second(self) -> float:
        return self.series_computed / self.seconds_total if self.seconds_total > 0 else 0.0

    def summary(self) -> str:
        width = max([len("family"), *(len(name) for name in self.families)])
        lines = [
            f"feature job {self.run_id} ({self.status}): device {self.device}, scheduler {self.scheduler}",
            f"  {'family'.ljust(width)}  {'device':>6}  {'series':>7}  {'failed':>6}  "
            f"{'seconds':>8}  {'series/s':>9}",
        ]
        failed: dict[str, int] = {}
        for err in self.errors:
            failed[err.family] = failed.get(err.family, 0) + 1
        for name in self.families:
            n = self.computed_per_family.get(name, 0)
            secs = self.seconds_per_family.get(name, 0.0)
            rate = f"{n / secs:9.1f}" if secs > 0 and n else f"{'-':>9}"
            lines.append(
                f"  {name.ljust(width)}  {self.device_per_family.get(name, '-'):>6}  {n:7d}  "
                f"{failed.get(name, 0):6d}  {secs:8.2f}  {rate}"
            )
        rows = ", ".join(f"{table} {n:,}" for table, n in self.rows_written.items())
        lines.append(
            f"  series: {self.series_computed} computed, {self.series_skipped} unchanged, "
            f"{self.series_failed} with errors, of {self.series_total}; rows written: {rows or 'none'}"
        )
        lines.append(f"  total {self.seconds_total:.2f} s, {self.series_per_second:.1f} series/s")
        return "\n".join(lines)


@dataclass
class SeriesBatch:
    """The unit shipped to a worker: a few series, sent once for all families of the batch."""

    series: list[job_io.SeriesData]


@dataclass
class FamilyBatchResult:
    """One family over one batch, as computed on a worker.

    ``values`` is (series, outputs) for a stat family and (all rows of the batch, outputs)
    for a hist family, NaN where a value is undefined or the series failed.
    """

    family: str
    values: np.ndarray
    errors: list[tuple[int, str]]
    too_short: int
    seconds: float
    device: str


# -- families and versions ----------------------------------------------------------------------


def load_families(names: Sequence[str] | None = None) -> list[Family]:
    """The registered families (all kinds), optionally only ``names``.

    While some family modules of :data:`registry.FAMILY_MODULES` do not exist yet, the ones that
    import are used and each missing one is logged; an error in a module that exists is raised.
    """
    if names and _import_named(names):
        # Asked-for families found in modules of the same names: the other modules (some
        # take seconds to import) are not needed.
        return [fam for fam in _in_registry_order() if fam.name in names]
    try:
        found = registry.families()
    except ModuleNotFoundError:
        found = []
        for module in registry.FAMILY_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                log.warning("job.family_module_missing", module=module)
        found = _in_registry_order()
    if names:
        unknown = sorted(set(names) - {fam.name for fam in found})
        if unknown:
            raise JobError(f"unknown feature families {unknown}; known: {sorted(fam.name for fam in found)}")
        found = [fam for fam in found if fam.name in names]
    if not found:
        raise JobError(
            "no feature families are registered: the modules of "
            "python_jobs.features.registry.FAMILY_MODULES could not be imported"
        )
    return found


def _in_registry_order() -> list[Family]:
    """The families registered so far, in FAMILY_MODULES order (as registry.families gives them)."""
    rank = {module: pos for pos, module in enumerate(registry.FAMILY_MODULES)}
    return sorted(registry._FAMILIES.values(), key=lambda fam: rank.get(fam.fn.__module__, len(rank)))


def _import_named(names: Sequence[str]) -> bool:
    """Import the family modules named like ``names``; whether that registered all of them."""
    modules = {module.rsplit(".", 1)[-1]: module for module in registry.FAMILY_MODULES}
    if not all(name in modules for name in names):
        return False
    for name in names:
        importlib.import_module(modules[name])
    return all(name in registry._FAMILIES for name in names)


def _module_source(fn: Callable) -> str:
    """The source of ``fn``'s module and of the private helper modules (``_*.py``) beside it."""
    try:
        path = inspect.getsourcefile(fn)
    except TypeError:
        path = None
    if not path:
        return getattr(fn, "__qualname__", repr(fn))
    module = Path(path)
    parts = []
    for source in [module, *sorted(module.parent.glob("_*.py"))]:
        with contextlib.suppress(OSError):
            parts.append(f"{source.name}\n{source.read_text(encoding='utf-8')}")
    return "\n".join(parts)


def family_version(fam: Family) -> str:
    """A hash of what defines a family's values: outputs, settings and its module's source.

    The source covers the family's module and the shared private helpers of its package, so
    an edit there recomputes the family everywhere; an edit elsewhere does not.
    """
    payload = {
        "name": fam.name,
        "kind": fam.kind,
        "outputs": list(fam.outputs()),
        "min_length": fam.min_length,
        "settings": {name: repr(getattr(config, name, None)) for name in VERSIONED_SETTINGS},
        "source": hashlib.sha256(_module_source(fam.fn).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# -- computing one family on one batch (runs on a worker) ---------------------------------------


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


def _gpu_results(fam: Family, ys: list[np.ndarray]) -> list[Any] | None:
    try:
        results = fam.gpu_fn()(ys)
        if len(results) != len(ys):
            raise ValueError(f"{len(results)} results for {len(ys)} series")
        return list(results)
    except Exception as exc:
        # The CPU path then runs series by series, which also isolates a failing series.
        log.warning("job.gpu_batch_failed", family=fam.name, series=len(ys), error=str(exc))
        return None


def compute_family(fam: Family, batch: SeriesBatch, device: str, on_error: str) -> FamilyBatchResult:
    """Run one family over a batch of series; failures follow ``on_error``.

    A series shorter than the family's ``min_length`` gets NULLs (valid input, not an error);
    a series with non-finite values, or one the family raises on, is an error: raised with
    ``on_error="raise"``, else recorded and given NULLs.
    """
    start = time.perf_counter()
    outputs = list(fam.outputs())
    series = batch.series
    lengths = [len(s) for s in series]
    stat = fam.kind == "stat"
    values = np.full((len(series) if stat else sum(lengths), len(outputs)), np.nan)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    errors: list[tuple[int, str]] = []
    eligible = [i for i, s in enumerate(series) if len(s) >= fam.min_length]
    too_short = len(series) - len(eligible)
    for i in [i for i in eligible if not np.isfinite(series[i].y).all()]:
        message = f"y has {int((~np.isfinite(series[i].y)).sum())} non-finite values"
        if on_error == "raise":
            raise SeriesFailure(fam.name, series[i].loto, series[i].unique_id, message)
        errors.append((i, message))
    failed_input = {i for i, _ in errors}
    eligible = [i for i in eligible if i not in failed_input]

    used = "cpu"
    gpu_results: list[Any] | None = None
    if device == "gpu" and fam.gpu is not None and eligible:
        gpu_results = _gpu_results(fam, [series[i].y for i in eligible])
        used = "gpu" if gpu_results is not None else "cpu"

    with warnings.catch_warnings():
        # Undefined statistics of short or constant series come back as NaN, which is the intent.
        warnings.simplefilter("ignore", RuntimeWarning)
        for pos, i in enumerate(eligible):
            s = series[i]
            try:
                result = gpu_results[pos] if gpu_results is not None else None
                if result is None:
                    result = fam.fn(s.y.copy())
                if stat:
                    values[i] = _stat_row(result, outputs)
                else:
                    values[offsets[i] : offsets[i + 1]] = _hist_block(result, outputs, lengths[i])
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                if on_error == "raise":
                    raise SeriesFailure(fam.name, s.loto, s.unique_id, message) from exc
                errors.append((i, message))
    for i, _ in errors:
        if stat:
            values[i] = np.nan
        else:
            values[offsets[i] : offsets[i + 1]] = np.nan
    return FamilyBatchResult(fam.name, values, errors, too_short, time.perf_counter() - start, used)


# -- executors ----------------------------------------------------------------------------------


class _Done:
    """A finished in-process call with the interface of a Dask future."""

    def __init__(self, fn: Callable, args: tuple):
        self._value: Any = None
        self._error: BaseException | None = None
        try:
            self._value = fn(*args)
        except BaseException as exc:
            self._error = exc

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self) -> None:
        pass


class SyncExecutor:
    name = "sync"
    max_in_flight = 1

    def scatter(self, batch: SeriesBatch) -> SeriesBatch:
        return batch

    def submit(self, fn: Callable, *args: Any) -> _Done:
        return _Done(fn, args)

    def close(self) -> None:
        pass


class NumbaCachePlugin:
    """Points each Dask worker's numba cache at the project's folder before numba loads there."""

    name = "loto-features-numba-cache"

    def __init__(self, cache_dir: str | None = None):
        self.cache_dir = cache_dir

    def setup(self, worker: Any) -> None:
        os.environ.setdefault("NUMBA_CACHE_DIR", self.cache_dir or str(config.numba_cache_dir()))


class DaskExecutor:
    def __init__(self, client: Any, name: str, *, owned: list[Any]):
        self.client = client
        self.name = name
        self._owned = owned
        threads = sum(client.nthreads().values()) or 1
        self.max_in_flight = max(2, 2 * threads)
        with contextlib.suppress(Exception):
            from distributed import WorkerPlugin

            plugin = type("_NumbaCache", (NumbaCachePlugin, WorkerPlugin), {})
            # A remote worker keeps its own NUMBA_CACHE_DIR or uses its checkout's default.
            client.register_plugin(plugin(None if name.startswith("tcp") else str(config.numba_cache_dir())))

    def scatter(self, batch: SeriesBatch) -> Any:
        return self.client.scatter(batch, hash=False)

    def gpu_available(self) -> bool:
        """Whether every worker has a usable GPU."""
        answers = self.client.run(_gpu_available_here)
        return bool(answers) and all(answers.values())

    def submit(self, fn: Callable, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def close(self) -> None:
        for obj in self._owned:
            with contextlib.suppress(Exception):
                obj.close()


def _gpu_available_here() -> bool:
    from python_jobs.device import gpu_available

    return gpu_available()


def _is_remote(scheduler: Any) -> bool:
    """A cluster that may run on other machines: a Client, or a scheduler address."""
    return scheduler is not None and (not isinstance(scheduler, str) or "://" in scheduler)


def _local_cluster(kind: str, n_workers: int | None) -> DaskExecutor:
    import logging

    from distributed import Client, LocalCluster

    if kind == "local-cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as exc:
            raise JobError(
                "--scheduler local-cuda needs dask-cuda: `pip install -e .[gpu]` on a GPU machine"
            ) from exc
        cluster = LocalCUDACluster(silence_logs=logging.WARNING, dashboard_address=None)
    else:
        workers = n_workers or max(1, os.cpu_count() or 1)
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            silence_logs=logging.WARNING,
            dashboard_address=None,
        )
    client = Client(cluster)
    return DaskExecutor(client, kind, owned=[client, cluster])


def estimated_seconds(planned: list[_Planned], fams: list[Family]) -> float:
    """Rough single-core seconds to compute ``planned``, from the families' registered costs."""
    per_row = {fam.name: COST_SECONDS.get(fam.cost, COST_SECONDS["medium"]) / 1000 for fam in fams}
    return sum(per_row[name] * item.info.n_rows for item in planned for name in item.families)


def make_executor(scheduler: Any, *, device: str, work_seconds: float, n_workers: int | None = None) -> Any:
    """The executor for ``scheduler`` (see the module docstring for the choices)."""
    if scheduler is not None and not isinstance(scheduler, str):
        # A distributed.Client the caller owns (and closes).
        return DaskExecutor(scheduler, f"client:{scheduler.scheduler.address}", owned=[])
    choice = (scheduler or "auto").strip()
    if choice == "auto":
        cores = os.cpu_count() or 1
        if device == "gpu" or cores < 2 or work_seconds < AUTO_CLUSTER_MIN_SECONDS:
            return SyncExecutor()
        return _local_cluster("local", n_workers)
    if choice in ("sync", "none"):
        return SyncExecutor()
    if choice in ("local", "local-cuda"):
        return _local_cluster(choice, n_workers)
    if "://" in choice:
        from distributed import Client

        try:
            client = Client(choice, timeout="30s")
        except OSError as exc:
            raise JobError(f"cannot reach the Dask scheduler at {choice}: {exc}") from exc
        return DaskExecutor(client, choice, owned=[client])
    raise JobError(f"unknown scheduler {choice!r}: use auto, sync, local, local-cuda or tcp://host:port")


# -- planning -----------------------------------------------------------------------------------


@dataclass
class _Planned:
    info: job_io.SeriesInfo
    families: tuple[str, ...]
    cutoff: dt.date | None = None


def _plan(
    summary: list[job_io.SeriesInfo],
    state: dict[tuple[str, str, str], job_io.StateRow],
    fams: list[Family],
    versions: dict[str, str],
    full_refresh: bool,
) -> list[_Planned]:
    planned = []
    for info in summary:
        dirty = []
        for fam in fams:
            row = state.get((info.loto, info.unique_id, fam.name))
            if (
                full_refresh
                or row is None
                or row.status != "ok"
                or row.feature_version != versions[fam.name]
                or row.checksum != info.checksum
            ):
                dirty.append(fam.name)
        if dirty:
            planned.append(_Planned(info, tuple(dirty)))
    return planned


def _append_candidates(
    planned: list[_Planned],
    state: dict[tuple[str, str, str], job_io.StateRow],
    kinds: dict[str, str],
    versions: dict[str, str],
) -> list[tuple[_Planned, dt.date, str]]:
    """Series whose per-draw families all last ran, at this version, on one shorter prefix."""
    out = []
    for item in planned:
        hist = [name for name in item.families if kinds[name] == "hist"]
        if not hist:
            continue
        rows = [state.get((item.info.loto, item.info.unique_id, name)) for name in hist]
        if any(
            row is None
            or row.status != "ok"
            or row.feature_version != versions[name]
            or row.max_ds is None
            or row.checksum is None
            or row.n_rows >= item.info.n_rows
            for name, row in zip(hist, rows, strict=True)
        ):
            continue
        marks = {(row.max_ds, row.checksum) for row in rows if row is not None}
        if len(marks) == 1:
            max_ds, checksum = marks.pop()
            out.append((item, max_ds, checksum))
    return out


def _batches(planned: list[_Planned], batch_size: int) -> Iterator[list[_Planned]]:
    groups: dict[tuple[str, ...], list[_Planned]] = {}
    for item in planned:
        groups.setdefault(item.families, []).append(item)
    for items in groups.values():
        for start in range(0, len(items), batch_size):
            yield items[start : start + batch_size]


# -- the run ------------------------------------------------------------------------------------


@dataclass
class _InFlight:
    items: list[_Planned]
    series: list[job_io.SeriesData]
    futures: dict[str, Any]


class _WriteQueue:
    """Writes batches on one background thread while the next batch is computed.

    The database does the writing in its own process, so on a single machine computing and
    writing overlap instead of taking turns. At most ``depth`` writes wait; results come back
    in order, and an error is raised at the next ``put`` or ``drain``.
    """

    def __init__(self, session: job_io.Session, depth: int = 2):
        self._session = session
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="py-job-writer")
        self._pending: deque[tuple[Future, Callable[[dict[str, int]], None]]] = deque()
        self._depth = depth

    def put(self, write: job_io.BatchWrite, done: Callable[[dict[str, int]], None]) -> None:
        future = self._pool.submit(
            self._session.run, lambda conn: job_io.write_batch(conn, write), "write batch"
        )
        self._pending.append((future, done))
        while len(self._pending) > self._depth:
            self._finish_one()

    def drain(self) -> None:
        while self._pending:
            self._finish_one()

    def _finish_one(self) -> None:
        future, done = self._pending.popleft()
        done(future.result())

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._session.close()


class _ProgressLog:
    """A ``job.progress`` log line at most every ``interval`` seconds."""

    def __init__(self, total: int, *, enabled: bool, interval: float = 30.0):
        self.total = total
        self.enabled = enabled
        self.interval = interval
        self.start = self.last = time.perf_counter()

    def tick(self, done: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.interval and done < self.total):
            return
        self.last = now
        elapsed = now - self.start
        log.info(
            "job.progress",
            series_done=done,
            series_to_compute=self.total,
            seconds=round(elapsed, 1),
            series_per_s=round(done / elapsed, 2) if elapsed > 0 else None,
        )


def _progress_bars(fams: list[Family], totals: dict[str, int], enabled: bool) -> dict[str, Any]:
    from tqdm import tqdm

    show = enabled and sys.stderr.isatty()
    # A terminal without a size (a bare pty) reports 0 x 0, which tqdm renders as nothing.
    size = shutil.get_terminal_size((100, 24))
    return {
        fam.name: tqdm(
            total=totals.get(fam.name, 0),
            desc=fam.name,
            unit="series",
            position=i,
            leave=True,
            file=sys.stderr,
            disable=not show,
            ncols=size.columns,
            nrows=max(size.lines, len(fams) + 1),
        )
        for i, fam in enumerate(fams)
    }


def run_job(
    url: str | None = None,
    device: str | None = "auto",
    families: Sequence[Family | str] | None = None,
    scheduler: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_error: str = "warn",
    full_refresh: bool = False,
    progress: bool = True,
    n_workers: int | None = None,
    quiet: bool = False,
) -> JobResult:
    """Compute the Python feature families into ``py_features_stat`` and ``py_features_hist``.

    Parameters
    ----------
    url
        A ``postgresql://`` URL; default ``DATABASE_URL`` or the embedded server.
    device
        ``auto`` (default; also ``None``: ``$DEVICE`` or auto), ``cpu`` or ``gpu``.
    families
        Family objects or registered names; default every registered family.
    scheduler
        ``auto`` (default), ``sync``, ``local``, ``local-cuda``, a ``tcp://`` address or a
        ``distributed.Client``.
    batch_size
        Series per batch: what one task computes and one upsert writes.
    on_error
        ``raise``: stop at the first failing series; ``warn``: record it in ``py_job_errors``,
        leave that family's columns of that series NULL and go on; ``ignore``: the same, unrecorded.
    full_refresh
        Recompute every series, not only the changed ones.
    progress
        A progress bar per family on stderr (only when it is a terminal).
    n_workers
        Worker processes of a local cluster (default: one per core).
    quiet
        Do not print the summary table at the end.

    Returns
    -------
    JobResult
        Counts, seconds per family and the run id (also in ``py_job_runs``).
    """
    from python_jobs import db

    if on_error not in ON_ERROR_MODES:
        raise JobError(f"on_error must be one of {ON_ERROR_MODES}, not {on_error!r}")
    if batch_size < 1:
        raise JobError("batch_size must be at least 1")
    started = time.perf_counter()
    executor: Any = None
    remote = _is_remote(scheduler)
    if not remote:
        # Before the families are imported (seconds): a wrong device fails at once.
        resolved = resolve_device(device)
    fams = _select_families(families)
    if remote:
        # The GPU that matters is the workers', not this machine's.
        executor = make_executor(scheduler, device="cpu", work_seconds=0.0, n_workers=n_workers)
        try:
            resolved = resolve_device(device, available=executor.gpu_available, where="on the Dask workers")
        except BaseException:
            executor.close()
            raise
    names = [fam.name for fam in fams]
    versions = {fam.name: family_version(fam) for fam in fams}
    kinds = {fam.name: fam.kind for fam in fams}
    outputs = {fam.name: list(fam.outputs()) for fam in fams}
    feature_version = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:16]
    run_id = uuid.uuid4().hex
    target = url or db.database_url()
    if resolved == "gpu":
        for fam in fams:
            if fam.gpu is None:
                log.info("job.family_on_cpu", family=fam.name, reason="no GPU implementation")

    result = JobResult(
        run_id=run_id,
        status="running",
        device=resolved,
        scheduler="-",
        families=names,
        feature_version=feature_version,
        computed_per_family=dict.fromkeys(names, 0),
        too_short_per_family=dict.fromkeys(names, 0),
        rows_written={job_io.STAT_TABLE: 0, job_io.HIST_TABLE: 0},
        seconds_per_family=dict.fromkeys(names, 0.0),
        device_per_family={name: "-" for name in names},
    )
    stat_columns = [col for fam in fams if fam.kind == "stat" for col in outputs[fam.name]]
    hist_columns = [col for fam in fams if fam.kind == "hist" for col in outputs[fam.name]]

    reader = job_io.Session(target, autocommit=True, on_connect=job_io.lock_schema)
    writes = _WriteQueue(job_io.Session(target))
    bars: dict[str, Any] = {}
    log.info("job.start", run_id=run_id, device=resolved, families=len(fams), schema=config.target_schema())
    try:
        reader.run(lambda conn: job_io.ensure_tables(conn, stat_columns, hist_columns), "create tables")
        summary, planned = reader.run(
            lambda conn: _plan_run(conn, fams, versions, kinds, full_refresh), "plan"
        )
        result.series_total = len(summary)
        totals = {name: sum(name in item.families for item in planned) for name in names}
        log.info(
            "job.plan",
            series=len(summary),
            to_compute=len(planned),
            appended=sum(item.cutoff is not None for item in planned),
            full_refresh=full_refresh,
        )
        if executor is None:
            executor = make_executor(
                scheduler, device=resolved, work_seconds=estimated_seconds(planned, fams), n_workers=n_workers
            )
        result.scheduler = executor.name
        reader.run(
            lambda conn: job_io.start_run(
                conn,
                run_id,
                device=resolved,
                scheduler=executor.name,
                families=names,
                feature_version=feature_version,
            ),
            "record run",
        )
        if not planned:
            log.info("job.nothing_to_do", series=len(summary))
        bars = _progress_bars(fams, totals, progress)
        # Without bars (a log file, a CI run), a line now and then says how far the run is.
        ticker = _ProgressLog(len(planned), enabled=not any(not bar.disable for bar in bars.values()))
        by_name = {fam.name: fam for fam in fams}
        in_flight: deque[_InFlight] = deque()
        computed: set[tuple[str, str]] = set()

        def finish(job: _InFlight) -> None:
            results = {name: fut.result() for name, fut in job.futures.items()}
            for name, res in results.items():
                result.seconds_per_family[name] += res.seconds
                result.computed_per_family[name] += len(job.series)
                result.too_short_per_family[name] += res.too_short
                previous = result.device_per_family[name]
                result.device_per_family[name] = res.device if previous in ("-", res.device) else "mixed"
                for i, message in res.errors:
                    err = SeriesError(job.series[i].loto, job.series[i].unique_id, name, message)
                    result.errors.append(err)
                    if on_error == "warn":
                        log.warning(
                            "job.series_failed",
                            loto=err.loto,
                            unique_id=err.unique_id,
                            family=name,
                            error=message,
                        )
            write = _assemble(job, results, run_id, by_name, versions, outputs, on_error)

            def written(counts: dict[str, int]) -> None:
                for table, n in counts.items():
                    result.rows_written[table] += n
                computed.update((s.loto, s.unique_id) for s in job.series)
                for name in results:
                    bars[name].update(len(job.series))
                ticker.tick(len(computed))

            writes.put(write, written)

        for items in _batches(planned, batch_size):
            keys = [(item.info.loto, item.info.unique_id) for item in items]
            series = reader.run(lambda conn, keys=keys: job_io.read_series(conn, keys), "read batch")
            shipped = executor.scatter(SeriesBatch(series))
            futures = {
                name: executor.submit(compute_family, by_name[name], shipped, resolved, on_error)
                for name in items[0].families
            }
            in_flight.append(_InFlight(items, series, futures))
            while len(in_flight) >= executor.max_in_flight:
                finish(in_flight.popleft())
        while in_flight:
            finish(in_flight.popleft())
        writes.drain()

        result.series_computed = len(computed)
        result.status = "success"
    except BaseException as exc:
        result.status = "failed"
        result.seconds_total = time.perf_counter() - started
        _record_end(reader, result, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        for bar in bars.values():
            bar.close()
        if executor is not None:
            executor.close()
        writes.close()
    result.seconds_total = time.perf_counter() - started
    _record_end(reader, result)
    reader.close()
    for name in names:
        log.info(
            "job.family_done",
            family=name,
            series=result.computed_per_family[name],
            too_short=result.too_short_per_family[name],
            failed=sum(e.family == name for e in result.errors),
            seconds=round(result.seconds_per_family[name], 3),
            device=result.device_per_family[name],
        )
    log.info(
        "job.done",
        run_id=run_id,
        series_computed=result.series_computed,
        series_total=result.series_total,
        rows_written=sum(result.rows_written.values()),
        seconds=round(result.seconds_total, 2),
    )
    if not quiet:
        print(result.summary(), flush=True)
    return result


def _plan_run(
    conn: Any,
    fams: list[Family],
    versions: dict[str, str],
    kinds: dict[str, str],
    full_refresh: bool,
) -> tuple[list[job_io.SeriesInfo], list[_Planned]]:
    """What to compute: the changed (series, family) pairs, and where appending is enough."""
    names = [fam.name for fam in fams]
    summary = job_io.series_summary(conn)
    state = job_io.load_state(conn, names)
    live = {(s.loto, s.unique_id) for s in summary}
    job_io.delete_series(conn, sorted({(k[0], k[1]) for k in state} - live))
    planned = _plan(summary, state, fams, versions, full_refresh)
    candidates = _append_candidates(planned, state, kinds, versions)
    if candidates:
        sums = job_io.prefix_checksums(
            conn, [(c[0].info.loto, c[0].info.unique_id, c[1]) for c in candidates]
        )
        for (item, max_ds, checksum), got in zip(candidates, sums, strict=True):
            if got == checksum:
                item.cutoff = max_ds
    return summary, planned


def _select_families(families: Sequence[Family | str] | None) -> list[Family]:
    if families is None:
        return load_families()
    names = [f for f in families if isinstance(f, str)]
    objects = [f for f in families if not isinstance(f, str)]
    chosen = objects + (load_families(names) if names else [])
    seen: set[str] = set()
    for fam in chosen:
        if fam.name in seen:
            raise JobError(f"feature family {fam.name!r} given twice")
        seen.add(fam.name)
    if not chosen:
        raise JobError("no feature families to run")
    return chosen


def _assemble(
    job: _InFlight,
    results: dict[str, FamilyBatchResult],
    run_id: str,
    by_name: dict[str, Family],
    versions: dict[str, str],
    outputs: dict[str, list[str]],
    on_error: str,
) -> job_io.BatchWrite:
    """Turn a batch's family results into the rows of one write."""
    stat_names = [n for n in job.items[0].families if by_name[n].kind == "stat"]
    hist_names = [n for n in job.items[0].families if by_name[n].kind == "hist"]
    stat_values = np.hstack([results[n].values for n in stat_names]) if stat_names else None
    hist_values = None
    cutoffs = [item.cutoff for item in job.items]
    if hist_names:
        full = np.hstack([results[n].values for n in hist_names])
        keep = (
            np.concatenate(
                [
                    s.ds > np.datetime64(c, "D") if c is not None else np.ones(len(s), dtype=bool)
                    for s, c in zip(job.series, cutoffs, strict=True)
                ]
            )
            if job.series
            else np.zeros(0, dtype=bool)
        )
        hist_values = full[keep]
    state = []
    errors = []
    for name, res in results.items():
        failed = {i for i, _ in res.errors}
        for i, item in enumerate(job.items):
            info = item.info
            ok = i not in failed
            # A failed (series, family) keeps no checksum, so the next run tries it again.
            state.append(
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
        if on_error == "warn":
            errors.extend(
                (job.series[i].loto, job.series[i].unique_id, name, message[:2000])
                for i, message in res.errors
            )
    return job_io.BatchWrite(
        run_id=run_id,
        series=job.series,
        cutoffs=cutoffs,
        stat_columns=[c for n in stat_names for c in outputs[n]],
        stat_values=stat_values,
        hist_columns=[c for n in hist_names for c in outputs[n]],
        hist_values=hist_values,
        state=state,
        errors=errors,
    )


def _record_end(session: job_io.Session, result: JobResult, error: str | None = None) -> None:
    if result.scheduler == "-":
        return  # the run was never recorded
    fields = dict(
        status=result.status,
        series_total=result.series_total,
        series_computed=result.series_computed,
        series_failed=result.series_failed,
        rows_written=sum(result.rows_written.values()),
        seconds_per_family={k: round(v, 4) for k, v in result.seconds_per_family.items()},
        seconds_total=round(result.seconds_total, 4),
        error=error,
    )
    try:
        session.run(lambda conn: job_io.finish_run(conn, result.run_id, **fields), "record run")
    except Exception as exc:
        log.warning("job.run_record_failed", run_id=result.run_id, error=str(exc))


def main(args: argparse.Namespace) -> int:
    """``python -m python_jobs features``: run the job, print the summary; 2 on a usage error."""
    try:
        result = run_job(
            device=args.device,
            families=args.families,
            scheduler=args.scheduler,
            batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
            on_error=args.on_error,
            full_refresh=args.full_refresh,
            progress=not getattr(args, "no_progress", False),
            n_workers=getattr(args, "workers", None),
        )
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SeriesFailure as exc:
        print(f"error: {exc} (run with --on-error warn to record failures and go on)", file=sys.stderr)
        return 1
    except (JobError, job_io.JobIOError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if result.status != "success" else 0
