"""Bad input and a down database end in exit code 2 and a message naming the line: no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from python_jobs import db
from python_jobs.tests.ingest_files import LOTO6, bingo5_lines, loto6_draws, replace_field, write_lines


def run_cli(*args: str, url: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "python_jobs", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": url, **(env or {})},
        check=False,
        timeout=120,
    )


def _loto6_csv(tmp_path: Path, edit) -> Path:
    """A wide Japanese CSV of the first 30 loto6 draws, one field edited."""
    header = "開催回,抽せん日,第1数字,第2数字,第3数字,第4数字,第5数字,第6数字,ボーナス数字,キャリーオーバー"
    lines = [header]
    for draw in loto6_draws()[:30]:
        numbers = [draw[f"第{k}数字"] for k in range(1, 7)]
        lines.append(
            ",".join([draw["開催回"], draw["日付"], *numbers, draw["ボーナス数字"], draw["キャリーオーバー"]])
        )
    lines[5] = edit(lines[5])
    return write_lines(tmp_path, lines, "loto6.csv")


def _long(tmp_path: Path, row: str, header: str = "loto,unique_id,ds,y,num,co") -> Path:
    return write_lines(
        tmp_path, [header, "my_series,a,2020-01-01,1,1,0", row, "my_series,a,2020-01-03,3,3,0"], "long.csv"
    )


def _nul(tmp_path: Path) -> Path:
    lines = bingo5_lines()
    lines[3] = lines[3].replace(",1", ",\x001", 1)
    return write_lines(tmp_path, lines)


CASES = {
    # name: (loto, file builder, line named (None: the file), words in the message)
    "carry_over_2_63": (
        "loto6",
        lambda t: _loto6_csv(t, lambda line: replace_field(line, 9, str(2**63))),
        6,
        "carry-over",
    ),
    "draw_number_2_31": (
        "loto6",
        lambda t: _loto6_csv(t, lambda line: replace_field(line, 0, str(2**31))),
        6,
        "draw number",
    ),
    "long_num_2_64": (
        "my_series",
        lambda t: _long(t, f"my_series,a,2020-01-02,2,{2**64},0"),
        3,
        "draw number",
    ),
    "long_y_huge": ("my_series", lambda t: _long(t, "my_series,a,2020-01-02,1e300,2,0"), 3, "too large"),
    "nul_byte": ("bingo5", _nul, 4, "NUL byte"),
    "empty_loto": ("", lambda t: LOTO6, None, "empty --loto"),
    "long_y_twice": (
        "my_series",
        lambda t: _long(t, "my_series,a,2020-01-02,2,2,0,2", "loto,unique_id,ds,y,num,co,y"),
        1,
        "'y'",
    ),
    "huge_field": (
        "bingo5",
        lambda t: write_lines(t, [*bingo5_lines()[:9], "2017/6/7," + "1" * 140_000, *bingo5_lines()[10:]]),
        10,
        "characters long",
    ),
    "long_unique_id": (
        "my_series",
        lambda t: _long(t, "my_series," + "u" * 10_000 + ",2020-01-02,2,2,0"),
        3,
        "unique_id is 10000 characters",
    ),
    "deep_json": (
        "loto6",
        lambda t: write_lines(t, ["[" * 100_000 + "]" * 100_000], "deep.json"),
        1,
        "nested too deeply",
    ),
    "json_not_objects": (
        "loto6",
        lambda t: write_lines(t, ['{"note": "x", "draws": [1, 2]}'], "odd.json"),
        None,
        "exactly one list of draw objects",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exit_2_with_line_and_reason(pg_url, fresh_schema, tmp_path, case):
    schema = fresh_schema("errors")
    loto, build, line, words = CASES[case]
    proc = run_cli("ingest", "--loto", loto, str(build(tmp_path)), url=pg_url, env={"DBT_SCHEMA": schema})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert words in proc.stderr
    if line is not None:
        assert f"line {line}" in proc.stderr


def test_nul_byte_with_skip_bad_rows_loads_the_rest(pg_url, fresh_schema, tmp_path):
    schema = fresh_schema("errors")
    proc = run_cli(
        "ingest",
        "--loto",
        "bingo5",
        "--skip-bad-rows",
        str(_nul(tmp_path)),
        url=pg_url,
        env={"DBT_SCHEMA": schema},
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 bad lines rejected" in proc.stdout and "2992 rows inserted" in proc.stdout


def test_wrapped_json_is_read(pg_url, fresh_schema, tmp_path):
    schema = fresh_schema("errors")
    path = tmp_path / "wrapped.json"
    path.write_text(
        json.dumps({"note": "x", "draws": loto6_draws()[:10]}, ensure_ascii=False), encoding="utf-8"
    )
    proc = run_cli("ingest", "--loto", "loto6", str(path), url=pg_url, env={"DBT_SCHEMA": schema})
    assert proc.returncode == 0 and "70 rows inserted" in proc.stdout


def test_down_database_says_what_to_do(tmp_path):
    proc = run_cli("ingest", "--loto", "loto6", str(LOTO6), url="postgresql://nobody:pw0rd@127.0.0.1:1/none")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "Check that the server at DATABASE_URL is up" in proc.stderr
    assert "pw0rd" not in proc.stderr + proc.stdout


def test_non_transient_errors_are_not_retried(pg_url):
    calls = []

    def too_big() -> None:
        calls.append(1)
        with db.connect(pg_url) as conn:
            conn.execute("create temporary table wide_key (value text primary key)")
            conn.execute(
                "insert into wide_key select string_agg(md5(i::text), '') from generate_series(1, 400) as i"
            )

    with pytest.raises(db.DatabaseError, match="index row"):
        db.retry(too_big, attempts=3, base_delay=0.01)
    assert len(calls) == 1

    def violation() -> None:
        calls.append(1)
        with db.connect(pg_url) as conn:
            conn.execute("create temporary table twice (value int primary key)")
            conn.execute("insert into twice values (1), (1)")

    calls.clear()
    with pytest.raises(db.DatabaseError, match="duplicate key"):
        db.retry(violation, attempts=3, base_delay=0.01)
    assert len(calls) == 1
    assert db.is_transient(psycopg.OperationalError("server closed the connection unexpectedly"))
