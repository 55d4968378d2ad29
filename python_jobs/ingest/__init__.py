"""Ingestion of results files into the raw table (contract section 3)."""

from python_jobs.ingest.load import IngestError, IngestResult, ingest_file
from python_jobs.ingest.parse import FileLevelError, Problem, parse_file

__all__ = ["FileLevelError", "IngestError", "IngestResult", "Problem", "ingest_file", "parse_file"]
