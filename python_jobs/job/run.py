"""The feature job's run: a short sequence of named phases.

1. :func:`_setup`: the device, the families bound to the run's feature definitions, the
   executor of a remote cluster.
2. :func:`_prepare_tables`: create the job's tables and add missing columns (under the job's
   schema lock), and mark runs a killed job left ``running`` as failed.
3. :func:`_plan`: which (series, family) pairs to compute (:mod:`python_jobs.job.planning`).
4. :func:`_start`: pick the executor, import the families that have work (planning reads
   the catalog of :mod:`python_jobs.job.catalog` and imports none), record the run.
5. :func:`_compute_and_write`: read batches, compute each family on the executor, write each
   batch in one transaction while the next is computed (:mod:`python_jobs.job.assembly` turns
   the results into rows; :mod:`python_jobs.job.swap` says how ``py_features_hist`` is
   loaded, and a full refresh swaps in a rebuilt table at the end).
6. :func:`_finish`: record the outcome; the connections, executor and bars are closed whether
   the run succeeded or not.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from python_jobs import config, definitions, settings
from python_jobs.device import DeviceError, resolve_device
from python_jobs.features.registry import FAMILY_MODULES, Family
from python_jobs.job import assembly, catalog, reading, runs, snapshots, swap, tables
from python_jobs.job.assembly import InFlight
from python_jobs.job.compute import FamilyBatchResult, SeriesBatch, compute_family
from python_jobs.job.errors import GpuFailure, JobError, JobIOError, SeriesFailure
from python_jobs.job.executors import estimated_seconds, is_remote, make_executor
from python_jobs.job.planning import Planned, batches, plan_run, select_families
from python_jobs.job.reporting import (
    JobResult,
    ProgressLog,
    SeriesError,
    log_done,
    phase_seconds,
    progress_bars,
)
from python_jobs.job.session import Session
from python_jobs.job.writing import WriteQueue
from python_jobs.jobs_args import DEFAULT_BATCH_SIZE
from python_jobs.log import get_logger

log = get_logger(__name__)

ON_ERROR_MODES = ("raise", "warn", "ignore")


@dataclass
class _Run:
    """Everything the phases of one run share."""

    url: str
    device: str
    defs: definitions.FeatureDefinitions
    fams: list[Family]
    versions: dict[str, str]
    result: JobResult
    reader: Session
    writes: WriteQueue
    on_error: str
    batch_size: int
    executor: Any = None
    planned: list[Planned] = field(default_factory=list)
    bars: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, list[str]] = field(default_factory=dict)
    # How py_features_hist is written: merged, bulk-loaded, or rebuilt and swapped in.
    hist_load: swap.HistLoad = field(default_factory=swap.HistLoad)
    # The GPU was asked for by name: a GPU failure stops the run instead of falling back.
    gpu_required: bool = False
    # The calendar period of the stat snapshots (definitions.snapshot_period).
    snapshot_period: str = "year"

    def __post_init__(self) -> None:
        self.outputs = {fam.name: fam.output_names() for fam in self.fams}

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall seconds of the block to ``phase`` of the result."""
        start = time.perf_counter()
        try:
            yield
        finally:
            phases = self.result.seconds_per_phase
            phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - start


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
    dbt_vars: str | dict | None = None,
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
        ``distributed.Client`` (see :mod:`python_jobs.job.executors`).
    batch_size
        Series per batch: what one task computes and one upsert writes.
    on_error
        ``raise``: stop at the first failing series; ``warn``: record it in ``py_job_errors``,
        leave that family's columns of that series NULL and go on; ``ignore``: the same, unrecorded.
    full_refresh
        Recompute every series and stat snapshot, not only the changed ones (the families'
        versions cannot see a change of their code that was not given a new ``version``);
        ``py_features_hist`` is then rebuilt and swapped in (:mod:`python_jobs.job.swap`).
    progress
        A progress bar per family on stderr (only when it is a terminal).
    n_workers
        Worker processes of a local cluster, or of the GPU run's host pool (default: one per
        core, one less for the host pool).
    quiet
        Do not print the summary table at the end.
    dbt_vars
        Feature definitions to override, as ``dbt --vars`` takes them (YAML text or a mapping),
        on top of ``$LOTO_DBT_VARS`` and the vars of ``dbt_project.yml``.

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
    schema = config.target_schema()  # a bad DBT_SCHEMA fails here, before any connection
    defs = definitions.load(dbt_vars)
    period = definitions.snapshot_period(dbt_vars)
    resolved, fams, executor = _setup(device, families, scheduler, n_workers, defs)
    setup_seconds = time.perf_counter() - started
    target = url or db.database_url()
    run = _Run(
        url=target,
        device=resolved,
        defs=defs,
        fams=fams,
        versions={fam.name: fam.version_id() for fam in fams},
        result=_new_result(resolved, fams),
        reader=Session(target, autocommit=True, on_connect=tables.lock_schema),
        writes=WriteQueue(Session(target)),
        on_error=on_error,
        batch_size=batch_size,
        executor=executor,
        gpu_required=resolved == "gpu" and _requested_device(device) == "gpu",
        snapshot_period=period,
    )
    run.result.seconds_per_phase["setup"] = setup_seconds
    run.result.feature_version = _feature_version(run.versions)
    log.info("job.start", run_id=run.result.run_id, device=resolved, families=len(fams), schema=schema)
    try:
        with run.timed("tables"):
            _prepare_tables(run)
        with run.timed("plan"):
            _plan(run, full_refresh)
        with run.timed("setup"):
            _start(run, scheduler, n_workers, progress, full_refresh)
        _compute_and_write(run, full_refresh)
        run.result.status = "success"
        with run.timed("finish"):
            _finish(run, started)
    except BaseException as exc:
        run.result.status = "failed"
        _finish(run, started, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        _close(run)
    log_done(run.result)
    if not quiet:
        print(run.result.summary(), flush=True)
    return run.result


# -- phases -------------------------------------------------------------------------------------


def _setup(
    device: str | None,
    families: Sequence[Family | str] | None,
    scheduler: Any,
    n_workers: int | None,
    defs: definitions.FeatureDefinitions,
) -> tuple[str, list[Family], Any]:
    """The device, the bound families and (for a remote cluster) its executor."""
    executor: Any = None
    remote = is_remote(scheduler)
    if not remote:
        # Before the families are imported (seconds): a wrong device fails at once.
        resolved = resolve_device(device)
    fams = select_families(families, defs)
    if remote:
        # The GPU that matters is the workers', not this machine's.
        executor = make_executor(scheduler, device="cpu", work_seconds=0.0, n_workers=n_workers)
        try:
            resolved = resolve_device(device, available=executor.gpu_available, where="on the Dask workers")
        except BaseException:
            executor.close()
            raise
    if resolved == "gpu":
        for fam in fams:
            if fam.gpu is None:
                log.info("job.family_on_cpu", family=fam.name, reason="no GPU implementation")
    return resolved, fams, executor


def _requested_device(device: str | None) -> str:
    """What was asked for (``auto``, ``cpu`` or ``gpu``), before it is resolved."""
    return (device or settings.get().gpu.device).strip().lower()


def _new_result(device: str, fams: list[Family]) -> JobResult:
    names = [fam.name for fam in fams]
    return JobResult(
        run_id=uuid.uuid4().hex,
        status="running",
        device=device,
        scheduler="-",
        families=names,
        feature_version="",
        computed_per_family=dict.fromkeys(names, 0),
        too_short_per_family=dict.fromkeys(names, 0),
        rows_written={tables.STAT_TABLE: 0, tables.HIST_TABLE: 0, tables.STAT_HISTORY_TABLE: 0},
        seconds_per_family=dict.fromkeys(names, 0.0),
        device_per_family={name: "-" for name in names},
        gpu_failures_per_family=dict.fromkeys(names, 0),
        seconds_per_phase=phase_seconds(),
    )


def _prepare_tables(run: _Run) -> None:
    """Tables and columns, under the job's lock; runs left ``running`` by a killed job marked failed."""
    stat_columns = [col for fam in run.fams if fam.kind == "stat" for col in fam.output_names()]
    hist_columns = [col for fam in run.fams if fam.kind == "hist" for col in fam.output_names()]
    run.reader.run(lambda conn: tables.ensure_tables(conn, stat_columns, hist_columns), "create tables")
    interrupted = run.reader.run(runs.mark_interrupted, "mark interrupted runs")
    if interrupted:
        log.warning("job.interrupted_runs_marked_failed", runs=interrupted)


def _plan(run: _Run, full_refresh: bool) -> None:
    kinds = {fam.name: fam.kind for fam in run.fams}
    summary, run.planned = run.reader.run(
        lambda conn: plan_run(conn, run.fams, run.versions, kinds, full_refresh, run.snapshot_period), "plan"
    )
    run.result.series_total = len(summary)
    log.info(
        "job.plan",
        series=len(summary),
        to_compute=len(run.planned),
        appended=sum(item.cutoff is not None for item in run.planned),
        full_refresh=full_refresh,
    )
    if not run.planned:
        log.info("job.nothing_to_do", series=len(summary))


def _import_planned(run: _Run, full_refresh: bool) -> None:
    """Import the families that have work (planning may have used the catalog only)."""
    needed = {name for item in run.planned for name in item.families}
    try:
        run.fams = catalog.materialize(run.fams, needed)
    except catalog.StaleCatalog as exc:
        # A module changed in a way the catalog's key missed: plan again from the registry.
        log.warning("job.catalog_stale", family=exc.family)
        run.fams = select_families(run.result.families, run.defs, use_catalog=False)
        run.versions = {fam.name: fam.version_id() for fam in run.fams}
        run.result.feature_version = _feature_version(run.versions)
        run.outputs = {fam.name: fam.output_names() for fam in run.fams}
        _plan(run, full_refresh)


def _feature_version(versions: dict[str, str]) -> str:
    """One hash of every family's version: the run's feature version."""
    return hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:16]


def _start(run: _Run, scheduler: Any, n_workers: int | None, progress: bool, full_refresh: bool) -> None:
    """The executor, the families with work imported, the run's row, the progress bars.

    The executor is made first (unless a remote one exists). On a Dask cluster, families the
    catalog describes are imported by the workers alone, which check them against the
    catalog; this process, which only plans, reads, hands over and writes, never imports
    them. Otherwise the workers import the families' modules while this process does.
    """
    if run.executor is None:
        run.executor = make_executor(
            scheduler,
            device=run.device,
            work_seconds=estimated_seconds(run.planned, run.fams),
            n_workers=n_workers,
        )
    needed = {name for item in run.planned for name in item.families}
    if not run.executor.import_families([fam for fam in run.fams if fam.name in needed]):
        # The registered family modules only: a family defined elsewhere travels by value.
        modules = {fam.fn.__module__ for fam in run.fams if fam.name in needed} & set(FAMILY_MODULES)
        run.executor.prepare(sorted(modules))
        _import_planned(run, full_refresh)
    run.result.scheduler = run.executor.name
    run.reader.run(
        lambda conn: runs.start_run(
            conn,
            run.result.run_id,
            device=run.device,
            scheduler=run.executor.name,
            families=run.result.families,
            feature_version=run.result.feature_version,
        ),
        "record run",
    )
    totals = {fam.name: sum(fam.name in item.families for item in run.planned) for fam in run.fams}
    run.bars = progress_bars(run.fams, totals, progress)


def _compute_and_write(run: _Run, full_refresh: bool) -> None:
    """Batches read, submitted per family, collected in order and written behind."""
    # Without bars (a log file, a CI run), a line now and then says how far the run is.
    ticker = ProgressLog(len(run.planned), enabled=not any(not bar.disable for bar in run.bars.values()))
    _begin_hist_load(run, full_refresh)
    try:
        _compute_batches(run, ticker)
        started = time.perf_counter()
        run.reader.run(lambda conn: swap.finish(conn, run.hist_load, run.result.run_id), "end hist load")
    except BaseException:
        # A failed bulk load's key is built if it can be (else by the next run's table check),
        # a failed swap's table dropped (else by the next run).
        with contextlib.suppress(Exception):
            run.reader.run(lambda conn: swap.abandon(conn, run.hist_load), "end hist load")
        raise
    run.result.seconds_per_phase["write"] = run.writes.busy_seconds + time.perf_counter() - started
    run.result.seconds_per_phase["write_wait"] = run.writes.wait_seconds


def _begin_hist_load(run: _Run, full_refresh: bool) -> None:
    """Choose how ``py_features_hist`` is written (:mod:`python_jobs.job.swap`).

    A swap rewrites every row, so it is offered only when every planned series computes
    every per-draw family of the run, and then no series is cut to its appended rows.
    """
    hist = {fam.name for fam in run.fams if fam.kind == "hist"}
    if not any(hist & set(item.families) for item in run.planned):
        return
    rewrite = full_refresh and all(hist <= set(item.families) for item in run.planned)
    columns = [c for fam in run.fams if fam.name in hist for c in run.outputs[fam.name]]
    run.hist_load = run.reader.run(lambda conn: swap.begin(conn, rewrite, columns), "hist load")
    if run.hist_load.mode == swap.SWAP:
        for item in run.planned:
            item.cutoff = None
    log.info("job.hist_load", mode=run.hist_load.mode)


def _compute_batches(run: _Run, ticker: ProgressLog) -> None:
    by_name = {fam.name: fam for fam in run.fams}
    in_flight: deque[InFlight] = deque()
    computed: set[tuple[str, str]] = set()
    for items in batches(run.planned, run.batch_size):
        keys = [(item.info.loto, item.info.unique_id) for item in items]
        with run.timed("read"):
            series = run.reader.run(lambda conn, keys=keys: reading.read_series(conn, keys), "read batch")
        # In-process, submit is the computation itself; on a cluster, the hand-over.
        with run.timed("compute"):
            cuts = None
            if any(by_name[name].kind == "stat" for name in items[0].families):
                cuts = snapshots.prefix_lengths([item.snapshots for item in items])
            shipped = run.executor.scatter(SeriesBatch(series, cuts))
            futures = {
                name: run.executor.submit(
                    compute_family, by_name[name], shipped, run.device, run.on_error, run.gpu_required
                )
                for name in items[0].families
            }
        in_flight.append(InFlight(items, series, futures))
        while len(in_flight) >= run.executor.max_in_flight:
            _collect(run, in_flight.popleft(), computed, ticker)
    while in_flight:
        _collect(run, in_flight.popleft(), computed, ticker)
    run.writes.drain()
    run.result.series_computed = len(computed)


def _collect(run: _Run, job: InFlight, computed: set[tuple[str, str]], ticker: ProgressLog) -> None:
    """A batch's family results into the counters, then its write queued."""
    result = run.result
    with run.timed("compute"):
        results = {name: fut.result() for name, fut in job.futures.items()}
    by_name = {fam.name: fam for fam in run.fams}
    stat = _split_stat(run, job, results, by_name)
    # Failures per family by series index (a stat family's, its first failing snapshot's).
    errors = {name: list(res.errors) for name, res in results.items() if by_name[name].kind != "stat"}
    for i, name, message in stat.errors if stat else []:
        errors.setdefault(name, []).append((i, message))
    for name, res in results.items():
        result.seconds_per_family[name] += res.seconds
        result.computed_per_family[name] += len(job.series)
        result.too_short_per_family[name] += res.too_short
        previous = result.device_per_family[name]
        result.device_per_family[name] = res.device if previous in ("-", res.device) else "mixed"
        result.gpu_failures_per_family[name] += res.gpu_failures
        for i, message in errors.get(name, []):
            err = SeriesError(job.series[i].loto, job.series[i].unique_id, name, message)
            result.errors.append(err)
            if run.on_error == "warn":
                log.warning(
                    "job.series_failed", loto=err.loto, unique_id=err.unique_id, family=name, error=message
                )
    write = assembly.assemble(
        job, results, errors, stat, result.run_id, by_name, run.outputs, run.versions, run.on_error == "warn"
    )
    run.hist_load.route(write, {name for name in results if by_name[name].kind == "hist"})

    def written(counts: dict[str, int]) -> None:
        for name, n in counts.items():
            result.rows_written[name] += n
        computed.update((s.loto, s.unique_id) for s in job.series)
        for name in results:
            run.bars[name].update(len(job.series))
        ticker.tick(len(computed))

    run.writes.put(write, written)


def _split_stat(
    run: _Run, job: InFlight, results: dict[str, FamilyBatchResult], by_name: dict[str, Family]
) -> snapshots.AssembledStat | None:
    """The stat families' per-snapshot results of a batch, split for their two tables."""
    names = [name for name in results if by_name[name].kind == "stat"]
    if not names:
        return None
    stat = snapshots.assemble(
        [item.snapshots for item in job.items],
        {name: results[name].values for name in names},
        {name: results[name].errors for name in names},
        run.outputs,
        run.versions,
    )
    run.result.snapshots_computed += len(stat.history.snapshots)
    return stat


def _finish(run: _Run, started: float, error: str | None = None) -> None:
    run.result.seconds_total = time.perf_counter() - started
    _record_end(run.reader, run.result, error=error)


def _close(run: _Run) -> None:
    """Bars, executor, writer and reader, on success and failure alike.

    Every one is closed even when closing another raises (the reader holds the job's lock).
    """
    with contextlib.ExitStack() as stack:
        # Callbacks run last-in first-out: the reader is closed last, whatever happens before.
        stack.callback(run.reader.close)
        stack.callback(run.writes.close)
        if run.executor is not None:
            stack.callback(run.executor.close)
        for bar in run.bars.values():
            stack.callback(bar.close)


def _record_end(session: Session, result: JobResult, error: str | None = None) -> None:
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
        session.run(lambda conn: runs.finish_run(conn, result.run_id, **fields), "record run")
    except Exception as exc:
        log.warning("job.run_record_failed", run_id=result.run_id, error=str(exc))


def main(args: argparse.Namespace) -> int:
    """``loto-features features``: run the job, print the summary; 2 on a usage error."""
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
            dbt_vars=getattr(args, "vars", None),
        )
    except SeriesFailure as exc:
        print(f"error: {exc} (run with --on-error warn to record failures and go on)", file=sys.stderr)
        return 1
    except GpuFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (DeviceError, JobError, JobIOError, definitions.DefinitionError, config.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if result.status != "success" else 0
