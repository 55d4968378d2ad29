"""The Python feature job: ``make gpu-features`` / ``loto-features features``.

It reads ``stg_lottery__draws``, runs every registered feature family over the series that
changed since the last run, and writes ``py_features_stat`` (one row per series) and
``py_features_hist`` (one row per draw), which dbt declares as sources, stages and joins into
the marts. The job owns those tables and its bookkeeping tables ``py_job_*``.

Modules, in the order a run uses them:

:mod:`~python_jobs.job.run`
    :func:`run_job`: the run as a short sequence of named phases, and the command line.
:mod:`~python_jobs.job.planning`
    The families and their versions; which (series, family) pairs to compute.
:mod:`~python_jobs.job.executors`
    In-process, or a Dask cluster (local, CUDA, remote).
:mod:`~python_jobs.job.compute`
    One family over one batch of series, on a worker.
:mod:`~python_jobs.job.tables`
    The job's tables: their one definition, creation, the schema lock.
:mod:`~python_jobs.job.reading`, :mod:`~python_jobs.job.assembly`, :mod:`~python_jobs.job.writing`
    Change detection and COPY out; a batch's results as rows; COPY in and the set-wise merge.
:mod:`~python_jobs.job.swap`
    How ``py_features_hist`` is loaded: merged, bulk-loaded when empty, or (a full refresh)
    rebuilt and swapped in with the views over it.
:mod:`~python_jobs.job.runs`
    Run records, and runs a killed job left ``running``.
:mod:`~python_jobs.job.reporting`
    The result object, the summary table, progress.
"""

from __future__ import annotations

import os

from python_jobs import config

# Compiled numba kernels are cached on disk across runs; the variable must be set before the
# first `import numba`, which the family modules do, so it is set when this package loads.
os.environ.setdefault("NUMBA_CACHE_DIR", str(config.numba_cache_dir()))

import importlib

# The package's names, from the module that defines each. They load at first use, so that a
# module that needs only the job's table names (``health``, the marts' freshness check) does
# not import the job's compute path, and with it numba and SciPy.
_EXPORTS = {
    "FamilyBatchResult": "compute",
    "SeriesBatch": "compute",
    "compute_family": "compute",
    "JobError": "errors",
    "JobIOError": "errors",
    "SeriesFailure": "errors",
    "JobResult": "reporting",
    "SeriesError": "reporting",
    "main": "run",
    "run_job": "run",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = sorted(_EXPORTS)
