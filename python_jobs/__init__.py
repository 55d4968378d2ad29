"""loto-features: time-series feature generation for lottery draws.

The package holds the Python side of the project: ingestion of results files, the
heavy feature families (CPU and GPU) and the job that runs them, and the pipeline
driver behind ``make demo``.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use: `import python_jobs` stays cheap (no pandas, no database driver).
    if name == "training_set":
        from python_jobs.training import training_set

        return training_set
    raise AttributeError(f"module 'python_jobs' has no attribute {name!r}")


__all__ = ["__version__", "training_set"]
