"""``loto-features warmup``: compile every numba kernel once and write it to the numba cache.

Run by ``make install``, so that no later process pays the JIT. The family modules are imported
once, then the kernels are compiled in forked processes, one per core: numba compiles on one
core, and the families' kernels are independent of one another. Each task computes one family
on a short real-looking series (or writes two feature rows), which compiles exactly the
kernels that path calls, and numba writes them to ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from python_jobs import config

WRITER = "feature row writer"


def _compile_family(name: str) -> float:
    import numpy as np

    from python_jobs.features import registry

    (family,) = registry.families(names=[name])
    start = time.perf_counter()
    family.compute(np.random.default_rng(0).integers(1, 44, 300).astype(float))
    return time.perf_counter() - start


def _compile_writer() -> float:
    """The writer of the job's feature rows (:mod:`python_jobs.job.pgcopy`)."""
    import datetime as dt

    import numpy as np

    from python_jobs.job import pgcopy

    start = time.perf_counter()
    pgcopy.feature_rows(
        [("w", "w")], np.zeros(2, int), np.zeros(2, int), dt.datetime.now(dt.UTC), np.ones((2, 2))
    )
    return time.perf_counter() - start


def tasks() -> list[tuple[str, Callable[[], float]]]:
    """What to compile, by name: every registered family, then the feature row writer."""
    from python_jobs.features import registry

    families = [(fam.name, functools.partial(_compile_family, fam.name)) for fam in registry.families()]
    return [*families, (WRITER, _compile_writer)]


def _report(name: str, seconds: float) -> None:
    print(f"  {name:<22} {seconds:6.2f} s", flush=True)


def warm_numba_cache(processes: int | None = None) -> int:
    """Compile everything, ``processes`` at a time (default: one per core); print a line each."""
    todo = tasks()  # imports the family modules here, once, before the processes fork
    workers = max(1, min(processes or os.cpu_count() or 1, len(todo)))
    started = time.perf_counter()
    if workers == 1:
        for name, compile_it in todo:
            _report(name, compile_it())
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(compile_it): name for name, compile_it in todo}
            for future in as_completed(futures):
                _report(futures[future], future.result())
    seconds = time.perf_counter() - started
    print(f"numba cache: {config.numba_cache_dir()} ({seconds:.1f} s, {workers} processes)")
    return 0
