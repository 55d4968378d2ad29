"""Ingestion of the real files, the common Japanese layouts, and every kind of bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from python_jobs import config, db
from python_jobs.ingest import IngestError, ingest_file, load
from python_jobs.ingest.parse import parse_date

LOTO6 = config.RAW_DATA_DIR / "loto6.json"
BINGO5 = config.RAW_DATA_DIR / "bingo5.csv"


def independent_loto6() -> pd.DataFrame:
    """Long format of loto6.json, parsed here without the project's parser."""
    draws = json.loads(LOTO6.read_text(encoding="utf-8"))
    rows = []
    for draw in draws:
        ds = pd.to_datetime(draw["日付"], format="%Y/%m/%d")  # midnight, as stored
        common = {"loto": "loto6", "ds": ds, "num": int(draw["開催回"]), "co": int(draw["キャリーオーバー"])}
        for k in range(1, 7):
            rows.append({**common, "unique_id": f"N{k}", "y": int(draw[f"第{k}数字"])})
        rows.append({**common, "unique_id": "B1", "y": int(draw["ボーナス数字"])})
    return pd.DataFrame(rows)


def independent_bingo5() -> pd.DataFrame:
    frame = pd.read_csv(BINGO5, encoding="utf-8-sig", dtype=str)
    dates = frame["抽せん日"].str.replace("年", "/").str.replace("月", "/").str.replace("日", "")
    frame["ds"] = pd.to_datetime(dates, format="%Y/%m/%d")
    long = frame.melt(id_vars=["ds"], value_vars=[f"数字{k}" for k in range(1, 9)], value_name="y")
    long["unique_id"] = "N" + long["variable"].str.replace("数字", "")
    long["y"] = long["y"].astype(int)
    long["loto"] = "bingo5"
    return long[["loto", "unique_id", "ds", "y"]]


def raw_rows(url: str, loto: str | None = None) -> pd.DataFrame:
    query = sql.SQL("select loto, unique_id, ds, y, num, co, loaded_at from {} {} order by 1, 2, 3").format(
        db.qualified(config.RAW_DRAWS_TABLE),
        sql.SQL("where loto = {}").format(sql.Literal(loto)) if loto else sql.SQL(""),
    )
    with db.connect(url) as conn:
        if not db.table_exists(conn, config.RAW_DRAWS_TABLE):
            return pd.DataFrame(columns=["loto", "unique_id", "ds", "y", "num", "co", "loaded_at"])
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def compare(loaded: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    left = loaded[columns].sort_values(["loto", "unique_id", "ds"]).reset_index(drop=True)
    right = expected[columns].sort_values(["loto", "unique_id", "ds"]).reset_index(drop=True)
    left["y"] = left["y"].astype(int)
    # ds is stored as a timestamp (midnight for a lottery); the references may give dates.
    left["ds"], right["ds"] = pd.to_datetime(left["ds"]), pd.to_datetime(right["ds"])
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


@pytest.fixture
def schema(fresh_schema):
    return fresh_schema("ingest")


def test_loto6_json_matches_independent_parse(pg_url, schema):
    result = ingest_file("loto6", LOTO6, url=pg_url)
    assert result.layout == "json"
    assert result.rows_inserted == 2037 * 7
    compare(raw_rows(pg_url), independent_loto6(), ["loto", "unique_id", "ds", "y", "num", "co"])


def test_bingo5_csv_with_bom_and_mixed_dates(pg_url, schema):
    result = ingest_file("bingo5", BINGO5, url=pg_url)
    assert result.rows_inserted == 375 * 8
    loaded = raw_rows(pg_url)
    compare(loaded, independent_bingo5(), ["loto", "unique_id", "ds", "y"])
    assert loaded["num"].isna().all() and loaded["co"].isna().all()
    assert pd.Timestamp(2017, 8, 23) in set(loaded["ds"])  # the first 年月日-style date


def loto6_as_japanese_csv(tmp_path: Path, *, encoding: str, fullwidth: bool) -> Path:
    """loto6.json rewritten as a common Japanese CSV layout (開催回, 抽せん日, 第N数字...)."""
    draws = json.loads(LOTO6.read_text(encoding="utf-8"))
    digit = str.maketrans("0123456789", "０１２３４５６７８９") if fullwidth else str.maketrans("", "")
    header = ["開催回", "抽せん日"] + [f"第{k}数字".translate(digit) for k in range(1, 7)]
    header += ["ボーナス数字", "1等口数", "キャリーオーバー"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for i, draw in enumerate(draws):
        y, m, d = (int(part) for part in draw["日付"].split("/"))
        when = f"{y}年{m}月{d}日" if i % 2 else f"{y}-{m:02d}-{d:02d}"
        carry = f"{int(draw['キャリーオーバー']):,}円"
        writer.writerow(
            [f"第{draw['開催回']}回", when]
            + [draw[f"第{k}数字"] for k in range(1, 7)]
            + [draw["ボーナス数字"], draw["1等口数"], carry]
        )
    path = tmp_path / f"loto6_{encoding}.csv"
    path.write_bytes(out.getvalue().encode(encoding))
    return path


@pytest.mark.parametrize(("encoding", "fullwidth"), [("cp932", True), ("utf-8-sig", False)])
def test_japanese_csv_layouts(pg_url, schema, tmp_path, encoding, fullwidth):
    path = loto6_as_japanese_csv(tmp_path, encoding=encoding, fullwidth=fullwidth)
    result = ingest_file("loto6", path, url=pg_url)
    assert result.layout == "wide-csv"
    compare(raw_rows(pg_url), independent_loto6(), ["loto", "unique_id", "ds", "y", "num", "co"])


def test_long_format_round_trip(pg_url, schema, tmp_path):
    expected = independent_bingo5().assign(loto="my_panel")
    path = tmp_path / "long.csv"
    expected.assign(ds=expected["ds"].astype(str)).to_csv(path, index=False)
    result = ingest_file("my_panel", path, url=pg_url)
    assert result.layout == "long-csv"
    assert result.rows_inserted == len(expected)
    compare(raw_rows(pg_url), expected, ["loto", "unique_id", "ds", "y"])


def test_loading_twice_changes_nothing(pg_url, schema):
    ingest_file("bingo5", BINGO5, url=pg_url)
    before = raw_rows(pg_url)
    again = ingest_file("bingo5", BINGO5, url=pg_url)
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    pd.testing.assert_frame_equal(before, raw_rows(pg_url))


def bingo5_lines() -> list[str]:
    return BINGO5.read_text(encoding="utf-8-sig").splitlines()


def write_lines(tmp_path: Path, lines: list[str], name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _replace_field(line: str, index: int, value: str) -> str:
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)


BAD_CASES = {
    # name: (edit of the bingo5 lines, line number expected in the error, words in the reason)
    "out_of_range": (
        lambda lines: lines.__setitem__(10, _replace_field(lines[10], 8, "41")),
        11,
        "out of range",
    ),
    "duplicate_draw": (lambda lines: lines.insert(20, lines[5]), 21, "duplicate draw"),
    "repeated_number": (
        lambda lines: lines.__setitem__(30, _replace_field(lines[30], 2, lines[30].split(",")[1])),
        31,
        "repeats",
    ),
    "bad_date": (
        lambda lines: lines.__setitem__(40, _replace_field(lines[40], 0, "2019/13/45")),
        41,
        "unparseable date",
    ),
    "bad_number": (
        lambda lines: lines.__setitem__(50, _replace_field(lines[50], 3, "1O")),
        51,
        "unparseable number",
    ),
    "wrong_column_count": (
        lambda lines: lines.__setitem__(60, lines[60].rsplit(",", 1)[0]),
        61,
        "wrong column count",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_rows_fail_the_whole_file_and_load_nothing(pg_url, schema, tmp_path, case):
    ingest_file("loto6", LOTO6, url=pg_url)  # old data that must survive
    before = raw_rows(pg_url)
    edit, line_no, words = BAD_CASES[case]
    lines = bingo5_lines()
    edit(lines)
    with pytest.raises(IngestError) as info:
        ingest_file("bingo5", write_lines(tmp_path, lines), url=pg_url)
    problems = info.value.problems
    assert [p.line for p in problems] == [line_no], info.value.report()
    assert words in problems[0].reason
    report = info.value.report()
    assert f"line {line_no}" in report and "nothing was loaded" in report
    if case != "bad_date":
        shown = lines[line_no - 1].split(",")[0]
        assert problems[0].draw_date == parse_date(shown).isoformat()
        assert f"(draw {problems[0].draw_date})" in report
    pd.testing.assert_frame_equal(before, raw_rows(pg_url))


def test_skip_bad_rows_loads_good_rows_and_keeps_rejects(pg_url, schema, tmp_path):
    lines = bingo5_lines()
    for edit, _, _ in BAD_CASES.values():
        edit(lines)
    path = write_lines(tmp_path, lines)
    result = ingest_file("bingo5", path, skip_bad_rows=True, url=pg_url)
    assert result.rows_rejected == len(BAD_CASES)
    assert result.rows_inserted == (375 - (len(BAD_CASES) - 1)) * 8  # the duplicate's first copy loads
    with db.connect(pg_url) as conn:
        rejects = conn.execute(
            sql.SQL("select line_no, draw_date, reason from {} order by line_no").format(
                db.qualified(config.RAW_REJECTS_TABLE)
            )
        ).fetchall()
    assert len(rejects) == len(BAD_CASES)
    assert all(reason for _, _, reason in rejects)
    # Again: nothing more in either table.
    again = ingest_file("bingo5", path, skip_bad_rows=True, url=pg_url)
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    with db.connect(pg_url) as conn:
        count = conn.execute(
            sql.SQL("select count(*) from {}").format(db.qualified(config.RAW_REJECTS_TABLE))
        )
        assert count.fetchone()[0] == len(BAD_CASES)


def test_repeated_number_in_loto6_json_names_the_line(pg_url, schema, tmp_path):
    draws = json.loads(LOTO6.read_text(encoding="utf-8"))
    draws[100]["第3数字"] = draws[100]["第2数字"]
    draws[200]["ボーナス数字"] = draws[200]["第1数字"]  # the bonus is drawn from the rest
    path = tmp_path / "loto6.json"
    path.write_text(json.dumps(draws, ensure_ascii=False, indent=2), encoding="utf-8")
    with pytest.raises(IngestError) as info:
        ingest_file("loto6", path, url=pg_url)
    problems = info.value.problems
    assert len(problems) == 2
    text = path.read_text(encoding="utf-8").splitlines()
    for problem, index in zip(problems, (100, 200), strict=True):
        assert "repeats" in problem.reason
        assert text[problem.line - 1].strip() == "{"  # the line the draw's object starts on
        assert problem.draw_date == pd.to_datetime(draws[index]["日付"]).date().isoformat()


def test_empty_file(pg_url, schema, tmp_path):
    for content in ("", "\ufeff抽せん日,数字1,数字2,数字3,数字4,数字5,数字6,数字7,数字8\n", "[]"):
        path = tmp_path / "empty.csv"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(IngestError, match="empty"):
            ingest_file("bingo5", path, url=pg_url)
    assert raw_rows(pg_url).empty


def test_unknown_lottery_needs_long_format(pg_url, schema):
    with pytest.raises(IngestError, match=r"unknown lottery 'powerball'.*long format"):
        ingest_file("powerball", BINGO5, url=pg_url)


def test_wrong_number_of_number_columns(pg_url, schema):
    with pytest.raises(IngestError, match=r"wrong column count.*8 main-number columns"):
        ingest_file("loto6", BINGO5, url=pg_url)


def test_dropped_connection_mid_load_keeps_old_data(pg_url, schema, monkeypatch, tmp_path):
    ingest_file("bingo5", BINGO5, url=pg_url)
    before = raw_rows(pg_url)
    real_upsert = load._upsert
    calls = []

    def upsert_then_die(conn: psycopg.Connection, *args):
        calls.append(1)
        real_upsert(conn, *args)  # the merge has run inside the transaction...
        conn.execute("select pg_terminate_backend(pg_backend_pid())")  # ...and the server drops us

    monkeypatch.setattr(load, "_upsert", upsert_then_die)
    changed = BINGO5.read_text(encoding="utf-8-sig").replace("2017/4/5,1,10,", "2017/4/5,2,10,")
    path = tmp_path / "bingo5_changed.csv"
    path.write_text(changed, encoding="utf-8")
    with pytest.raises(db.DatabaseError):
        ingest_file("bingo5", path, url=pg_url)
    assert len(calls) == 3  # retried, then gave up
    pd.testing.assert_frame_equal(before, raw_rows(pg_url))


def test_cli_exit_code_and_message(pg_url, schema, tmp_path):
    lines = bingo5_lines()
    lines[10] = _replace_field(lines[10], 8, "99")
    path = write_lines(tmp_path, lines)
    proc = subprocess.run(
        [sys.executable, "-m", "python_jobs", "ingest", "--loto", "bingo5", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": pg_url},
        check=False,
    )
    assert proc.returncode != 0
    shown = parse_date(lines[10].split(",")[0]).isoformat()
    assert f"line 11 (draw {shown})" in proc.stderr and "out of range 36-40" in proc.stderr


def test_long_format_bad_rows(pg_url, schema, tmp_path):
    good = independent_bingo5().sort_values(["ds", "unique_id"]).reset_index(drop=True)
    good["ds"] = good["ds"].astype(str)
    lines = good.to_csv(index=False).splitlines()
    lines[5] = lines[5].replace(",N", ",X")  # not a position of bingo5
    lines[9] = ",".join([*lines[9].split(",")[:3], "99"])  # out of range
    lines[13] = lines[13].replace(lines[13].split(",")[2], "2019-02-30")  # no such date
    lines.insert(20, lines[19])  # duplicate row
    path = write_lines(tmp_path, lines, "long.csv")
    with pytest.raises(IngestError) as info:
        ingest_file("bingo5", path, url=pg_url)
    reasons = {p.line: p.reason for p in info.value.problems}
    assert sorted(reasons) == [6, 10, 14, 21], info.value.report()
    assert "not a position" in reasons[6]
    assert "out of range" in reasons[10]
    assert "unparseable date" in reasons[14]
    assert "duplicate draw" in reasons[21] and "line 20" in reasons[21]
    # A ragged line takes the careful reader and is named too.
    lines.insert(30, "bingo5,N1,2017-04-05")
    with pytest.raises(IngestError) as info:
        ingest_file("bingo5", write_lines(tmp_path, lines, "ragged.csv"), url=pg_url)
    assert 31 in {p.line for p in info.value.problems}
    assert raw_rows(pg_url).empty


def test_numbers3_winning_number_column_and_loto7_headers(pg_url, schema, tmp_path):
    draws = json.loads(LOTO6.read_text(encoding="utf-8"))[:300]
    # Numbers3: the winning number as one digit string, repeats allowed, leading zeros kept.
    digits = ["".join(str(int(d[f"第{k}数字"]) % 10) for k in (1, 2, 3)) for d in draws]
    text = "回号,抽せん日,当せん番号\n" + "\n".join(
        f"第{d['開催回']}回,{d['日付']},{number}" for d, number in zip(draws, digits, strict=True)
    )
    path = tmp_path / "numbers3.csv"
    path.write_bytes(text.encode("cp932"))
    ingest_file("numbers3", path, url=pg_url)
    loaded = raw_rows(pg_url, "numbers3")
    assert len(loaded) == 300 * 3
    first = loaded[loaded["ds"] == loaded["ds"].min()].sort_values("unique_id")
    assert "".join(str(int(v)) for v in first["y"]) == digits[0]
    # Loto7-style headers: full-width positions, two bonus columns, a remark in a header.
    header = ",".join(
        ["開催回", "抽せん日(曜日)", *(f"第{k}数字" for k in "１２３４５６７")]
        + ["BONUS数字1", "ボーナス数字(2)", "キャリーオーバー(円)"]
    )
    rows = []
    # Loto7 began in April 2013: the last 50 Loto6 dates lie after that.
    for d in json.loads(LOTO6.read_text(encoding="utf-8"))[-50:]:
        mains = sorted({int(d[f"第{k}数字"]) % 37 + 1 for k in range(1, 7)} | {37})
        rest = [n for n in range(1, 38) if n not in mains]
        mains = (mains + rest)[:7]
        bonus = [n for n in rest if n not in mains][:2]
        rows.append(
            ",".join([d["開催回"], d["日付"] + "(金)", *map(str, sorted(mains)), *map(str, bonus), "0"])
        )
    path = tmp_path / "loto7.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8-sig")
    result = ingest_file("loto7", path, url=pg_url)
    assert result.rows_inserted == 50 * 9
    assert set(raw_rows(pg_url, "loto7")["unique_id"]) == {*(f"N{k}" for k in range(1, 8)), "B1", "B2"}
