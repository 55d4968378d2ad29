"""Where the families run: in-process, or on a Dask cluster (local, CUDA, or remote).

``None``/``"auto"``
    On the GPU, :class:`HostPoolExecutor`: the device families in-process (one device does the
    parallel work), the host-only stages of GPU families in a pool of the other cores (in-process
    on one CPU). Otherwise in-process for small jobs (under :data:`AUTO_CLUSTER_MIN_SECONDS` of
    estimated compute, from each family's registered cost and the series' lengths) or on one CPU,
    and a ``distributed.LocalCluster`` with one single-threaded worker process per core for the
    rest. Starting workers and importing the families there takes seconds, which cheap families
    never win back.
``"sync"``
    Always in-process, one family after the other.
``"local"``
    Always a ``LocalCluster``.
``"local-cuda"``
    ``dask_cuda.LocalCUDACluster``: one worker per visible GPU.
``"tcp://host:port"``, or a ``distributed.Client``
    An existing cluster (see ``docs/scale-out.md``).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from python_jobs import config
from python_jobs.features.registry import Family
from python_jobs.job.compute import compute_family, compute_host_stage, host_stage
from python_jobs.job.errors import JobError

if TYPE_CHECKING:
    from python_jobs.job.planning import Planned

# Below this much estimated compute, starting worker processes costs more than it saves.
AUTO_CLUSTER_MIN_SECONDS = 60.0
# Rough CPU seconds per 1,000-row series of a family of each registered cost (measured on the
# 1,000 x 1,000 panel: rolling 0.007, entropy 0.04, isolation forest 0.6).
COST_SECONDS = {"low": 0.01, "medium": 0.05, "high": 0.5}


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

    def scatter(self, batch: Any) -> Any:
        return batch

    def submit(self, fn: Callable, *args: Any) -> _Done:
        return _Done(fn, args)

    def prepare(self, modules: list[str]) -> None:
        """Nothing to do: this process imports the families itself."""

    def import_families(self, fams: list[Family]) -> bool:
        """False: the families run here, so this process imports them."""
        return False

    def close(self) -> None:
        pass


class _Later:
    """A family's computation run in this process when its result is first asked for.

    ``host`` (the pending result of its host stage in the pool) is handed to it then.
    """

    def __init__(self, fn: Callable, args: tuple, host: Future | None):
        self._fn = fn
        self._args = args
        self._host = host
        self._done: _Done | None = None

    def result(self) -> Any:
        if self._done is None:
            extra = {"host": self._host.result} if self._host is not None else {}
            self._done = _Done(functools.partial(self._fn, **extra), self._args)
        return self._done.result()

    def cancel(self) -> None:
        if self._host is not None:
            self._host.cancel()


class HostPoolExecutor:
    """The device's families in this process; the host-only stages of GPU families in a pool.

    Part of some GPU families runs on the host whatever the device (catch22's pycatch22
    features, anomaly's forest growing: :func:`python_jobs.gpu.with_host_stage`). Submitting
    such a family starts its host stage (:func:`python_jobs.job.compute.compute_host_stage`)
    in a process pool at once; every family's own computation runs here, in submission order,
    when its result is collected, and is handed the host stage's result. The job collects a
    batch after submitting the next one, so the pool works on the host stages of two batches
    while this process drives the device through the other families.

    The pool's processes are started (``forkserver``, else ``spawn``: never forked from a
    process that holds a CUDA context) at the first host stage, so a run without one starts
    none. Values are those of :class:`SyncExecutor`: the same functions on the same series.
    """

    name = "host-pool"
    max_in_flight = 2

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def scatter(self, batch: Any) -> Any:
        return batch

    def submit(self, fn: Callable, *args: Any) -> _Later:
        # The job's tasks are compute_family(fam, batch, device, ...); others run here as they are.
        host = self._start_host_stage(*args[:3]) if fn is compute_family else None
        return _Later(fn, args, host)

    def _start_host_stage(self, fam: Family, batch: Any, device: str) -> Future | None:
        if device != "gpu":
            return None
        try:
            if host_stage(fam) is None:
                return None
        except Exception:
            # The GPU module does not import: compute_family meets the same error where a
            # GPU batch's failure is handled (logged, counted, or the job stopped).
            return None
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_host_worker_setup,
                initargs=(str(config.numba_cache_dir()),),
            )
        return self._pool.submit(compute_host_stage, fam, batch)

    def prepare(self, modules: list[str]) -> None:
        """Nothing to do: a pool process imports only the modules its host stages need."""

    def import_families(self, fams: list[Family]) -> bool:
        """False: the families run here, so this process imports them."""
        return False

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _host_worker_setup(cache_dir: str) -> None:
    os.environ.setdefault("NUMBA_CACHE_DIR", cache_dir)
    _import_modules([])


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
        self._warm_up: list[Any] = []
        threads = sum(client.nthreads().values()) or 1
        self.max_in_flight = max(2, 2 * threads)
        with contextlib.suppress(Exception):
            from distributed import WorkerPlugin

            plugin = type("_NumbaCache", (NumbaCachePlugin, WorkerPlugin), {})
            # A remote worker keeps its own NUMBA_CACHE_DIR or uses its checkout's default.
            client.register_plugin(plugin(None if name.startswith("tcp") else str(config.numba_cache_dir())))

    def scatter(self, batch: Any) -> Any:
        return self.client.scatter(batch, hash=False)

    def gpu_available(self) -> bool:
        """Whether every worker has a usable GPU."""
        answers = self.client.run(_gpu_available_here)
        return bool(answers) and all(answers.values())

    def submit(self, fn: Callable, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def prepare(self, modules: list[str]) -> None:
        """Have every worker import ``modules`` now, while this process imports them too.

        A worker would otherwise import a family's module (seconds) when its first task
        arrives, after this process has done the same: the imports now overlap.
        """
        if not modules:
            return
        with contextlib.suppress(Exception):
            # Held here so that they are not cancelled.
            self._warm_up = self._on_every_worker(_import_modules, modules)

    def _on_every_worker(self, fn: Callable, *args: Any) -> list[Any]:
        """One task ``fn(*args)`` per worker, pinned to it; their futures."""
        return [
            self.client.submit(fn, *args, workers=[address], allow_other_workers=False, pure=False)
            for address in self.client.nthreads()
        ]

    def import_families(self, fams: list[Family]) -> bool:
        """Have every worker import and bind ``fams`` (catalog stand-ins,
        :class:`python_jobs.job.catalog.CatalogFamily`) and check each against the catalog;
        True when all did, so that this process need not import them: the stand-ins are what
        the tasks carry. False, with nothing changed, for a family this process holds already
        imported, or when a worker fails (a stale catalog, say): then this process imports
        them, and plans again if the catalog was stale.
        """
        from python_jobs.job.catalog import CatalogFamily, runnable_everywhere

        if not fams or not all(isinstance(fam, CatalogFamily) for fam in fams):
            return False
        try:
            self.client.gather(self._on_every_worker(runnable_everywhere, fams))
        except Exception:
            return False
        return True

    def close(self) -> None:
        for obj in self._owned:
            with contextlib.suppress(Exception):
                obj.close()


def _import_modules(modules: list[str]) -> None:
    import importlib

    # The registry first: it defers libraries the families never call (see DEFERRED_LIBRARIES).
    importlib.import_module("python_jobs.features.registry")
    for module in modules:
        importlib.import_module(module)


def _gpu_available_here() -> bool:
    from python_jobs.device import gpu_available

    return gpu_available()


def is_remote(scheduler: Any) -> bool:
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


def estimated_seconds(planned: list[Planned], fams: list[Family]) -> float:
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
        if device == "gpu" and cores >= 2:
            return HostPoolExecutor(n_workers or cores - 1)
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
