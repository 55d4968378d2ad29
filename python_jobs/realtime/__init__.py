"""Online features: a WebSocket stream, an incremental engine with the values of
``features_hist``, a Redis feature store and model predictions on every update.

Imports are lazy so that ``python_jobs.realtime.engine`` does not pull in Redis or websockets.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AsyncPredictionPipeline",
    "RealTimeFeatureEngine",
    "RealTimeFeatureStore",
    "StreamingDataProcessor",
]

_WHERE = {
    "RealTimeFeatureEngine": "python_jobs.realtime.engine",
    "RealTimeFeatureStore": "python_jobs.realtime.store",
    "StreamingDataProcessor": "python_jobs.realtime.stream",
    "AsyncPredictionPipeline": "python_jobs.realtime.predict",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
