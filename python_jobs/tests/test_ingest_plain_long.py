"""The long format's fast path gives what the line-by-line reader gives, on any input.

Every file is read twice, once as the loader reads it and once with the fast path turned off,
and the chunks must agree: the same good rows with the same values, the same bad lines with
the same reasons, the same count of lines read. The files are the bundled real draws in long
format, as they are and with values mutated into every kind of trouble.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from python_jobs.ingest import long_plain, parse
from python_jobs.ingest.load import _csv_text
from python_jobs.ingest.long import DRAW_COLUMNS
from python_jobs.ingest.parse import parse_file
from python_jobs.ingest.problems import FileLevelError
from python_jobs.ingest.values import INT32_MAX
from python_jobs.tests.ingest_files import loto6_draws, loto6_long_lines, write_lines

LOTO6_LINES = loto6_long_lines(loto6_draws())


def _read(path, loto: str, *, plain: bool, monkeypatch) -> tuple:
    """(good rows, problems, lines read, layout) as one path reads the file, or the refusal of
    the whole file."""
    with monkeypatch.context() as patch:
        if not plain:
            patch.setattr(parse, "is_plain_long_file", lambda path: False)
        parsed = parse_file(path, loto)
        try:
            chunks = list(parsed.chunks())
        except FileLevelError as exc:
            return pd.DataFrame(columns=DRAW_COLUMNS), [], str(exc), parsed.layout
    for chunk in chunks:
        if chunk.draws_csv is not None:
            # What COPY reads is what the loader would have written from the frame.
            assert chunk.draws_csv == _csv_text(chunk.draws, DRAW_COLUMNS)
    draws = pd.concat([chunk.draws for chunk in chunks], ignore_index=True)
    problems = [(p.line, p.draw_date, p.reason, p.raw) for chunk in chunks for p in chunk.problems]
    return draws, sorted(problems), parsed.lines_read, parsed.layout


def _same_both_ways(path, loto: str, monkeypatch) -> tuple[pd.DataFrame, list]:
    fast = _read(path, loto, plain=True, monkeypatch=monkeypatch)
    slow = _read(path, loto, plain=False, monkeypatch=monkeypatch)
    # The text COPY reads, and the values (pandas' concat of the chunks may type an empty text
    # column as object, a full one as str: the chunks fall at other lines on the two paths).
    assert _csv_text(fast[0], DRAW_COLUMNS) == _csv_text(slow[0], DRAW_COLUMNS)
    pd.testing.assert_frame_equal(fast[0], slow[0], check_dtype=False)
    assert fast[1:] == slow[1:]
    return fast[0], fast[1]


def test_real_draws_take_the_fast_path_and_agree(tmp_path, monkeypatch):
    path = write_lines(tmp_path, LOTO6_LINES, "loto6_long.csv")
    assert long_plain.is_plain_long_file(path)
    calls = []
    original = long_plain.parse_long_chunk
    monkeypatch.setattr(long_plain, "parse_long_chunk", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(parse, "CHUNK_LINES", 997)  # several chunks, the last one short
    draws, problems = _same_both_ways(path, "loto6", monkeypatch)
    assert calls == [] and problems == []
    assert len(draws) == len(LOTO6_LINES) - 1
    assert draws["line"].tolist() == list(range(2, len(LOTO6_LINES) + 1))
    # carry-overs above 2**53 would lose digits through a float
    assert draws["co"].max() == max(int(line.rsplit(",", 1)[1]) for line in LOTO6_LINES[1:])


def test_own_series_with_times_take_the_fast_path(tmp_path, monkeypatch):
    lines = ["unique_id,ds,y"] + [
        f"load_{k % 3},2024-01-0{1 + k // 48} {k % 48 // 2:02d}:{30 * (k % 2):02d}:00,{k * 1.25 - 40}"
        for k in range(48 * 3)
    ]
    path = write_lines(tmp_path, lines, "demand.csv")
    draws, problems = _same_both_ways(path, "demand", monkeypatch)
    assert problems == [] and len(draws) == 48 * 3
    assert draws["ds"].iloc[1] == "2024-01-01 00:30:00"


# Values of each column, good and bad: every kind the line-by-line reader tells apart.
_LOTO = st.sampled_from(["", "loto6", "loto7", " loto6", "LOTO6"])
_UID = st.sampled_from(["N1", "N6", "B1", "N7", "", "n1", "N 1", "-N1", "N1.x", "x" * 65, "N１"])
_DS = st.sampled_from(
    [
        "2020-01-06",
        "2020-1-6",
        "2020/01/06",
        "20200106",
        "2020-01-06T09:30:00+09:00",
        "2020-01-06 12:00",
        " 2020-01-06",
        "2020-01-06 ",
        "1999-01-01",
        "2099-01-01",
        "2020-02-30",
        "",
        "someday",
    ]
)
_Y = st.sampled_from(
    [
        "7",
        "43",
        "44",
        "0",
        "-3",
        "07",
        "7.0",
        "7.5",
        "7.",
        ".5",
        "1e1",
        "+7",
        " 7",
        "nan",
        "inf",
        "",
        "1" * 16,
        "0." + "1" * 13,
        "0." + "1" * 12,
        "７",
        "x",
    ]
)
_NUM = st.sampled_from(["", "1", "1500", "0", "-1", "007", str(INT32_MAX), str(INT32_MAX + 1), "1.0", "１"])
_CO = st.sampled_from(["", "0", "123456789012345678", "9" * 19, "-5", "1.0", "x", "１円"])
_LINE = st.one_of(
    st.tuples(_LOTO, _UID, _DS, _Y, _NUM, _CO).map(",".join),
    st.sampled_from(["   ", ",,,,,", "loto6,N1,2020-01-06,7,1,0,", "loto6,N1,2020-01-06,7,1,0,,", "N1,7"]),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(_LINE, min_size=1, max_size=25),
    good=st.integers(0, 40),
    loto=st.sampled_from(["loto6", "mine"]),
    chunk=st.sampled_from([3, 1000]),
)
def test_any_mutation_reads_the_same_both_ways(tmp_path, monkeypatch, lines, good, loto, chunk):
    monkeypatch.setattr(parse, "CHUNK_LINES", chunk)
    body = [line.replace("loto6", loto) for line in LOTO6_LINES[1 : 1 + good]] + lines
    path = write_lines(tmp_path, ["loto,unique_id,ds,y,num,co", *body], f"mutated_{loto}.csv")
    _same_both_ways(path, loto, monkeypatch)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        (b"unique_id,ds,y\nA,2020-01-01,1\n", True),
        (b"\xef\xbb\xbfunique_id,ds,y\nA,2020-01-01,1", True),
        (b'unique_id,ds,y\n"A",2020-01-01,1\n', False),
        (b"unique_id,ds,y\r\nA,2020-01-01,1\r\n", False),
        (b"unique_id,ds,y\n\nA,2020-01-01,1\n", False),
        (b"\nunique_id,ds,y\nA,2020-01-01,1\n", False),
        (b"unique_id\tds\ty\nA\t2020-01-01\t1\n", False),
        (b"unique_id,ds,y\nA,2020-01-01,1\x00\n", False),
        ("unique_id,ds,y\nA,2020-01-01,１\n".encode(), False),
        (b"unique_id,ds,y\nA,2020-01-01," + b"1" * 100_000 + b"\n", False),
    ],
)
def test_what_counts_as_plain(tmp_path, text, plain):
    path = tmp_path / "file.csv"
    path.write_bytes(text)
    assert long_plain.is_plain_long_file(path) is plain
