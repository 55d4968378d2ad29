"""Ingestion of results files into the raw tables (draws, prizes, rejects).

The names below are loaded on first use: every command line builds its parser from modules of
this package (``ingest.rejects``), and most commands never parse a file, so they need not
import pandas and the parsers on start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module of this package that defines it.
_HOMES = {
    "FileLevelError": "problems",
    "IngestError": "load",
    "IngestResult": "load",
    "Problem": "problems",
    "ingest_file": "load",
    "parse_file": "parse",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
