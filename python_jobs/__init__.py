"""loto-features: time-series feature generation for lottery draws and market ticks.

The package holds the Python side of the project: ingestion of results files, the
heavy feature families (CPU and GPU), the pipeline driver behind ``make demo`` and
the online feature engine.
"""

__version__ = "0.1.0"
