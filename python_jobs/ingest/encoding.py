"""The file's encoding, decided from the whole file, and its lines decoded one at a time.

Japanese results files come as UTF-8 (with or without BOM) or CP932 (Shift_JIS). A first pass
over the raw bytes classifies every non-ASCII line: valid UTF-8, valid CP932 only, or neither.
The file's encoding is the one with more lines as evidence (a BOM settles it as UTF-8). A line
that does not decode in that encoding, or that decodes as the other one (a UTF-8 line pasted
into a CP932 file would otherwise become mojibake), is a bad line, named with its number; so is
a line holding a NUL byte or longer than any results line can be. Lines are read from disk in
a stream: memory does not grow with the file.

Most files are plain ASCII: a run of whole lines (about a megabyte) that is ASCII without a NUL
byte is decoded at once and split at its line feeds, and only the lines of other runs are
classified one by one (a million-line file would otherwise spend seconds per pass in Python).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from python_jobs.ingest.problems import FileLevelError

BOM = b"\xef\xbb\xbf"
# Longer than any results line; Python's csv module refuses fields over 131,072 characters.
MAX_LINE_CHARS = 100_000
_READ_BYTES = 1 << 20


@dataclass
class EncodingVerdict:
    """The encoding chosen for a file and the evidence for it."""

    encoding: str
    has_bom: bool
    utf8_lines: int
    cp932_lines: int
    undecodable_lines: int

    @property
    def label(self) -> str:
        return "UTF-8" if self.encoding == "utf-8" else "CP932"

    def evidence(self) -> str:
        return (
            f"{self.label} ({self.utf8_lines} non-ASCII lines are UTF-8, {self.cp932_lines} CP932 only"
            + (", a UTF-8 BOM" if self.has_bom else "")
            + ")"
        )


def _raw_lines(path: Path) -> Iterator[bytes]:
    """Physical lines of the file (split at LF), streamed."""
    with open(path, "rb") as handle:
        yield from handle


def _line_runs(path: Path) -> Iterator[bytes]:
    """The file in runs of whole physical lines (each ends at a line feed but the file's last)."""
    with open(path, "rb") as handle:
        rest = b""
        while block := handle.read(_READ_BYTES):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield block[:cut]
        if rest:
            yield rest


def runs_without_bom(path: Path) -> Iterator[tuple[bytes, bool]]:
    """:func:`_line_runs`, the first without its BOM; and whether a BOM was there."""
    first = True
    for run in _line_runs(path):
        has_bom = first and run.startswith(BOM)
        first = False
        yield (run[len(BOM) :] if has_bom else run), has_bom


def _plain(run: bytes) -> bool:
    """Whether every line of ``run`` is good as it stands: ASCII, no NUL byte."""
    return run.isascii() and b"\x00" not in run


def _classify(raw: bytes) -> str:
    if raw.isascii():
        return "ascii"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        raw.decode("cp932")
        return "cp932"
    except UnicodeDecodeError:
        return "neither"


def decide_encoding(path: Path) -> EncodingVerdict:
    """First pass: count the evidence for each encoding over every line of the file."""
    counts = {"ascii": 0, "utf-8": 0, "cp932": 0, "neither": 0}
    has_bom = False
    for run, bom in runs_without_bom(path):
        has_bom = has_bom or bom
        if run.isascii():
            continue  # ASCII lines are evidence for neither encoding
        for raw in io.BytesIO(run):
            counts[_classify(raw)] += 1
    encoding = "utf-8" if has_bom or counts["utf-8"] >= counts["cp932"] else "cp932"
    return EncodingVerdict(encoding, has_bom, counts["utf-8"], counts["cp932"], counts["neither"])


def _line_problem(raw: bytes, verdict: EncodingVerdict) -> tuple[str | None, str]:
    """(text, "") for a good line, (None, reason) for a bad one."""
    kind = _classify(raw)
    other = "CP932" if verdict.encoding == "utf-8" else "UTF-8"
    if kind == "neither":
        return None, f"the line is neither UTF-8 nor CP932 text; the file is {verdict.evidence()}"
    if kind not in ("ascii", verdict.encoding):
        return None, (
            f"the line is {other} text in a file that is {verdict.evidence()}: "
            "re-save the file in one encoding"
        )
    text = raw.decode(verdict.encoding)
    if "\x00" in text:
        return None, "the line holds a NUL byte"
    if len(text) > MAX_LINE_CHARS:
        return None, f"the line is {len(text):,} characters long (at most {MAX_LINE_CHARS:,})"
    return text, ""


def _plain_lines(run: bytes) -> Iterator[str]:
    """The lines of an ASCII run, each with its line feed (the file's last one may lack it)."""
    lines = run.decode("ascii").split("\n")
    last = lines.pop()  # "" when the run ends with a line feed, as all but the file's last do
    for text in lines:
        yield text + "\n"
    if last or not run:  # a file that is a BOM alone is one empty line
        yield last


def decoded_lines(path: Path, verdict: EncodingVerdict) -> Iterator[tuple[int, str | None, str]]:
    """Second pass: (line number, text or None, reason) for every physical line."""
    number = 0
    for run, _ in runs_without_bom(path):
        if _plain(run):
            for text in _plain_lines(run):
                number += 1
                if len(text) > MAX_LINE_CHARS:
                    yield number, *_line_problem(text.encode("ascii"), verdict)
                else:
                    yield number, text, ""
            continue
        for raw in io.BytesIO(run):
            number += 1
            text, reason = _line_problem(raw, verdict)
            yield number, text, reason


def decode_whole(path: Path, verdict: EncodingVerdict) -> str:
    """The whole file as text (JSON), refused at the first line that does not decode."""
    parts: list[str] = []
    for number, text, reason in decoded_lines(path, verdict):
        if text is None and "characters long" not in reason:
            raise FileLevelError(reason, line=number)
        parts.append(text if text is not None else _decode_long_line(path, number, verdict))
    return "".join(parts)


def _decode_long_line(path: Path, number: int, verdict: EncodingVerdict) -> str:
    """A JSON file may be one long line: decode it without the CSV line limit."""
    for index, raw in enumerate(_raw_lines(path), start=1):
        if index == number:
            if index == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            return raw.decode(verdict.encoding)
    return ""


def sniff_start(path: Path) -> str:
    """The first non-blank characters of the file (to tell JSON from CSV), decoded leniently."""
    with open(path, "rb") as handle:
        head = handle.read(_READ_BYTES)
    if head.startswith(BOM):
        head = head[len(BOM) :]
    return head.decode("utf-8", errors="replace").lstrip()[:64]
