"""Input that used to change data silently: every such file is refused, naming the line."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from psycopg import sql

from python_jobs import config, db
from python_jobs.ingest import IngestError, ingest_file
from python_jobs.pipeline import load_bundled
from python_jobs.tests.ingest_files import (
    LOTO6,
    bingo5_lines,
    loto6_draws,
    loto6_long_lines,
    raw_rows,
    replace_field,
    write_lines,
)


@pytest.fixture
def schema(fresh_schema):
    return fresh_schema("hostile")


def refused(path, loto, url, **kwargs) -> IngestError:
    with pytest.raises(IngestError) as info:
        ingest_file(loto, path, url=url, **kwargs)
    return info.value


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda header: header + ",数字1", ["duplicated header", "'数字1'"]),
        (lambda header: header + ",日付", ["ambiguous header", "'抽せん日' and '日付'"]),
        (lambda header: header + ",当せん口数合計", ["unknown header", "'当せん口数合計'"]),
        (lambda header: header.replace("数字8", "数字９"), ["not numbered 1..N"]),
    ],
)
def test_bad_headers_are_refused_naming_the_columns(pg_url, schema, tmp_path, edit, words):
    lines = bingo5_lines()
    lines[0] = edit(lines[0])
    extra = len(lines[0].split(",")) - 9
    lines[1:] = [line + ",1" * extra for line in lines[1:]]
    error = refused(write_lines(tmp_path, lines), "bingo5", pg_url)
    for word in words:
        assert word in error.report()
    assert raw_rows(pg_url).empty


def test_json_key_twice_in_one_object_is_refused(pg_url, schema, tmp_path):
    text = LOTO6.read_text(encoding="utf-8").replace(
        '"第1数字": "2",', '"第1数字": "2",\n    "第1数字": "3",', 1
    )
    path = tmp_path / "twice.json"
    path.write_text(text, encoding="utf-8")
    assert "duplicated key '第1数字'" in refused(path, "loto6", pg_url).report()


# --- the file's lottery and the stored draws --------------------------------------------------


def test_long_file_of_another_lottery_is_refused(pg_url, schema, tmp_path):
    ingest_file("loto6", LOTO6, url=pg_url)
    before = raw_rows(pg_url)
    lines = loto6_long_lines(loto6_draws()[:3])
    error = refused(write_lines(tmp_path, lines, "long.csv"), "my_series", pg_url)
    assert {p.line for p in error.problems} == set(range(2, 2 + 21))
    assert "loto column says 'loto6' but --loto is 'my_series'" in error.problems[0].reason
    pd.testing.assert_frame_equal(before, raw_rows(pg_url))


def test_merge_that_breaks_a_stored_draw_rolls_back(pg_url, schema, tmp_path):
    ingest_file("loto6", LOTO6, url=pg_url)
    before = raw_rows(pg_url)
    first = loto6_draws()[0]
    # On its own the file is fine (one row); stored, draw 1 would hold 8 twice.
    lines = ["loto,unique_id,ds,y", f"loto6,N1,2000-10-05,{first['第2数字']}"]
    error = refused(write_lines(tmp_path, lines, "fix.csv"), "loto6", pg_url)
    assert error.problems[0].line == 2
    assert "stored loto6 draw of 2000-10-05" in error.report() and "repeats" in error.report()
    # A new draw with only some of its positions would be stored incomplete.
    lines = ["loto,unique_id,ds,y", "loto6,N1,2025-09-29,5"]
    error = refused(write_lines(tmp_path, lines, "part.csv"), "loto6", pg_url)
    assert "1 main numbers stored, loto6 draws 6" in error.report()
    # One draw number on two dates.
    lines = loto6_long_lines([dict(first, 日付="2025/9/29")])
    error = refused(write_lines(tmp_path, lines, "renumbered.csv"), "loto6", pg_url)
    assert "draw number 1 would be stored on several dates (2000-10-05, 2025-09-29)" in error.report()
    pd.testing.assert_frame_equal(before, raw_rows(pg_url))


# --- encoding --------------------------------------------------------------------------------


def test_one_utf8_line_in_a_cp932_file_is_a_bad_line(pg_url, schema, tmp_path):
    lines = bingo5_lines()
    body = ("\n".join(lines[:100]) + "\n").encode("cp932")
    body += (lines[100] + "\n").encode("utf-8")  # 年月日 date: non-ASCII, decodes as UTF-8 only
    body += ("\n".join(lines[101:]) + "\n").encode("cp932")
    path = tmp_path / "mixed.csv"
    path.write_bytes(body)
    error = refused(path, "bingo5", pg_url)
    assert [p.line for p in error.problems] == [101]
    assert "UTF-8 text in a file that is CP932" in error.problems[0].reason
    result = ingest_file("bingo5", path, url=pg_url, skip_bad_rows=True)
    assert result.rows_inserted == 374 * 8
    loaded = raw_rows(pg_url)
    expected = ingest_expected_bingo5_dates(lines, skip=100)
    assert sorted(set(loaded["ds"])) == expected  # every date read right: no mojibake


def ingest_expected_bingo5_dates(lines: list[str], skip: int) -> list[pd.Timestamp]:
    """The draw dates of the lines, as stored: midnight timestamps."""
    from python_jobs.ingest.values import parse_date

    return sorted(
        pd.Timestamp(parse_date(line.split(",")[0]))
        for index, line in enumerate(lines)
        if index and index != skip
    )


def test_undecodable_line_is_named(pg_url, schema, tmp_path):
    lines = bingo5_lines()
    body = (
        ("\n".join(lines[:5]) + "\n").encode("utf-8")
        + b"\x81 ,1,2\n"
        + ("\n".join(lines[5:]) + "\n").encode()
    )
    path = tmp_path / "binary.csv"
    path.write_bytes(body)
    error = refused(path, "bingo5", pg_url)
    assert [p.line for p in error.problems] == [6]
    assert "neither UTF-8 nor CP932" in error.problems[0].reason


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2016/12/28", "before bingo5's first draw (2017-04-05)"),
        ("9999/12/29", "days after today"),
        ((date.today() + timedelta(days=30)).strftime("%Y/%m/%d"), "days after today"),
    ],
)
def test_dates_outside_the_lottery_are_bad_lines(pg_url, schema, tmp_path, value, words):
    lines = bingo5_lines()
    lines[7] = replace_field(lines[7], 0, value)
    error = refused(write_lines(tmp_path, lines), "bingo5", pg_url)
    assert [p.line for p in error.problems] == [8]
    assert words in error.problems[0].reason


def test_long_format_dates_bounded_for_own_series(pg_url, schema, tmp_path):
    lines = ["unique_id,ds,y", "a,1850-01-01,1", "a,2020-01-01,2", f"a,{date.today() + timedelta(days=60)},3"]
    error = refused(write_lines(tmp_path, lines, "own.csv"), "my_series", pg_url)
    assert [p.line for p in error.problems] == [2, 4]


# --- make demo keeps the user's data ----------------------------------------------------------


def test_bundled_files_never_revert_a_correction(pg_url, schema, tmp_path):
    load_bundled(pg_url)
    first = loto6_draws()[0]
    corrected = dict(first, 第6数字="31")  # 30 -> 31: still sorted, in range, no repeat
    ingest_file("loto6", write_lines(tmp_path, loto6_long_lines([corrected]), "fix.csv"), url=pg_url)
    # Draws stored before prize tables were kept: the demo adds the prizes, not the draws.
    with db.connect(pg_url) as conn:
        conn.execute(sql.SQL("delete from {}").format(db.qualified("raw_lottery_prizes")))
    load_bundled(pg_url)  # what `make demo` runs on every call
    rows = raw_rows(pg_url, "loto6")
    value = rows[(rows["unique_id"] == "N6") & (rows["ds"] == pd.Timestamp(2000, 10, 5))]["y"].iloc[0]
    assert int(value) == 31
    assert len(raw_rows(pg_url, "bingo5")) == 375 * 8
    assert len(raw_rows(pg_url, "loto6", table="raw_lottery_prizes")) == 2037 * 5


def test_readme_says_what_the_demo_loads():
    text = (config.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "only for a lottery that has no rows yet" in text


def test_wrapped_json_loads_and_nested_json_is_refused(pg_url, schema, tmp_path):
    wrapped = tmp_path / "wrapped.json"
    document = {"note": "from the site", "meta": {"rows": 20}, "tags": ["a"], "draws": loto6_draws()[:20]}
    wrapped.write_text(json.dumps(document, ensure_ascii=False))
    assert ingest_file("loto6", wrapped, url=pg_url).rows_inserted == 20 * 7
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"a": loto6_draws()[:2], "b": loto6_draws()[2:4]}, ensure_ascii=False))
    assert "exactly one list of draw objects" in refused(two, "loto6", pg_url).report()
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in refused(deep, "loto6", pg_url).report()
    assert db.table_exists(db.connect(pg_url), config.RAW_DRAWS_TABLE)


def test_trailing_delimiters_are_not_columns(pg_url, schema, tmp_path):
    lines = [line + "," for line in bingo5_lines()]
    result = ingest_file("bingo5", write_lines(tmp_path, lines), url=pg_url)
    assert result.rows_inserted == 375 * 8


def test_own_series_may_number_rows_per_series(pg_url, schema, tmp_path):
    lines = [
        "unique_id,ds,y,num",
        "a,2020-01-01,1,1",
        "a,2020-01-02,2,2",
        "b,2021-05-01,3,1",
        "b,2021-05-02,4,2",
    ]
    assert ingest_file("my_panel", write_lines(tmp_path, lines, "panel.csv"), url=pg_url).rows_inserted == 4
    lines = ["unique_id,ds,y,num", "a,2020-01-03,1,3", "a,2020-01-03,2,3"]
    error = refused(write_lines(tmp_path, lines, "twice.csv"), "my_panel", pg_url)
    assert [p.line for p in error.problems] == [3] and "duplicate draw" in error.problems[0].reason


def test_staged_csv_quotes_what_copy_needs_and_leaves_missing_values_empty():
    from python_jobs.ingest.load import _csv_text

    frame = pd.DataFrame(
        {
            "unique_id": ["plain", "a,b", 'say "hi"', "two\nlines", "", "ｌｏｔｏ"],
            "ds": [date(2024, 1, d) for d in range(1, 7)],
            "num": pd.array([1, None, 3, None, 5, 6], dtype="Int64"),
            "y": ["1.5", "2", "3", "4", "5", "6"],
        }
    )
    columns = list(frame.columns)
    assert _csv_text(frame, columns) == frame.to_csv(index=False, header=False)
    assert _csv_text(frame, columns).splitlines()[1] == '"a,b",2024-01-02,,2'


def test_a_second_file_of_a_lottery_merges_and_the_first_inserts(pg_url, schema, tmp_path):
    path = tmp_path / "own.csv"
    path.write_text("loto,unique_id,ds,y\nown,A,2024-01-01,1\nown,A,2024-01-02,2\n", encoding="utf-8")
    first = ingest_file("own", path, url=pg_url)
    assert (first.rows_inserted, first.rows_updated) == (2, 0)
    path.write_text("loto,unique_id,ds,y\nown,A,2024-01-02,5\nown,A,2024-01-03,3\n", encoding="utf-8")
    second = ingest_file("own", path, url=pg_url)
    assert (second.rows_inserted, second.rows_updated) == (1, 1)
    with db.connect(pg_url) as conn:
        rows = conn.execute(
            sql.SQL("select ds, y from {} where loto = 'own' order by ds").format(
                db.qualified(config.RAW_DRAWS_TABLE, schema)
            )
        ).fetchall()
    assert [(d.day, float(y)) for d, y in rows] == [(1, 1.0), (2, 5.0), (3, 3.0)]
