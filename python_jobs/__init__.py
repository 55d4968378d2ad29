"""loto-features: time-series feature generation for lottery draws.

The package holds the Python side of the project: ingestion of results files, the
heavy feature families (CPU and GPU) and the job that runs them, and the pipeline
driver behind ``make demo``.
"""

__version__ = "0.1.0"
