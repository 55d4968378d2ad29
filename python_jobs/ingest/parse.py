"""Reading a results file into chunks of long-format rows, with every problem named by line.

Layouts read:

* JSON: a list of objects keyed like the Japanese CSV headers (``loto6.json`` style), or an
  object wrapping one such list;
* wide CSV: one draw per line, Japanese headers (抽選日/抽せん日/日付, 開催回, 数字1..数字N or
  第N数字 or all numbers in one cell, ボーナス数字 or 数字B1.., キャリーオーバー, 当せん番号 for
  Numbers, prize columns N等口数 / N等賞金 and their variants), full-width digits allowed;
* long CSV: ``loto, unique_id, ds, y[, num, co]``.

The encoding (UTF-8 with or without BOM, or CP932) is decided from the whole file first
(:mod:`python_jobs.ingest.encoding`). Rows come out in chunks of at most ``CHUNK_LINES``
lines, so memory stays bounded whatever the file size. Nothing here touches the database.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from python_jobs.ingest.encoding import (
    EncodingVerdict,
    decide_encoding,
    decode_whole,
    decoded_lines,
    sniff_start,
)
from python_jobs.ingest.headers import WideLayout, wide_layout
from python_jobs.ingest.json_draws import json_draw_objects
from python_jobs.ingest.long import DRAW_COLUMNS, LONG_REQUIRED, long_header, parse_long_chunk
from python_jobs.ingest.long_plain import is_plain_long_file, plain_line_chunks, plain_long_chunk
from python_jobs.ingest.problems import FileLevelError, Problem
from python_jobs.ingest.spec import LotoSpec, get_spec, load_specs
from python_jobs.ingest.values import name_problem, normalize_header, parse_date
from python_jobs.ingest.wide import wide_line, wide_problem

CHUNK_LINES = 100_000
OPTIONAL_DRAW_COLUMNS = frozenset({"num", "co"})
PRIZE_COLUMNS = ["loto", "ds", "tier", "winners", "prize", "line"]

__all__ = ["CHUNK_LINES", "Chunk", "FileLevelError", "ParsedFile", "Problem", "parse_date", "parse_file"]


@dataclass
class Chunk:
    """Good rows (text-typed, for COPY) and bad lines of up to ``CHUNK_LINES`` lines."""

    draws: pd.DataFrame
    prizes: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    #: The draws already written as CSV for COPY (columns ``DRAW_COLUMNS``), where the reader
    #: made them so; otherwise the loader writes them from ``draws``.
    draws_csv: str | None = None


def _draw_frame(rows: list) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=DRAW_COLUMNS)
    for name in ("num", "co"):
        frame[name] = frame[name].astype("Int64")
    return frame


def _prize_frame(rows: list) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=PRIZE_COLUMNS)
    for name in ("winners", "prize"):
        frame[name] = frame[name].astype("Int64")
    return frame


@dataclass
class ParsedFile:
    """A file whose header is read and checked; :meth:`chunks` streams its rows."""

    path: Path
    loto: str
    layout: str
    verdict: EncodingVerdict
    lines_read: int = 0
    #: The optional draw columns (``num``, ``co``) the file has, known once its header is read.
    #: A merge leaves a stored value alone where the file has no column for it: a corrections
    #: file without キャリーオーバー does not erase the stored carry-overs.
    draw_columns: frozenset[str] = OPTIONAL_DRAW_COLUMNS

    def chunks(self) -> Iterator[Chunk]:
        if self.layout == "json":
            yield from self._json_chunks()
        else:
            yield from self._csv_chunks()

    def to_frame(self) -> pd.DataFrame:
        """Every good draw row in one frame (text-typed, as for COPY): for small files only,
        such as the bundled ones that tests and model training read without a database."""
        frames = [chunk.draws for chunk in self.chunks()]
        return pd.concat(frames, ignore_index=True) if frames else _draw_frame([])

    # --- JSON ----------------------------------------------------------------------------

    def _json_chunks(self) -> Iterator[Chunk]:
        objects = json_draw_objects(decode_whole(self.path, self.verdict))
        keys: list[str] = []
        seen: set[str] = set()
        for _, obj, _ in objects:
            for key in obj:
                if key not in seen:
                    seen.add(key)
                    keys.append(key)
        spec = _known_spec(self.loto, layout="JSON")
        layout = wide_layout(keys, spec)
        self.draw_columns = _wide_draw_columns(layout)
        for start in range(0, len(objects), CHUNK_LINES):
            draws: list = []
            prizes: list = []
            problems: list[Problem] = []
            for line, obj, raw in objects[start : start + CHUNK_LINES]:
                self.lines_read += 1
                result = wide_line(obj, layout, spec, line)
                if result.reasons:
                    problems.append(wide_problem(result, line, raw))
                draws += result.draws
                prizes += result.prizes
            yield Chunk(_draw_frame(draws), _prize_frame(prizes), problems)

    # --- CSV -----------------------------------------------------------------------------

    def _records(self, decode_problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
        """(first line, fields) of every non-blank CSV record; undecodable lines become problems."""

        def text_lines() -> Iterator[str]:
            for number, text, reason in decoded_lines(self.path, self.verdict):
                if text is None:
                    decode_problems.append(Problem(number, None, reason))
                    yield "\n"
                else:
                    yield text

        lines = text_lines()
        first = next(lines, None)
        skipped = 0  # blank lines before the header: the reader counts from the header on
        while first is not None and not first.strip():
            first = next(lines, None)
            skipped += 1
        if first is None:
            raise FileLevelError("the file is empty")
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
        reader = csv.reader(_prepend(first, lines), delimiter=delimiter)
        previous = 0
        try:
            for fields in reader:
                start = previous + 1 + skipped
                previous = reader.line_num
                # The first field decides for almost every line; blank lines are rare.
                if fields and (fields[0].strip() or any(value.strip() for value in fields)):
                    yield start, fields
        except csv.Error as exc:
            raise FileLevelError(f"unreadable CSV: {exc}", line=reader.line_num + skipped) from None

    def _csv_chunks(self) -> Iterator[Chunk]:
        decode_problems: list[Problem] = []
        records = self._records(decode_problems)
        header_line, header = next(records, (0, []))
        # A trailing delimiter on the header line is common: empty last names are not columns.
        while header and not header[-1].strip():
            header.pop()
        if not header:
            raise FileLevelError("the file is empty")
        header_problems = [
            problem for problem in decode_problems if problem.line and problem.line <= header_line
        ]
        if header_problems:
            raise FileLevelError(
                f"the header cannot be read: {header_problems[0].reason}", line=header_problems[0].line
            )
        decode_problems.clear()
        names = {normalize_header(name) for name in header}
        if set(LONG_REQUIRED) <= names:
            self.layout = "long-csv"
            if header_line == 1 and is_plain_long_file(self.path):
                chunks = self._plain_long_chunks(header)
            else:
                chunks = self._long_chunks(header, records, decode_problems)
        else:
            self.layout = "wide-csv"
            chunks = self._wide_chunks(header, header_line, records, decode_problems)
        any_rows = False
        for chunk in chunks:
            any_rows = True
            yield chunk
        if not any_rows:
            raise FileLevelError("the file is empty: a header and no draws")

    def _batches(
        self, records: Iterator[tuple[int, list[str]]], width: int
    ) -> Iterator[list[tuple[int, list[str]]]]:
        batch: list[tuple[int, list[str]]] = []
        for line, fields in records:
            # A trailing delimiter on every line is common; empty extra fields are not data.
            while len(fields) > width and not fields[-1].strip():
                fields.pop()
            batch.append((line, fields))
            self.lines_read += 1
            if len(batch) >= CHUNK_LINES:
                yield batch
                batch = []
        if batch:
            yield batch

    def _long_chunks(self, header: list[str], records, decode_problems: list[Problem]) -> Iterator[Chunk]:
        names = long_header(header)
        self.draw_columns = OPTIONAL_DRAW_COLUMNS & set(names)
        for batch in self._batches(records, len(names)):
            draws, problems = parse_long_chunk(batch, names, self.loto)
            problems += decode_problems
            decode_problems.clear()
            yield Chunk(draws, _prize_frame([]), problems)
        if decode_problems:
            yield Chunk(_draw_frame([]), _prize_frame([]), list(decode_problems))

    def _plain_long_chunks(self, header: list[str]) -> Iterator[Chunk]:
        """:meth:`_long_chunks` for a plain file (:mod:`python_jobs.ingest.long_plain`)."""
        names = long_header(header)
        self.draw_columns = OPTIONAL_DRAW_COLUMNS & set(names)
        for first_line, lines in plain_line_chunks(self.path, CHUNK_LINES):
            draws, problems, draws_csv, records = plain_long_chunk(first_line, lines, names, self.loto)
            if records:  # only blank lines: no chunk, as from _long_chunks
                self.lines_read += records
                yield Chunk(draws, _prize_frame([]), problems, draws_csv)

    def _wide_chunks(
        self, header: list[str], header_line: int, records, decode_problems: list[Problem]
    ) -> Iterator[Chunk]:
        spec = _known_spec(self.loto, layout="wide CSV")
        try:
            layout = wide_layout(header, spec)
        except FileLevelError as exc:
            raise FileLevelError(exc.message, line=header_line) from None
        self.draw_columns = _wide_draw_columns(layout)
        date_index = header.index(layout.date_key)
        for batch in self._batches(records, len(header)):
            draws: list = []
            prizes: list = []
            problems: list[Problem] = list(decode_problems)
            decode_problems.clear()
            for line, fields in batch:
                raw = ",".join(fields)
                if len(fields) != len(header):
                    shown = parse_date(fields[date_index]) if date_index < len(fields) else None
                    problems.append(
                        Problem(
                            line,
                            shown.isoformat() if shown else None,
                            f"wrong column count: {len(fields)} fields, the header has {len(header)}",
                            raw,
                        )
                    )
                    continue
                result = wide_line(dict(zip(header, fields, strict=True)), layout, spec, line)
                if result.reasons:
                    problems.append(wide_problem(result, line, raw))
                draws += result.draws
                prizes += result.prizes
            yield Chunk(_draw_frame(draws), _prize_frame(prizes), problems)
        if decode_problems:
            yield Chunk(_draw_frame([]), _prize_frame([]), list(decode_problems))


def _wide_draw_columns(layout: WideLayout) -> frozenset[str]:
    present = {"num": layout.num_key is not None, "co": layout.co_key is not None}
    return frozenset(name for name, found in present.items() if found)


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _known_spec(loto: str, *, layout: str) -> LotoSpec:
    spec = get_spec(loto)
    if spec is None:
        known = ", ".join(sorted(load_specs()))
        raise FileLevelError(
            f"unknown lottery {loto!r} for a {layout} file: known lotteries are {known}; "
            "for your own series use the long format with columns loto, unique_id, ds, y[, num, co]"
        )
    return spec


def parse_file(path: Path, loto: str) -> ParsedFile:
    """Check the lottery name and the file, decide its encoding and layout; rows come later.

    Raises
    ------
    FileLevelError
        The name is unusable, or the file cannot be read at all (missing, empty).
    """
    problem = name_problem(loto, "--loto")
    if problem:
        raise FileLevelError(f"{problem}: name the lottery (loto6, loto7, ...) or your own series")
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise FileLevelError("the file is empty")
        verdict = decide_encoding(path)
        start = sniff_start(path)
    except OSError as exc:
        raise FileLevelError(f"cannot read {path}: {exc.strerror}") from None
    if not start:
        raise FileLevelError("the file is empty")
    layout = "json" if start[0] in "[{" else "csv"
    return ParsedFile(path, loto, layout, verdict)
