"""Ingestion of results files into the raw tables (draws, prizes, rejects)."""

from python_jobs.ingest.load import IngestError, IngestResult, ingest_file
from python_jobs.ingest.parse import parse_file
from python_jobs.ingest.problems import FileLevelError, Problem

__all__ = ["FileLevelError", "IngestError", "IngestResult", "Problem", "ingest_file", "parse_file"]
