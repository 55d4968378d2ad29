"""Numba compilation caching for the project's kernels and for the libraries it calls.

antropy compiles its kernels eagerly at import (explicit signatures, no ``cache=True``):
about 12 s per process on two cores, every time. :func:`import_cached` imports such a
library with ``numba.jit``/``numba.njit`` defaulting to ``cache=True`` during the import, so
the machine code is written to ``NUMBA_CACHE_DIR`` once and loaded afterwards (about 0.1 s).
Lazily compiled dispatchers of a library imported earlier get ``enable_caching()`` instead.

``NUMBA_CACHE_DIR`` defaults to ``.local/numba_cache`` (``config.numba_cache_dir``); it is
read when numba is first imported, so the feature families take ``njit`` from this module
rather than from numba.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from python_jobs import config

os.environ.setdefault("NUMBA_CACHE_DIR", str(config.numba_cache_dir()))

# numba reads NUMBA_CACHE_DIR when it is first imported, hence after the line above.
import numba
from numba import njit
from numba.core.registry import CPUDispatcher

__all__ = ["import_cached", "njit"]


def _with_cache(decorator):
    def patched(*args, **kwargs):
        kwargs.setdefault("cache", True)
        return decorator(*args, **kwargs)

    return patched


def _enable_caching_everywhere(package: ModuleType) -> None:
    modules = [package]
    if hasattr(package, "__path__"):
        prefix = package.__name__ + "."
        modules += [mod for name, mod in list(sys.modules.items()) if name.startswith(prefix) and mod]
    for module in modules:
        for value in list(vars(module).values()):
            if isinstance(value, CPUDispatcher) and not value.signatures:
                value.enable_caching()


def import_cached(name: str) -> ModuleType:
    """Import ``name`` (a package that uses numba) with on-disk caching of its kernels."""
    top = name.partition(".")[0]
    if top in sys.modules:
        module = importlib.import_module(name)
        _enable_caching_everywhere(sys.modules[top])
        return module
    original_jit, original_njit = numba.jit, numba.njit
    numba.jit, numba.njit = _with_cache(original_jit), _with_cache(original_njit)
    try:
        module = importlib.import_module(name)
    finally:
        numba.jit, numba.njit = original_jit, original_njit
    return module
